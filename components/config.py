"""The stack config as Pulumi hands it to the program, parsed by the pure model."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.config import (
    CONFIG,
    get_config_env,
    get_config_secret_keys_env,
    is_config_secret,
)

from ignition.checked_stack import checked_stack_config
from stackconfig import ConfigError, StackConfig
from stackconfig.config_json import decode_config
from stackconfig.config_keys import key_typos
from stackconfig.parse import KNOWN_KEYS
from stackconfig.warnings import stack_warnings


def _secret_keys(config: dict[str, Any]) -> list[str]:
    """The config keys Pulumi holds as secrets (`stubernetes:machines`). Pulumi names whole
    top-level keys only, also for `--path` secrets, so every value under such a key counts as
    secure: a plain value beside a secret one under the same key goes unnoticed here (the
    offline render, which reads the stack file itself, refuses each one)."""
    listed = set(get_config_secret_keys_env())
    return sorted(listed | {key for key in config if is_config_secret(key)})


def runtime_config() -> dict[str, Any]:
    """The stack's config wherever the runtime put it. The Python language host passes it in
    the `PULUMI_CONFIG` environment variable; an Automation API inline program's in-process
    runtime puts it into `pulumi.runtime.config.CONFIG` (set_all_config, called from
    `pulumi/automation/_server.py`) and sets no variable (pulumi/pulumi sdk/python
    `lib/pulumi/runtime/config.py`). `pulumi.runtime.config.get_config` reads both, in that
    order, one key at a time; the program needs every key of its namespace at once."""
    return {**get_config_env(), **CONFIG.get()}


def load_stack_config() -> StackConfig:
    """Parse `stubernetes:*` config, or stop the program before it registers anything; log
    each warning about it. A namespace misspelt (`stubrnetes:releases`) is refused, its keys
    read as meant so that every other problem is named in the same run."""
    config = runtime_config()
    typos = key_typos(config, KNOWN_KEYS)
    renamed = {typos.renamed.get(key, key): text for key, text in config.items()}
    values, problems = decode_config(renamed)
    stack = None
    if not problems:
        secret_keys = [typos.renamed.get(key, key) for key in _secret_keys(config)]
        try:
            # Secrets given in plain text and snippets over the program's own files are
            # refused too.
            stack = checked_stack_config(values, secret_keys)
        except ConfigError as error:
            problems = list(error.problems)
    problems = [*(p for _, p in typos.problems), *problems]
    if problems or stack is None:
        raise pulumi.RunError("the stack config has problems:\n" + str(ConfigError(problems)))
    for warning in stack_warnings(stack):
        pulumi.log.warn(str(warning))
    return stack
