"""A stack's values parsed and checked as a whole, before anything is written or registered.

The offline CLI and the Pulumi program both call `checked_stack_config`, so both refuse the
same stacks with the same lines. It lives here because the last check needs the Ignition that
the program generates (stackconfig, below ignition, cannot import it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ignition.snippet_collisions import snippet_collisions
from stackconfig.flavor_checks import flavor_problems
from stackconfig.model import StackConfig
from stackconfig.parse import parse_stack_config
from stackconfig.problems import ConfigError
from stackconfig.secrets import plain_secret_problems


def checked_stack_config(
    values: Mapping[str, Any],
    secure_paths: Collection[str],
    yaml_texts: Mapping[str, str] | None = None,
) -> StackConfig:
    """Parse `values` (un-namespaced), or raise one ConfigError with every problem: the
    parser's and the secrets given in plain text together; then, on a stack that parses, what
    clashes with the flavor's own boot and the snippets that collide with the program's own
    entries (they need the generated Ignition).
    `secure_paths`: the values given as secrets (stackconfig.secrets says in which forms)."""
    problems = plain_secret_problems(values, secure_paths)
    try:
        stack = parse_stack_config(values, yaml_texts=yaml_texts)
    except ConfigError as error:
        raise ConfigError([*error.problems, *problems]) from None
    problems += flavor_problems(stack)
    problems += snippet_collisions(stack)
    if problems:
        raise ConfigError(problems)
    return stack
