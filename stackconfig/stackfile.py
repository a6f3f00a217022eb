"""Read a Pulumi stack file (`stacks/Pulumi.<stack>.yaml`) the way the Pulumi CLI would.

Secure values (`{secure: v1:...}`) cannot be decrypted without the CLI; they are replaced by a
stand-in and their paths are listed, so an offline render says what it could not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackconfig.config_keys import KeyTypos, key_typos
from stackconfig.model import StackConfig
from stackconfig.parse import KNOWN_KEYS, NAMESPACE, parse_stack_config, split_namespace
from stackconfig.problems import ConfigError, Problem
from stackconfig.yaml_nodes import MERGE, SCALAR_TAGS, TYPED_TAGS, scalar_value
from stackconfig.yaml_reader import read_yaml

SECURE_STAND_IN = "stand-in-for-secure-value"


@dataclass(frozen=True)
class LoadedStack:
    config: StackConfig
    raw: dict[str, Any]
    secure_paths: tuple[str, ...]


def _replace_secure(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            found.append(path)
            return SECURE_STAND_IN
        return {k: _replace_secure(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _key_text(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        return ""
    return str(scalar_value(node)) if node.tag in SCALAR_TAGS else str(node.value)


def _merged(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """A map's entries with those `<<: *anchor` merges into it first, as PyYAML's
    SafeConstructor flattens them (its own keys win: they come later)."""
    entries: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag != MERGE:
            continue
        merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for item in merged:
            if isinstance(item, yaml.MappingNode):
                entries.extend(_merged(item))
    return entries + [(k, v) for k, v in node.value if k.tag != MERGE]


def _scalar_texts(node: yaml.Node, path: str, found: dict[str, str]) -> None:
    """Every unquoted typed scalar's source text under `node`, by the path `_replace_secure`
    gives it (`stubernetes:machines.w1.mac`). Recursive: the reader bounds the depth."""
    if isinstance(node, yaml.ScalarNode):
        if node.style is None and node.tag in TYPED_TAGS:
            found[path] = node.value
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _scalar_texts(item, f"{path}[{index}]", found)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in _merged(node):
            _scalar_texts(value_node, f"{path}.{_key_text(key_node)}", found)


def _config_entries(root: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    """The entries of the document's `config` map, as nodes."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key_node, value_node in _merged(root):
        if _key_text(key_node) == "config" and isinstance(value_node, yaml.MappingNode):
            return _merged(value_node)
    return []


def _config_texts(root: yaml.Node | None, renamed: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry_key, entry_value in _config_entries(root):
        name = renamed.get(_key_text(entry_key), _key_text(entry_key))
        if name.startswith(f"{NAMESPACE}:"):
            _scalar_texts(entry_value, name, found)
    return found


def _typo_problems(path: Path, root: yaml.Node | None, typos: KeyTypos) -> list[Problem]:
    lines = {_key_text(k): k.start_mark.line + 1 for k, _ in _config_entries(root)}
    return [
        Problem(p.where, p.field, f"{p.message} ({path}:{lines[key]})") if key in lines else p
        for key, p in typos.problems
    ]


@dataclass(frozen=True)
class StackFileValues:
    """A stack file's `stubernetes:` values (secure ones replaced), the replaced values' paths,
    and the source text of every unquoted scalar YAML typed, by the same kind of path."""

    values: dict[str, Any]
    secure_paths: tuple[str, ...]
    yaml_texts: dict[str, str]


def read_stack_file(path: Path) -> StackFileValues:
    """The stack file's values, or a ConfigError with every problem of its YAML (read within
    the bounds of stackconfig.yaml_limits) or of its config keys."""
    document = read_yaml(path)
    raw = document.value
    if not isinstance(raw, Mapping) or not isinstance(raw.get("config"), Mapping):
        raise ConfigError([Problem(str(path), "config", "a stack file needs a 'config' map")])
    typos = key_typos(raw["config"], KNOWN_KEYS)
    config = {typos.renamed.get(k, k): v for k, v in raw["config"].items()}
    found: list[str] = []
    values = {
        k: _replace_secure(v, f"{NAMESPACE}:{k}", found) for k, v in split_namespace(config).items()
    }
    read = StackFileValues(values, tuple(found), _config_texts(document.root, typos.renamed))
    if typos.problems:
        # The misspelt keys read as meant, so that one run names every other problem too.
        problems = _typo_problems(path, document.root, typos)
        try:
            parse_stack_config(read.values, yaml_texts=read.yaml_texts)
        except ConfigError as error:
            problems += error.problems
        raise ConfigError(problems)
    return read


def read_stack_values(path: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The `stubernetes:` values of a stack file, secure ones replaced, and the replaced paths."""
    read = read_stack_file(path)
    return read.values, read.secure_paths


def load_stack_file(path: Path) -> LoadedStack:
    read = read_stack_file(path)
    config = parse_stack_config(read.values, yaml_texts=read.yaml_texts)
    return LoadedStack(config, read.values, read.secure_paths)
