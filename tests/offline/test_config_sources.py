"""The program reads its stack config wherever the runtime puts it.

`pulumi up` of `__main__.py` runs the Python language host, which passes the config in
`PULUMI_CONFIG`; an Automation API inline program (how the real-engine tests run the program)
gets it from the SDK's in-process runtime in `pulumi.runtime.config.CONFIG` and no variable
(pulumi/pulumi sdk/python `lib/pulumi/runtime/config.py` set_all_config, called by
`lib/pulumi/automation/_server.py`). Both must give the same stack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi.runtime import config as runtime_config

from components.config import load_stack_config
from stubernetes.program_run import pulumi_config_env

SECRET_KEYS = ["stubernetes:matchbox"]


def test_the_inline_runtime_config_is_the_stack_config(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    config = json.loads(pulumi_config_env(example_values))
    # The example's Matchbox credentials are secure values: both runtimes name the key secret.
    runtime_config.set_all_config(dict(config), SECRET_KEYS)
    try:
        from_runtime = load_stack_config()
    finally:
        runtime_config.set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(SECRET_KEYS))
    from_environment = load_stack_config()
    assert from_runtime == from_environment
    assert [m.name for m in from_runtime.machines] == ["c1", "w1", "w2"]


def test_no_config_anywhere_is_a_missing_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    token = runtime_config.CONFIG.set({})
    try:
        with pytest.raises(Exception, match="stubernetes:cluster"):
            load_stack_config()
    finally:
        runtime_config.CONFIG.reset(token)


@pytest.mark.parametrize("secret_keys", [[], SECRET_KEYS])
def test_the_inline_runtimes_secret_keys_decide_what_is_plain(
    secret_keys: list[str], example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inline program gets its secret keys from `set_all_config` (pulumi.runtime.config
    `is_config_secret`), not from PULUMI_CONFIG_SECRET_KEYS: a key it names is no plain text."""
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    runtime_config.set_all_config(json.loads(pulumi_config_env(example_values)), secret_keys)
    try:
        if secret_keys:
            assert load_stack_config().matchbox.client_key
        else:
            with pytest.raises(Exception, match="field 'clientKey': a secret given in plain text"):
                load_stack_config()
    finally:
        runtime_config.set_all_config({}, [])
