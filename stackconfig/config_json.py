"""The project's config values as Pulumi hands them to the program: JSON text, decoded within
the same bounds as a stack file's YAML.

Pulumi passes each config value as a string, an object or list as its JSON text (the Python
language host's `PULUMI_CONFIG`, pulumi/pulumi sdk/python `lib/pulumi/runtime/config.py`).
`json.loads` keeps the last of two equal keys without a word and raises RecursionError on a
value nested deeper than Python's recursion limit; both become problems here, one line each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stackconfig.config_keys import NAMESPACE
from stackconfig.problems import Problem, machine_where
from stackconfig.yaml_limits import MAX_DEPTH, MAX_VALUES
from stackconfig.yaml_places import PathPart, place


class _Pairs:
    """An object_pairs_hook that keeps each object's repeated keys."""

    def __init__(self) -> None:
        self.repeated: dict[int, list[str]] = {}
        # Each such object kept alive, so that no later object takes its id: the later of
        # two equal keys may drop an object that had repeated keys of its own.
        self.kept: list[dict[str, Any]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made: dict[str, Any] = {}
        for key, value in pairs:
            if key in made:
                self.repeated.setdefault(id(made), []).append(key)
            made[key] = value
        if id(made) in self.repeated:
            self.kept.append(made)
        return made


_LAST = "JSON would keep only the last one"
_TWICE = f"duplicate machine name ({_LAST})"


def _problem(key: str, path: tuple[PathPart, ...], message: str, name: str = "") -> Problem:
    where, field = place(("config", key, *path)) or (key, "")
    if name:
        field = f"{field}.{name}" if field else name
    return Problem(where, field, message)


def _walk(key: str, value: Any, repeated: dict[int, list[str]]) -> list[Problem]:
    """Depth and size past the limits, and repeated keys, by where they are. Iterative."""
    problems = []
    count = 0
    stack: list[tuple[Any, tuple[PathPart, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return [_problem(key, (), f"more than {MAX_VALUES:,} values; far more than a stack")]
        if isinstance(node, dict):
            children: list[tuple[Any, PathPart]] = [(v, k) for k, v in node.items()]
            for name in repeated.get(id(node), []):
                if key == f"{NAMESPACE}:machines" and not path:
                    problems.append(Problem(machine_where(name), "name", _TWICE))
                else:
                    problems.append(_problem(key, path, "duplicate key; " + _LAST, name))
        elif isinstance(node, list):
            children = [(v, i) for i, v in enumerate(node)]
        else:
            continue
        if len(path) >= MAX_DEPTH:
            return [_problem(key, path, f"lists and maps nest more than {MAX_DEPTH} levels deep")]
        stack.extend((child, (*path, part)) for child, part in reversed(children))
    return problems


def decode_config(config: Mapping[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """The `stubernetes:` values of Pulumi's config, without the namespace, and the problems
    found in decoding them."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    prefix = f"{NAMESPACE}:"
    for key, text in config.items():
        if not key.startswith(prefix):
            continue
        pairs = _Pairs()
        try:
            value = json.loads(text, object_pairs_hook=pairs)
        except json.JSONDecodeError:
            value = text  # a plain string stays what it is
        except RecursionError:
            message = f"lists and maps nest more than {MAX_DEPTH} levels deep"
            problems.append(Problem(key, "", message))
            continue
        problems += _walk(key, value, pairs.repeated)
        values[key.removeprefix(prefix)] = value
    return values, problems
