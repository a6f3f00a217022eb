"""The stack config as Pulumi hands it to the program, parsed by the pure model."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import get_config_env

from stackconfig import ConfigError, StackConfig, parse_stack_config
from stackconfig.parse import split_namespace


def _decode(value: str) -> Any:
    # Object values arrive as JSON text; a plain string stays what it is.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def load_stack_config() -> StackConfig:
    """Parse `stubernetes:*` config, or stop the program before it registers anything."""
    values = {key: _decode(text) for key, text in split_namespace(get_config_env()).items()}
    try:
        return parse_stack_config(values)
    except ConfigError as error:
        raise pulumi.RunError("the stack config has problems:\n" + str(error)) from None
