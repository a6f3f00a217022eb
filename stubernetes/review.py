"""A machine's Ignition as a person reviews it: the files it creates at their paths, its units
and presets, and a short summary.

Everything here is read back from the rendered Ignition config and Matchbox profile, not from
the stack config, so the tree shows what the machine would receive. Snippets (merged by
Ignition itself from `ignition.config.merge`) are merged here as Ignition merges them: a child's
list entries replace the parent's field by field, matched by their key (`path`, `name`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from ignition.entries import decode_data_url

SUMMARY = "summary.txt"
UNIT_DIR = "/etc/systemd/system"
# Where Ignition records `enabled` (coreos/ignition internal/exec/util/unit.go: presetPath).
PRESET_FILE = "/etc/systemd/system-preset/20-ignition.preset"
SETUP_ENV = "/etc/stubernetes/setup.env"
# The keys Ignition matches list entries by when it merges a child config into its parent
# (coreos/ignition config/merge/merge.go and the `Key()` of each type in config/v3_3/types).
_LIST_KEYS = {
    "files": "path",
    "directories": "path",
    "links": "path",
    "units": "name",
    "dropins": "name",
    "users": "name",
    "groups": "name",
    "disks": "device",
    "filesystems": "device",
    "raid": "name",
    "luks": "name",
    "trees": "path",
}


@dataclass(frozen=True)
class NamedSecret:
    """A value the program holds as a secret, by the name a summary may print."""

    name: str
    value: str


@dataclass
class _Entry:
    path: str
    kind: str  # file, directory, link
    mode: int | None
    owner: str
    contents: bytes | None = None
    note: str = ""
    from_snippet: bool = False


@dataclass
class _Review:
    entries: dict[str, _Entry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _merge(parent: Any, child: Any, list_key: str | None = None) -> Any:
    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = _merge(parent[key], value, key) if key in parent else value
        return merged
    if isinstance(parent, list) and isinstance(child, list):
        key = _LIST_KEYS.get(list_key or "")
        if key is None:
            return [*parent, *(item for item in child if item not in parent)]
        merged_list = list(parent)
        positions = {
            item.get(key): i for i, item in enumerate(merged_list) if isinstance(item, dict)
        }
        for item in child:
            name = item.get(key) if isinstance(item, dict) else None
            if name in positions:
                merged_list[positions[name]] = _merge(merged_list[positions[name]], item)
            else:
                positions[name] = len(merged_list)
                merged_list.append(item)
        return merged_list
    return child


def merged_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], set[str]]:
    """The config with its inline merge children merged in order; notes on what could not be
    merged offline; and the paths and unit names a child set."""
    merges = config.get("ignition", {}).get("config", {}).get("merge", [])
    result = {k: v for k, v in config.items()}
    notes = []
    touched: set[str] = set()
    for index, merge in enumerate(merges):
        source = merge.get("source", "")
        raw = decode_data_url(source)
        if raw is None:
            notes.append(f"snippet {index}: fetched and merged at first boot from {source}")
            continue
        if merge.get("compression") == "gzip":
            raw = gzip.decompress(raw)
        child = json.loads(raw)
        child.pop("ignition", None)
        for section in ("storage", "systemd", "passwd"):
            for entries in child.get(section, {}).values():
                for item in entries if isinstance(entries, list) else []:
                    if isinstance(item, dict):
                        touched.add(str(item.get("path") or item.get("name")))
        result = _merge(result, child)
    return result, notes, touched


def _owner(entry: Mapping[str, Any]) -> str:
    user = entry.get("user") or {}
    group = entry.get("group") or {}
    who = str(user.get("name") or user.get("id") or "root")
    grp = str(group.get("name") or group.get("id") or "root")
    return f"{who}:{grp}"


def _contents(resource: Mapping[str, Any] | None) -> tuple[bytes | None, str]:
    if not resource or resource.get("source") is None:
        return b"", ""
    source = str(resource["source"])
    raw = decode_data_url(source)
    if raw is None:
        digest = (resource.get("verification") or {}).get("hash")
        checked = f", refused unless its digest is {digest}" if digest else ", unverified"
        return None, f"fetched at first boot from {source}{checked}"
    if resource.get("compression") == "gzip":
        raw = gzip.decompress(raw)
    return raw, ""


def _files(config: Mapping[str, Any], touched: set[str], review: _Review) -> None:
    storage = config.get("storage", {})
    for entry in storage.get("directories", []):
        review.entries[entry["path"]] = _Entry(
            entry["path"],
            "directory",
            entry.get("mode", 0o755),
            _owner(entry),
            from_snippet=entry["path"] in touched,
        )
    for entry in storage.get("files", []):
        contents, note = _contents(entry.get("contents"))
        for append in entry.get("append", []):
            more, more_note = _contents(append)
            note = note or more_note
            contents = None if contents is None or more is None else contents + more
        review.entries[entry["path"]] = _Entry(
            entry["path"],
            "file",
            entry.get("mode", 0o644),
            _owner(entry),
            contents,
            note,
            from_snippet=entry["path"] in touched,
        )
    for entry in storage.get("links", []):
        kind = "hard link" if entry.get("hard") else "symlink"
        review.entries[entry["path"]] = _Entry(
            entry["path"],
            "link",
            None,
            _owner(entry),
            note=f"{kind} to {entry.get('target')}",
            from_snippet=entry["path"] in touched,
        )


def _units(config: Mapping[str, Any], touched: set[str], review: _Review) -> list[str]:
    """Unit files and drop-ins into the review; returns the preset lines."""
    presets = []
    for unit in config.get("systemd", {}).get("units", []):
        name = unit["name"]
        path = f"{UNIT_DIR}/{name}"
        snippet = name in touched
        if unit.get("mask"):
            review.entries[path] = _Entry(
                path,
                "link",
                None,
                "root:root",
                note="masked: symlink to /dev/null",
                from_snippet=snippet,
            )
        elif unit.get("contents") is not None:
            review.entries[path] = _Entry(
                path, "file", 0o644, "root:root", unit["contents"].encode(), from_snippet=snippet
            )
        for dropin in unit.get("dropins", []):
            if dropin.get("contents") is None:
                continue
            dropin_path = f"{UNIT_DIR}/{name}.d/{dropin['name']}"
            review.entries[dropin_path] = _Entry(
                dropin_path,
                "file",
                0o644,
                "root:root",
                dropin["contents"].encode(),
                from_snippet=snippet,
            )
        if unit.get("enabled") is True:
            presets.append(f"enable {name}")
        elif unit.get("enabled") is False:
            presets.append(f"disable {name}")
    # Ignition writes the preset file sorted by unit name (coreos/ignition
    # internal/exec/stages/files/units.go, createSystemdPresetFile).
    presets.sort(key=lambda line: line.partition(" ")[2])
    if presets:
        review.entries[PRESET_FILE] = _Entry(
            PRESET_FILE, "file", 0o644, "root:root", "".join(f"{p}\n" for p in presets).encode()
        )
    return presets


def _users(config: Mapping[str, Any], review: _Review) -> list[dict[str, Any]]:
    users = list(config.get("passwd", {}).get("users", []))
    for user in users:
        keys = user.get("sshAuthorizedKeys") or []
        if not keys:
            continue
        home = user.get("homeDir") or f"/home/{user['name']}"
        path = f"{home}/.ssh/authorized_keys.d/ignition"
        review.entries[path] = _Entry(
            path,
            "file",
            0o600,
            f"{user['name']}:{user['name']}",
            "".join(f"{k}\n" for k in keys).encode(),
        )
    return users


def _env_value(text: str, key: str) -> str:
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name == key:
            return value.strip("'\"")
    return ""


# PyYAML's libyaml-backed SafeLoader when it was built with libyaml: the same parser and
# constructors in C (yaml/pyyaml lib/yaml/cyaml.py: CSafeLoader is CParser + SafeConstructor +
# Resolver), an order of magnitude faster than the pure-Python one on every machine's
# kubeadm.yaml.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _kinds(text: bytes | None) -> str:
    if not text:
        return ""
    try:
        documents = list(yaml.load_all(text, Loader=_SAFE_LOADER))
    except yaml.YAMLError:
        return ""
    return ", ".join(str(d.get("kind")) for d in documents if isinstance(d, dict))


def _kubeadm_lines(entries: Mapping[str, _Entry]) -> list[str]:
    env = entries.get(SETUP_ENV)
    if env is None or env.contents is None:
        return ["kubeadm: none (no stubernetes setup service in this config)"]
    text = env.contents.decode()
    command = _env_value(text, "KUBEADM_COMMAND")
    config = "/etc/stubernetes/kubeadm.yaml"
    lines = [f"kubeadm: {command} --config {config} ({_kinds(_bytes(entries, config))})"]
    join = "/etc/stubernetes/kubeadm-join.yaml"
    if command == "init" and join in entries:
        endpoint = _env_value(text, "API_ENDPOINT")
        lines.append(
            f"  or join --config {join} ({_kinds(_bytes(entries, join))}) when its cluster "
            f"already answers at {endpoint}"
        )
    return lines


def _bytes(entries: Mapping[str, _Entry], path: str) -> bytes | None:
    entry = entries.get(path)
    return entry.contents if entry else None


class SecretFinder:
    """The names of the secrets a text holds, sorted. A render asks this of every file of every
    machine, and most files are the same on every machine while the secrets grow with the
    machines: each distinct text is searched once, not once per machine."""

    def __init__(self, secrets: Sequence[NamedSecret]) -> None:
        self._secrets = [s for s in secrets if s.value]
        self._found: dict[str | bytes, list[str]] = {}

    def names(self, text: str | bytes) -> list[str]:
        found = self._found.get(text)
        if found is None:
            plain = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            found = sorted({s.name for s in self._secrets if s.value in plain})
            self._found[text] = found
        return found


def _secret_lines(
    entries: Mapping[str, _Entry],
    users: Sequence[Mapping[str, Any]],
    secrets: SecretFinder,
) -> list[str]:
    lines = []
    for path, entry in sorted(entries.items()):
        names = secrets.names(entry.contents or b"")
        if names:
            lines.append(f"  {path}: {', '.join(names)}")
    for user in users:
        names = secrets.names(json.dumps(user))
        if names:
            lines.append(f"  user {user['name']}: {', '.join(names)}")
    return lines or ["  none"]


def _mode(entry: _Entry) -> str:
    return f"{entry.mode:04o}" if entry.mode is not None else "    "


def _listing(entries: Mapping[str, _Entry]) -> Iterator[str]:
    for path, entry in sorted(entries.items()):
        notes = [n for n in (entry.note, "from a snippet" if entry.from_snippet else "") if n]
        kind = "" if entry.kind == "file" else f"{entry.kind} "
        owner = "" if entry.owner == "root:root" else f" ({entry.owner})"
        suffix = f"  [{'; '.join(notes)}]" if notes else ""
        yield f"  {_mode(entry)} {kind}{path}{owner}{suffix}"


@dataclass(frozen=True)
class MachineFacts:
    """What the summary says about a machine that its Ignition does not hold."""

    name: str
    role: str
    mac: str
    os: str
    profile: Mapping[str, Any]


def review_tree(
    facts: MachineFacts, ignition: bytes, secrets: SecretFinder
) -> dict[PurePosixPath, bytes]:
    """The files of `machines/<name>/`: every file the config creates, at its path, and
    `summary.txt`."""
    config, notes, touched = merged_config(json.loads(ignition))
    review = _Review(notes=notes)
    _files(config, touched, review)
    presets = _units(config, touched, review)
    users = _users(config, review)
    if f"/{SUMMARY}" in review.entries:
        raise ValueError(
            f"machine '{facts.name}': its Ignition writes /{SUMMARY}, where the render puts "
            "the machine's summary"
        )
    tree = {
        PurePosixPath(path.lstrip("/")): entry.contents
        for path, entry in review.entries.items()
        if entry.contents is not None and entry.kind == "file"
    }
    tree[PurePosixPath(SUMMARY)] = summary_text(facts, config, review, presets, users, secrets)
    return tree


def _install_lines(facts: MachineFacts, config: Mapping[str, Any]) -> list[str]:
    boot = facts.profile.get("boot", {})
    args = list(boot.get("args", []))
    disk = next(
        (a.partition("=")[2] for a in args if a.startswith("coreos.inst.install_dev=")), "?"
    )
    lines = [f"install: {facts.os} to {disk}", f"  kernel: {boot.get('kernel', '')}"]
    lines += [f"  initrd: {initrd}" for initrd in boot.get("initrd", [])]
    lines.append("  live installer kernel arguments:")
    lines += [f"    {arg}" for arg in args]
    kargs = config.get("kernelArguments", {})
    present = kargs.get("shouldExist", [])
    absent = kargs.get("shouldNotExist", [])
    if present or absent:
        lines.append("installed system kernel arguments (Ignition kernelArguments):")
        lines += [f"  + {arg}" for arg in present] + [f"  - {arg}" for arg in absent]
    else:
        lines.append("installed system kernel arguments: none added")
    return lines


def summary_text(
    facts: MachineFacts,
    config: Mapping[str, Any],
    review: _Review,
    presets: Sequence[str],
    users: Sequence[Mapping[str, Any]],
    secrets: SecretFinder,
) -> bytes:
    lines = [
        f"machine {facts.name}: {facts.role}, MAC {facts.mac}",
        *_kubeadm_lines(review.entries),
    ]
    lines += _install_lines(facts, config)
    for user in users:
        groups = " ".join(user.get("groups", [])) or "none"
        keys = len(user.get("sshAuthorizedKeys") or [])
        password = "a password hash" if user.get("passwordHash") else "no password"
        lines.append(f"user {user['name']}: groups {groups}; {keys} SSH key(s); {password}")
    lines.append("units (presets: " + (", ".join(presets) or "none") + "):")
    for unit in config.get("systemd", {}).get("units", []):
        state = (
            "masked" if unit.get("mask") else ("enabled" if unit.get("enabled") else "not enabled")
        )
        dropins = [d["name"] for d in unit.get("dropins", [])]
        extra = f", drop-ins {' '.join(dropins)}" if dropins else ""
        lines.append(f"  {unit['name']}: {state}{extra}")
    lines.append("files (mode, path):")
    lines += list(_listing(review.entries))
    lines.append("secret (by name; stand-ins in this render):")
    lines += _secret_lines(review.entries, users, secrets)
    lines += review.notes
    return ("\n".join(lines) + "\n").encode()
