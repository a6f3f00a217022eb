"""Checks on a stack file's composed YAML nodes, before any Python value is made of them.

The composer shares a node between an anchor and each of its aliases, so the node graph is as
small as the file however far the aliases expand. Every walk here is iterative and visits each
node once: it measures what the document expands to (values, depth), finds aliases that loop,
and refuses what would change meaning once read or make the constructor fail:

- tags beyond the plain types (`!!python/object`, `!!binary`, `!!set`, a local `!thing`),
  and a lone `=`, which YAML 1.1 resolves to its `value` type (no constructor has it);
- typed scalars that cannot be made into their type (`!!int abc`, a 5,000-digit number, the
  date 2024-13-45), which would raise plain Python errors from the constructor;
- keys YAML reads as something other than text: a machine or release name (`012`, `on`, `10`)
  always, any other key when what the program gets (JSON text) differs from what was written;
- keys that are the same once read: a `10` beside a `"10"`, an `on` beside a `"true"`.

YAML 1.1's implicit types are PyYAML's resolver's (yaml/pyyaml `lib/yaml/resolver.py`): bool
`yes|no|on|off|true|false` in three cases, int with `0b`, `0x`, leading-0 octal and base-60
`1:20`, float, null `~|null|` and timestamp `YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from stackconfig.problems import machine_where, yaml_reading
from stackconfig.yaml_limits import MAX_DEPTH, MAX_VALUES
from stackconfig.yaml_places import NAMESPACE_PREFIX, Spot

TAG = "tag:yaml.org,2002:"
STR, MAP, SEQ, MERGE = (f"{TAG}{name}" for name in ("str", "map", "seq", "merge"))
TYPED_TAGS = frozenset(f"{TAG}{name}" for name in ("int", "float", "bool", "null", "timestamp"))
SCALAR_TAGS = TYPED_TAGS | {STR}
_SCALARS = yaml.constructor.SafeConstructor()


class ScalarValueError(ValueError):
    """A typed scalar the constructor cannot make (`!!int abc`, the date 2024-13-45)."""


def scalar_value(node: yaml.ScalarNode) -> object:
    """The Python value PyYAML's SafeConstructor makes of a scalar of one of SCALAR_TAGS."""
    try:
        return _SCALARS.construct_document(node)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        raise ScalarValueError(str(error)) from None


