"""The stack config model: pure Python, no Pulumi import."""

from stackconfig.model import Machine, StackConfig
from stackconfig.parse import parse_stack_config
from stackconfig.problems import ConfigError, Problem
from stackconfig.stackfile import LoadedStack, load_stack_file

__all__ = [
    "ConfigError",
    "LoadedStack",
    "Machine",
    "Problem",
    "StackConfig",
    "load_stack_file",
    "parse_stack_config",
]
