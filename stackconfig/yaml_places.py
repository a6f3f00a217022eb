"""Where a position in a stack file is: the machine or section and the field around it.

A YAML error or a refused node has a position (line, column); a user fixing a 500-machine
stack wants to read which machine it is in. The keys that lead to a position are read off
PyYAML's parser events up to it: the parser keeps no recursion of its own (a state stack,
yaml/pyyaml `lib/yaml/parser.py`), so this works on any file, also one whose error stopped
the parser, and also past the point where the composer would have recursed too deep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml

from stackconfig.config_keys import NAMESPACE
from stackconfig.problems import Problem, machine_where

NAMESPACE_PREFIX = f"{NAMESPACE}:"
PathPart = str | int


@dataclass
class _Frame:
    """One open list or map: the key whose value is being read, or the item's index."""

    is_map: bool
    at_key: bool = True
    key: str = ""
    index: int = 0

    def finish_child(self, key: str) -> None:
        if not self.is_map:
            self.index += 1
        elif self.at_key:
            self.key, self.at_key = key, False
        else:
            self.at_key = True


def _current(stack: Sequence[_Frame]) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    for frame in stack:
        if not frame.is_map:
            parts.append(frame.index)
        elif not frame.at_key:
            parts.append(frame.key)
    return tuple(parts)


def _apply(stack: list[_Frame], event: yaml.Event) -> None:
    if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
        if stack:
            stack[-1].finish_child(event.value if isinstance(event, yaml.ScalarEvent) else "")
    elif isinstance(event, yaml.CollectionStartEvent):
        stack.append(_Frame(is_map=isinstance(event, yaml.MappingStartEvent)))
    elif isinstance(event, yaml.CollectionEndEvent):
        stack.pop()
        if stack:
            stack[-1].finish_child("")


_CLOSING = (yaml.CollectionEndEvent, yaml.DocumentEndEvent, yaml.StreamEndEvent)


def paths_at(text: str, indexes: Iterable[int]) -> dict[int, tuple[PathPart, ...]]:
    """For each character index into `text`, the keys (and list indexes) from the document's
    root down to the node that index is in, or the map whose key it is. `text` may stop
    short, at a character that cannot be read."""
    pending = sorted(set(indexes))
    found: dict[int, tuple[PathPart, ...]] = {}
    stack: list[_Frame] = []
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError:
        return {index: () for index in pending}
    # PyYAML's stubs leave the parser's event methods untyped.
    peek_event = cast(Callable[[], yaml.Event | None], loader.peek_event)
    get_event = cast(Callable[[], yaml.Event], loader.get_event)
    try:
        while pending:
            event = peek_event()
            if event is None:
                break
            at = event.start_mark.index if event.start_mark is not None else 0
            if at >= len(text) and isinstance(event, _CLOSING):
                break  # the text stops short of a problem: what is open there stays open
            # A map or list ends at the next token, where a problem may be: close it first.
            ends_here = isinstance(event, yaml.CollectionEndEvent)
            while pending and not ends_here and at >= pending[0]:
                found[pending.pop(0)] = _current(stack)
            get_event()
            _apply(stack, event)
    except yaml.YAMLError:
        pass  # the error is the position looked for: the path is where the parser stopped
    finally:
        loader.dispose()
    found.update((index, _current(stack)) for index in pending)
    return found


def field_text(parts: Sequence[PathPart], most: int = 8) -> str:
    """`labels.stubernetes.dev/storage`, `dns[1]`; past `most` parts (the deep end of a
    refused nesting), `...`."""
    text = ""
    for part in parts[:most]:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text + "..." if len(parts) > most else text


def place(path: Sequence[PathPart]) -> tuple[str, str] | None:
    """The machine, release or section (`machine 'w1'`, `stubernetes:cluster`) and the field
    of a path from the document's root (`config`, `stubernetes:machines`, `w1`, ...), or None
    outside the project's config."""
    if len(path) < 2 or path[0] != "config" or not isinstance(path[1], str):
        return None
    key = path[1]
    if not key.startswith(NAMESPACE_PREFIX):
        return None
    rest = path[2:]
    if key == f"{NAMESPACE_PREFIX}machines" and rest:
        return machine_where(str(rest[0])), field_text(rest[1:])
    if key == f"{NAMESPACE_PREFIX}releases" and rest:
        return f"release '{rest[0]}'", field_text(rest[1:])
    return key, field_text(rest)


@dataclass(frozen=True)
class Spot:
    """A problem at a position of the stack file, before it knows its machine or section.

    `index` is the character index (None: the file as a whole); `key` a key to add to the
    field found there; `where` and `field`, when given, name the place outright."""

    index: int | None
    line: int | None
    message: str
    key: str = ""
    where: str | None = None
    field: str = ""


def _joined(field: str, key: str) -> str:
    return f"{field}.{key}" if field and key else field or key


def located(path: Path, text: str, spots: Sequence[Spot]) -> list[Problem]:
    """One problem per spot, naming its machine or section and field where the position is
    inside one, with `file:line`; otherwise `file:line` is the problem's place."""
    paths = paths_at(text, [s.index for s in spots if s.index is not None and s.where is None])
    problems = []
    for spot in spots:
        at = f"{path}:{spot.line}" if spot.line is not None else str(path)
        if spot.where is not None:
            problems.append(Problem(spot.where, spot.field, f"{spot.message} ({at})"))
            continue
        found = place(paths[spot.index]) if spot.index is not None else None
        if found is None:
            problems.append(Problem(at, spot.key, spot.message))
        else:
            where, field = found
            problems.append(Problem(where, _joined(field, spot.key), f"{spot.message} ({at})"))
    return problems