def json_text(value: object) -> str:
    """A key as the program gets it: Pulumi passes config as JSON, whose keys are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.date):
        return f"date {value.isoformat()}"  # JSON has no dates: never what was written
    return str(value)


def shown_tag(tag: str) -> str:
    return f"!!{tag.removeprefix(TAG)}" if tag.startswith(TAG) else tag


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


@dataclass
class Graph:
    """Each distinct node once, in document order, with what it expands to."""

    nodes: list[yaml.Node]
    size: dict[int, int]
    height: dict[int, int]
    loop: yaml.Node | None = None


def measure(root: yaml.Node) -> Graph:
    """Values and nesting depth below each node, aliases expanded (sizes stop counting past
    MAX_VALUES), or the first node an alias inside it loops back to."""
    graph = Graph([], {}, {})
    state: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            graph.size[key] = min(MAX_VALUES + 1, 1 + sum(graph.size[id(k)] for k in kids))
            deepest = max((graph.height[id(k)] for k in kids), default=0)
            graph.height[key] = deepest + 1 if isinstance(node, yaml.CollectionNode) else 0
            state[key] = 2
            continue
        if state.get(key) == 2:
            continue
        if state.get(key) == 1:
            # Still open below itself: an alias inside an anchored list or map names it.
            graph.loop = node
            return graph
        state[key] = 1
        graph.nodes.append(node)
        stack.append((node, True))
        stack.extend((kid, False) for kid in reversed(_children(node)))
    return graph


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _spot(node: yaml.Node, message: str, key: str = "") -> Spot:
    return Spot(node.start_mark.index, _line(node), message, key=key)


def limit_spots(root: yaml.Node, graph: Graph) -> list[Spot]:
    """A loop, or where the expanded document first passes MAX_VALUES or MAX_DEPTH."""
    if graph.loop is not None:
        return [
            _spot(
                graph.loop,
                "an alias inside this anchored list or map refers back to it, a loop YAML "
                "would expand forever; write the values out",
            )
        ]
    spots = []
    if graph.size[id(root)] > MAX_VALUES:
        node = root
        while bigger := [k for k in _children(node) if graph.size[id(k)] > MAX_VALUES]:
            node = bigger[0]
        spots.append(
            _spot(
                node,
                f"its aliases expand to more than {MAX_VALUES:,} values (each alias repeats "
                "all its anchor holds; a 500-machine stack has 25,000); use fewer aliases",
            )
        )
    if graph.height[id(root)] > MAX_DEPTH:
        node, level = root, 1
        while level <= MAX_DEPTH:
            node = max(_children(node), key=lambda k: graph.height[id(k)])
            level += 1
        spots.append(
            _spot(
                node,
                f"lists and maps nest more than {MAX_DEPTH} levels deep here, aliases "
                "followed (a stack file needs fewer than 15)",
            )
        )
    return spots


def _tag_spot(node: yaml.Node, merge_keys: set[int]) -> Spot | None:
    if isinstance(node, yaml.ScalarNode):
        if node.tag == MERGE and id(node) in merge_keys:
            return None
        if node.tag in (f"{TAG}value", MERGE) and node.style is None:
            # YAML 1.1's `=` (value) and `<<` (merge key) types, which PyYAML resolves too.
            message = f"YAML 1.1 reads a lone unquoted {node.value} as a special key; quote it"
            return _spot(node, f'{message}: "{node.value}"')
        if node.tag not in SCALAR_TAGS:
            return _spot(node, _tag_message(node.tag))
        if node.tag in TYPED_TAGS:
            try:
                scalar_value(node)
            except ScalarValueError as error:
                return _spot(node, _unreadable_message(node, str(error)))
        return None
    expected = MAP if isinstance(node, yaml.MappingNode) else SEQ
    return None if node.tag == expected else _spot(node, _tag_message(node.tag))


def _tag_message(tag: str) -> str:
    return (
        f"the tag {shown_tag(tag)} is not allowed: a stack file holds text, numbers, booleans, "
        "lists and maps (quote the value if the '!' is part of its text)"
    )


_KINDS = {"int": "a number", "float": "a number", "bool": "a boolean", "timestamp": "a date"}


def short(text: str, most: int = 40) -> str:
    return text if len(text) <= most else f"{text[:most]}..."


def _unreadable_message(node: yaml.ScalarNode, reason: str) -> str:
    name = node.tag.removeprefix(TAG)
    written = short(node.value)
    if node.style is None:
        kind = _KINDS.get(name, shown_tag(node.tag))
        return f"YAML reads {written} as {kind}, which fails ({short(reason, 80)}); quote it"
    tag = shown_tag(node.tag)
    return f"the tag {tag} does not fit {written!r} ({short(reason, 80)}); remove it"


_NAMED = {f"{NAMESPACE_PREFIX}machines": "machine", f"{NAMESPACE_PREFIX}releases": "release"}


def _named_maps(root: yaml.Node) -> dict[int, str]:
    """The maps whose keys are names, by node: `stubernetes:machines`, `stubernetes:releases`."""
    named: dict[int, str] = {}
    if not isinstance(root, yaml.MappingNode):
        return named
    for key, config in root.value:
        if key.value != "config" or not isinstance(config, yaml.MappingNode):
            continue
        for entry, section in config.value:
            kind = _NAMED.get(entry.value) if isinstance(entry, yaml.ScalarNode) else None
            if kind and isinstance(section, yaml.MappingNode):
                named[id(section)] = kind
    return named


def _written(node: yaml.ScalarNode) -> str:
    return node.value if node.style is None else f'"{node.value}"'


def _name_spot(key: yaml.ScalarNode, message: str, kind: str) -> Spot:
    """A problem with the key that names a machine or release: `machine '012': field 'name'`."""
    where = machine_where(key.value) if kind == "machine" else f"{kind} '{key.value}'"
    return Spot(key.start_mark.index, _line(key), message, where=where, field="name")


def _key_spots(node: yaml.MappingNode, kind: str | None) -> Iterator[Spot]:
    """Keys that are no text, that YAML read as something else than written, or that are the
    same as an earlier key of the map once read. `kind`: what the keys name, if names."""
    seen: dict[str, yaml.ScalarNode] = {}
    typed: list[tuple[yaml.ScalarNode, object]] = []
    colliding: set[int] = set()
    for key, _ in node.value:
        if key.tag == MERGE:
            continue  # `<<: *defaults`: its keys may be overridden here, by design
        if not isinstance(key, yaml.ScalarNode):
            yield _spot(key, "a key must be text, not a list or map")
            continue
        if key.tag not in SCALAR_TAGS:
            continue  # refused by its tag
        try:
            value = scalar_value(key)
        except ScalarValueError:
            continue  # refused as unreadable
        identity = json_text(value)
        if key.tag != STR:
            typed.append((key, value))
        first = seen.setdefault(identity, key)
        if first is not key:
            colliding.update((id(first), id(key)))
            yield _duplicate_spot(first, key, identity, kind)
    for key, value in typed:
        if id(key) in colliding or (kind is None and json_text(value) == key.value):
            continue
        subject = f"{kind} name" if kind else "key"
        reading = yaml_reading(value, key.value, subject) or f"YAML read the {subject} as {value!r}"
        hint = f'quote the key: "{key.value}":' if key.value else "give it a name"
        if kind:
            yield _name_spot(key, f"{reading}; {hint}", kind)
        else:
            yield _spot(key, f"{reading}; {hint}", key=key.value)


def _duplicate_spot(
    first: yaml.ScalarNode, second: yaml.ScalarNode, identity: str, kind: str | None
) -> Spot:
    same_text = first.value == second.value and (first.style is None) == (second.style is None)
    what = f"duplicate {kind} name" if kind else "duplicate key"
    if same_text:
        message = what if kind else f"{what}; YAML would keep only the last one"
    else:
        message = (
            f"{what}: {_written(first)} at line {_line(first)} and {_written(second)} here are "
            f"the same once YAML has read them ({identity}); quote the key"
            + (f" and give each {kind} its own name" if kind else "")
        )
    if kind:
        return _name_spot(second, message, kind)
    return _spot(second, message, key=second.value)


def node_spots(root: yaml.Node, graph: Graph) -> list[Spot]:
    """Every refused tag, unreadable scalar and key of the document, in document order."""
    named = _named_maps(root)
    merge_keys = {
        id(key)
        for node in graph.nodes
        if isinstance(node, yaml.MappingNode)
        for key, _ in node.value
        if key.tag == MERGE
    }
    spots: list[Spot] = []
    for node in graph.nodes:
        tag_spot = _tag_spot(node, merge_keys)
        if tag_spot is not None:
            spots.append(tag_spot)
        if isinstance(node, yaml.MappingNode):
            spots.extend(_key_spots(node, named.get(id(node))))
    return spots
