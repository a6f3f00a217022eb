"""Read a Pulumi stack file (`stacks/Pulumi.<stack>.yaml`) the way the Pulumi CLI would.

Secure values (`{secure: v1:...}`) cannot be decrypted without the CLI; they are replaced by a
stand-in and their paths are listed, so an offline render says what it could not know.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackconfig.model import StackConfig
from stackconfig.parse import NAMESPACE, parse_stack_config, split_namespace
from stackconfig.problems import ConfigError, Problem, machine_where

SECURE_STAND_IN = "stand-in-for-secure-value"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys, which PyYAML would silently overwrite."""

    duplicates: list[tuple[str, int]]


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


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


def _duplicate_problem(document: Any, path: Path, key: str, line: int) -> Problem:
    config = document.get("config", {}) if isinstance(document, Mapping) else {}
    machines = config.get(f"{NAMESPACE}:machines") if isinstance(config, Mapping) else None
    if isinstance(machines, Mapping) and key in machines:
        return Problem(machine_where(key), "name", f"duplicate machine name ({path}:{line})")
    return Problem(f"{path}:{line}", key, "duplicate key; YAML would keep only the last one")


# Scalars YAML 1.1 resolves to something other than text, whose source text is worth quoting
# back to the user (see `stackconfig.problems.yaml_reading`).
_TYPED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp")
)


def _key_text(loader: _UniqueKeyLoader, node: yaml.Node) -> str:
    return str(loader.construct_object(node)) if isinstance(node, yaml.ScalarNode) else ""


def _scalar_texts(
    loader: _UniqueKeyLoader, node: yaml.Node, path: str, found: dict[str, str]
) -> None:
    """Every unquoted typed scalar's source text under `node`, by the path `_replace_secure`
    gives it (`stubernetes:machines.w1.mac`)."""
    if isinstance(node, yaml.ScalarNode):
        if node.style is None and node.tag in _TYPED_TAGS:
            found[path] = node.value
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _scalar_texts(loader, item, f"{path}[{index}]", found)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _scalar_texts(loader, value_node, f"{path}.{_key_text(loader, key_node)}", found)


def _config_texts(loader: _UniqueKeyLoader, root: yaml.Node | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if not isinstance(root, yaml.MappingNode):
        return found
    for key_node, value_node in root.value:
        if _key_text(loader, key_node) != "config" or not isinstance(value_node, yaml.MappingNode):
            continue
        for entry_key, entry_value in value_node.value:
            name = _key_text(loader, entry_key)
            if name.startswith(f"{NAMESPACE}:"):
                _scalar_texts(loader, entry_value, name, found)
    return found


@dataclass(frozen=True)
class StackFileValues:
    """A stack file's `stubernetes:` values (secure ones replaced), the replaced values' paths,
    and the source text of every unquoted scalar YAML typed, by the same kind of path."""

    values: dict[str, Any]
    secure_paths: tuple[str, ...]
    yaml_texts: dict[str, str]


def read_stack_file(path: Path) -> StackFileValues:
    text = path.read_text()
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
        texts = _config_texts(loader, root)
    except yaml.YAMLError as error:
        raise ConfigError([Problem(str(path), "", f"not valid YAML: {error}")]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError([_duplicate_problem(document, path, k, n) for k, n in loader.duplicates])
    if not isinstance(document, Mapping) or not isinstance(document.get("config"), Mapping):
        raise ConfigError([Problem(str(path), "config", "a stack file needs a 'config' map")])
    found: list[str] = []
    values = {
        k: _replace_secure(v, f"{NAMESPACE}:{k}", found)
        for k, v in split_namespace(document["config"]).items()
    }
    return StackFileValues(values, tuple(found), texts)


def read_stack_values(path: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The `stubernetes:` values of a stack file, secure ones replaced, and the replaced paths."""
    read = read_stack_file(path)
    return read.values, read.secure_paths


def load_stack_file(path: Path) -> LoadedStack:
    read = read_stack_file(path)
    config = parse_stack_config(read.values, yaml_texts=read.yaml_texts)
    return LoadedStack(config, read.values, read.secure_paths)
