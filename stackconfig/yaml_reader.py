"""Read a stack file's YAML within bounds, or refuse it with one line per problem.

PyYAML's SafeLoader (YAML 1.1) reads the file, with what it does not do by itself around it:
the file's size and encoding are checked before a character is parsed, the composer stops at
MAX_DEPTH levels and MAX_VALUES nodes, aliases are measured as expanded and checked for loops
before any Python value is made (stackconfig.yaml_nodes), and every YAML error becomes one line
`machine 'w1': ... (stacks/Pulumi.lab.yaml:12)` instead of PyYAML's several lines about a
`<unicode string>`. The limits are in stackconfig.yaml_limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from stackconfig.problems import ConfigError, Problem
from stackconfig.yaml_limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from stackconfig.yaml_nodes import limit_spots, measure, node_spots
from stackconfig.yaml_places import Spot, located


@dataclass(frozen=True)
class YamlDocument:
    """The document as Python values, and its root node (None for an empty file)."""

    value: Any
    root: yaml.Node | None


class _Refused(Exception):
    def __init__(self, spot: Spot) -> None:
        super().__init__(spot.message)
        self.spot = spot


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses a document past MAX_VALUES nodes or MAX_DEPTH
    levels while reading it: its composer recurses three Python frames per level
    (yaml/pyyaml `lib/yaml/composer.py` compose_node), so depth must stop it before Python's
    recursion limit does."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.values = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = cast(yaml.Event, self.peek_event())  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = event.start_mark  # the parser marks every event it makes
        index, line = (mark.index, mark.line + 1) if mark is not None else (0, 0)
        self.values += 1
        if self.values > MAX_VALUES:
            # Where counting stopped, without looking up its machine: that would read the
            # file a second time.
            raise _Refused(Spot(None, line, _too_many()))
        nests = isinstance(event, yaml.CollectionStartEvent)
        if nests and self.depth >= MAX_DEPTH:
            raise _Refused(Spot(index, line, _too_deep()))
        self.depth += nests
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= nests


def _too_many() -> str:
    return (
        f"more than {MAX_VALUES:,} values (keys, values, lists and maps) by here; a "
        "500-machine stack has 25,000"
    )


def _too_deep() -> str:
    return (
        f"lists and maps nest more than {MAX_DEPTH} levels deep here (a stack file needs fewer "
        "than 15)"
    )


def _read_bytes(path: Path) -> bytes:
    with path.open("rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            [
                Problem(
                    str(path),
                    "",
                    f"larger than {MAX_FILE_BYTES // 2**20} MiB ({MAX_FILE_BYTES:,} bytes), the "
                    "most a stack file may be (a 500-machine stack is 345 KB); is it the "
                    "right file?",
                )
            ]
        )
    return data


def _decoded(path: Path, data: bytes) -> str:
    """The file as text: Pulumi reads stack files as UTF-8 (YAML's default encoding)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8")
        line = data.count(b"\n", 0, error.start) + 1
        bom = " (a UTF-16 byte order mark)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        message = (
            f"not UTF-8 text: the byte 0x{data[error.start]:02x} at byte offset {error.start}"
            f"{bom} is not UTF-8 ({error.reason}); save the file as UTF-8"
        )
        raise ConfigError(located(path, before, [Spot(len(before), line, message)])) from None


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _error_spot(error: yaml.MarkedYAMLError, text: str) -> Spot:
    """PyYAML's error as one spot: where it is, and what to do about it."""
    mark = error.problem_mark or error.context_mark
    index, line = (mark.index, mark.line + 1) if mark is not None else (None, None)
    problem, context = _one_line(error.problem), _one_line(error.context)
    context_line = error.context_mark.line + 1 if error.context_mark is not None else None
    if "'\\t'" in problem and index is not None:
        indent = text[text.rfind("\n", 0, index) + 1 : index].strip(" ") == ""
        message = (
            "a tab indents this line; YAML indents with spaces only: replace it with spaces"
            if indent
            else "a tab after ':', '-' or ','; PyYAML takes spaces only there: use a space"
        )
    elif problem == "but found another document":
        message = (
            "a second YAML document starts here; a stack file is one document: remove this "
            "'---' and what follows, or move it into the first"
        )
    elif context.startswith("found duplicate anchor"):
        anchor = context.removeprefix("found duplicate anchor ").split(";")[0].strip("'")
        message = (
            f"the anchor &{anchor} is defined again here (first at line {context_line}); "
            "give each anchor its own name"
        )
    elif problem.startswith("found undefined alias"):
        alias = problem.removeprefix("found undefined alias ").strip("'")
        message = f"the alias *{alias} refers to no anchor &{alias} above it"
    elif problem == "mapping values are not allowed here":
        message = "not valid YAML: a ': ' where no key can start; quote a value that holds ': '"
    else:
        found = f"{context} (line {context_line}): {problem}" if context else problem
        hint = "; check this line's indentation" if "expected <block end>" in problem else ""
        message = f"not valid YAML: {found}{hint}"
    return Spot(index, line, message)


def _reader_error(path: Path, text: str, error: yaml.reader.ReaderError) -> ConfigError:
    """A character YAML does not allow (a control character), where it is."""
    before = text[: error.position]
    line = before.count("\n") + 1
    code = error.character if isinstance(error.character, int) else ord(error.character)
    message = f"the control character U+{code:04X} is not allowed in YAML; remove it"
    return ConfigError(located(path, before, [Spot(len(before), line, message)]))


def read_yaml(path: Path) -> YamlDocument:
    """The stack file's one document, or a ConfigError with a line for each problem in it."""
    text = _decoded(path, _read_bytes(path))
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as error:
        raise _reader_error(path, text, error) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(None, None)
        graph = measure(root)
        spots = limit_spots(root, graph) or node_spots(root, graph)
        if spots:
            raise ConfigError(located(path, text, spots))
        return YamlDocument(loader.construct_document(root), root)
    except _Refused as refused:
        raise ConfigError(located(path, text, [refused.spot])) from None
    except yaml.MarkedYAMLError as error:
        raise ConfigError(located(path, text, [_error_spot(error, text)])) from None
    finally:
        loader.dispose()
