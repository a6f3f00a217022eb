"""The stack config as Pulumi hands it to the program, parsed by the pure model."""

from __future__ import annotations

import json
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
from stackconfig.parse import split_namespace
from stackconfig.warnings import stack_warnings


def _decode(value: str) -> Any:
    # Object values arrive as JSON text; a plain string stays what it is.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


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
    each warning about it."""
    config = runtime_config()
    values = {key: _decode(text) for key, text in split_namespace(config).items()}
    try:
        # Secrets given in plain text and snippets over the program's own files are refused too.
        stack = checked_stack_config(values, _secret_keys(config))
    except ConfigError as error:
        raise pulumi.RunError("the stack config has problems:\n" + str(error)) from None
    for warning in stack_warnings(stack):
        pulumi.log.warn(str(warning))
    return stack
