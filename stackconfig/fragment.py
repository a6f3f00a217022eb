"""A strict structural validator for Ignition spec 3.3.0 configs and fragments.

A fragment is a full or partial Ignition config (a dict, as parsed from YAML or JSON) that will
be merged into a generated config. It is checked against one nested description of the 3.3.0
spec (``SPEC``) by one walker. Stricter than ``ignition-validate``: an unknown key is a problem,
not a warning. Pure Python, stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote_to_bytes, urlsplit

ROOT = "(root)"
"""The path given to a problem with the fragment as a whole."""

Check = Callable[[object], str | None]


@dataclass(frozen=True)
class Scalar:
    """A string, boolean or integer, with an optional semantic check returning a message."""

    kind: type[object]
    check: Check | None = None


@dataclass(frozen=True)
class Obj:
    """An object with known keys; ``exclusive`` keys may not be set together."""

    fields: Mapping[str, Node]
    required: frozenset[str] = frozenset()
    exclusive: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Seq:
    """A list. ``key`` names the field that must be unique (``SELF``: the item itself);
    lists sharing a ``scope`` share one namespace for that uniqueness."""

    item: Node
    key: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class Forbidden:
    """A key that the spec knows but a snippet must not set."""

    reason: str


Node: TypeAlias = Scalar | Obj | Seq | Forbidden
SELF = "."

# --- semantic checks: each returns a message, or None when the value is fine -------------

_VERSIONS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0")
_SCHEMES = ("http", "https", "tftp", "s3", "gs", "data")
_UNIT_SUFFIXES = (
    ".service", ".socket", ".target", ".timer", ".path", ".mount",
    ".automount", ".swap", ".slice", ".scope", ".device",
)  # fmt: skip
_HASH = re.compile(r"sha512-[0-9a-fA-F]{128}|sha256-[0-9a-fA-F]{64}")
_URIC = re.compile(r"(?:[A-Za-z0-9;/?:@&=+$,\-_.!~*'()]|%[0-9A-Fa-f]{2})*")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INT64 = range(-(2**63), 2**63)


def _version(value: object) -> str | None:
    if value in _VERSIONS:
        return None
    return f"unsupported version {value!r}; a snippet must be one of {', '.join(_VERSIONS)}"


def _absolute(value: object) -> str | None:
    return None if str(value).startswith("/") else f"must be an absolute path, got {value!r}"


def _node_path(value: object) -> str | None:
    path = str(value)
    if not path.startswith("/"):
        return f"must be an absolute path, got {path!r}"
    if path.startswith("//") or posixpath.normpath(path) != path:
        return f"must be a simplified path (no '.', '..', '//' or trailing '/'), got {path!r}"
    return None


def _mode(value: object) -> str | None:
    if isinstance(value, int) and 0 <= value <= 0o7777:
        return None
    return (
        f"must be between 0 and 4095 (0o7777), got {value!r}; "
        "write the mode in decimal, e.g. 420 for 0644"
    )


def _one_of(*allowed: str) -> Check:
    def check(value: object) -> str | None:
        return None if value in allowed else f"must be one of {allowed!r}, got {value!r}"

    return check


def _unit_name(value: object) -> str | None:
    name = str(value)
    if any(name.endswith(s) and len(name) > len(s) for s in _UNIT_SUFFIXES):
        return None
    return f"unit name {name!r} must end with one of {', '.join(_UNIT_SUFFIXES)}"


def _dropin_name(value: object) -> str | None:
    name = str(value)
    ok = name.endswith(".conf") and len(name) > len(".conf")
    return None if ok else f"drop-in name {name!r} must end with '.conf'"


def _hash(value: object) -> str | None:
    if _HASH.fullmatch(str(value)):
        return None
    return f"must be 'sha512-<128 hex digits>' or 'sha256-<64 hex digits>', got {value!r}"


def _source(value: object) -> str | None:
    url = str(value)
    try:
        scheme = urlsplit(url).scheme
    except ValueError as error:
        return f"not a valid URL ({error})"
    if scheme not in _SCHEMES:
        return f"URL scheme {scheme!r} is not supported; use one of {', '.join(_SCHEMES)}"
    return _data_url(url) if scheme == "data" else None


def _data_url(url: str) -> str | None:
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        return "a data URL needs a ',' before its contents"
    media_type = header.split(";")[0]
    if media_type and "/" not in media_type:
        return f"data URL media type {media_type!r} needs a '/', e.g. text/plain"
    if not _URIC.fullmatch(payload):
        return "data URL contents must be percent-encoded (no spaces or raw special characters)"
    if header.endswith(";base64"):
        try:
            base64.b64decode(unquote_to_bytes(payload), validate=True)
        except binascii.Error:
            return "data URL contents are not valid base64"
    return None


# --- the spec ------------------------------------------------------------------------------

STR = Scalar(str)
BOOL = Scalar(bool)
INT = Scalar(int)
DEVICE = Scalar(str, _absolute)
NODE_PATH = Scalar(str, _node_path)
MODE = Scalar(int, _mode)
STRINGS = Seq(STR)


def _required(*keys: str) -> frozenset[str]:
    return frozenset(keys)


def _resource(*required: str) -> Obj:
    """Contents fetched from a URL: files' contents and appends, merged configs, CAs, keys."""
    header = Obj({"name": STR, "value": STR}, _required("name"))
    fields: dict[str, Node] = {
        "source": Scalar(str, _source),
        "compression": Scalar(str, _one_of("", "gzip")),
        "httpHeaders": Seq(header, key="name"),
        "verification": Obj({"hash": Scalar(str, _hash)}),
    }
    return Obj(fields, _required(*required))


IGNITION = Obj(
    {
        "version": Scalar(str, _version),
        "config": Obj(
            {
                "merge": Seq(_resource("source")),
                "replace": Forbidden(
                    "a snippet must not replace the config it is merged into; use merge"
                ),
            }
        ),
        "timeouts": Obj({"httpResponseHeaders": INT, "httpTotal": INT}),
        "security": Obj(
            {"tls": Obj({"certificateAuthorities": Seq(_resource("source"), key="source")})}
        ),
        "proxy": Obj({"httpProxy": STR, "httpsProxy": STR, "noProxy": STRINGS}),
    }
)

PARTITION = Obj(
    {
        "label": STR,
        "number": INT,
        "sizeMiB": INT,
        "startMiB": INT,
        "typeGuid": STR,
        "guid": STR,
        "wipePartitionEntry": BOOL,
        "shouldExist": BOOL,
        "resize": BOOL,
    }
)
DISK = Obj({"device": DEVICE, "wipeTable": BOOL, "partitions": Seq(PARTITION)}, _required("device"))
RAID = Obj(
    {"name": STR, "level": STR, "devices": Seq(DEVICE), "spares": INT, "options": STRINGS},
    _required("name", "level", "devices"),
)
FILESYSTEM = Obj(
    {
        "device": DEVICE,
        "format": Scalar(str, _one_of("ext4", "btrfs", "xfs", "vfat", "swap", "none")),
        "path": NODE_PATH,
        "wipeFilesystem": BOOL,
        "label": STR,
        "uuid": STR,
        "options": STRINGS,
        "mountOptions": STRINGS,
    },
    _required("device", "format"),
)

# Files, directories and links share these fields, and one namespace of unique paths.
OWNER = Obj({"id": INT, "name": STR}, exclusive=_required("id", "name"))
NODE: dict[str, Node] = {"path": NODE_PATH, "overwrite": BOOL, "user": OWNER, "group": OWNER}
FILE = Obj(
    {**NODE, "contents": _resource(), "append": Seq(_resource()), "mode": MODE},
    _required("path"),
)
DIRECTORY = Obj({**NODE, "mode": MODE}, _required("path"))
LINK = Obj({**NODE, "target": STR, "hard": BOOL}, _required("path", "target"))

TANG = Obj({"url": STR, "thumbprint": STR}, _required("url", "thumbprint"))
CLEVIS = Obj(
    {
        "tang": Seq(TANG, key="url"),
        "tpm2": BOOL,
        "threshold": INT,
        "custom": Obj(
            {"pin": STR, "config": STR, "needsNetwork": BOOL}, _required("pin", "config")
        ),
    }
)
LUKS = Obj(
    {
        "name": STR,
        "device": DEVICE,
        "keyFile": _resource(),
        "label": STR,
        "uuid": STR,
        "options": STRINGS,
        "wipeVolume": BOOL,
        "clevis": CLEVIS,
    },
    _required("name", "device"),
)

STORAGE = Obj(
    {
        "disks": Seq(DISK, key="device"),
        "raid": Seq(RAID, key="name"),
        "filesystems": Seq(FILESYSTEM, key="device"),
        "files": Seq(FILE, key="path", scope="node path"),
        "directories": Seq(DIRECTORY, key="path", scope="node path"),
        "links": Seq(LINK, key="path", scope="node path"),
        "luks": Seq(LUKS, key="name"),
    }
)

DROPIN = Obj({"name": Scalar(str, _dropin_name), "contents": STR}, _required("name"))
UNIT = Obj(
    {
        "name": Scalar(str, _unit_name),
        "enabled": BOOL,
        "mask": BOOL,
        "contents": STR,
        "dropins": Seq(DROPIN, key="name"),
    },
    _required("name"),
)

USER = Obj(
    {
        "name": STR,
        "passwordHash": STR,
        "sshAuthorizedKeys": Seq(STR, key=SELF),
        "uid": INT,
        "gecos": STR,
        "homeDir": STR,
        "noCreateHome": BOOL,
        "primaryGroup": STR,
        "groups": Seq(STR, key=SELF),
        "noUserGroup": BOOL,
        "noLogInit": BOOL,
        "shell": STR,
        "shouldExist": BOOL,
        "system": BOOL,
    },
    _required("name"),
)
GROUP = Obj(
    {"name": STR, "gid": INT, "passwordHash": STR, "shouldExist": BOOL, "system": BOOL},
    _required("name"),
)

SPEC = Obj(
    {
        "ignition": IGNITION,
        "storage": STORAGE,
        "systemd": Obj({"units": Seq(UNIT, key="name")}),
        "passwd": Obj({"users": Seq(USER, key="name"), "groups": Seq(GROUP, key="name")}),
        "kernelArguments": Obj({"shouldExist": STRINGS, "shouldNotExist": STRINGS}),
    }
)
"""Ignition spec 3.3.0, as seen by a snippet: ``ignition.version`` is optional."""


# --- the walker ----------------------------------------------------------------------------


def fragment_problems(fragment: object) -> list[str]:
    """Every problem in an Ignition 3.3 fragment, each as 'path: message' (path like
    storage.files[0].mode). Empty when valid."""
    walker = _Walker()
    walker.walk(SPEC, fragment, "")
    return walker.problems + _storage_problems(fragment)


def _storage_problems(fragment: object) -> list[str]:
    """What Ignition refuses across storage entries (coreos/ignition
    config/v3_3/types/storage.go validateDirectories, validateFiles, validateLinks): an entry
    below a link of the same config ("directory path includes link in config", and likewise
    for a file or link), and a hard link to one of its directories ("hard link target is a
    directory"). Paths are compared as written, as Ignition compares them."""
    storage = fragment.get("storage") if isinstance(fragment, dict) else None
    if not isinstance(storage, dict):
        return []

    def paths(kind: str) -> list[tuple[int, str, dict[object, object]]]:
        entries = storage.get(kind)
        if not isinstance(entries, list):
            return []
        return [
            (index, entry["path"], entry)
            for index, entry in enumerate(entries)
            if isinstance(entry, dict) and isinstance(entry.get("path"), str)
        ]

    links = [path for _, path, _ in paths("links")]
    directories = {path for _, path, _ in paths("directories")}
    problems = []
    for kind, noun in (("directories", "directory"), ("files", "file"), ("links", "link")):
        for index, path, entry in paths(kind):
            under = next((link for link in links if path.startswith(link + "/")), None)
            if under is not None:
                problems.append(
                    f"storage.{kind}[{index}].path: {path!r} is below {under!r}, a link of this "
                    f"config; Ignition refuses it ({noun} path includes link in config)"
                )
            target = entry.get("target")
            if kind == "links" and entry.get("hard") is True and isinstance(target, str):
                resolved = posixpath.normpath(posixpath.join(path, target))
                if resolved in directories:
                    problems.append(
                        f"storage.links[{index}].target: {target!r} is a directory of this "
                        "config; Ignition refuses a hard link to it (hard link target is a "
                        "directory)"
                    )
    return problems


_EXPECTED = {str: "a string", bool: "a boolean", int: "an integer"}


class _Walker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.first_at: dict[str, dict[str, str]] = {}  # scope -> unique key -> its first path

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or ROOT}: {message}")

    def walk(self, node: Node, value: object, path: str) -> None:
        if isinstance(node, Forbidden):
            self.report(path, node.reason)
        elif isinstance(node, Scalar):
            problem = _type_problem(node, value)
            if problem is None and node.check is not None:
                problem = node.check(value)
            if problem is not None:
                self.report(path, problem)
        elif isinstance(node, Obj):
            if isinstance(value, dict):
                self.walk_object(node, value, path)
            else:
                self.report(path, f"expected an object, got {_describe(value)}")
        elif isinstance(value, list):
            self.walk_list(node, value, path)
        else:
            self.report(path, f"expected a list, got {_describe(value)}")

    def walk_object(self, node: Obj, value: dict[object, object], path: str) -> None:
        for key, item in value.items():
            child = node.fields.get(key) if isinstance(key, str) else None
            if child is None:
                self.report(*_unknown_key(node, key, path))
            elif item is not None:
                self.walk(child, item, _join(path, str(key)))
            elif key in node.required:
                self.report(_join(path, str(key)), "required, got null")
        for key in node.fields:
            if key in node.required and key not in value:
                self.report(_join(path, key), "required but missing")
        both = sorted(key for key in node.exclusive if value.get(key) is not None)
        if len(both) > 1:
            self.report(path, f"set only one of {', '.join(both)}")

    def walk_list(self, node: Seq, value: list[object], path: str) -> None:
        first_at = {} if node.scope is None else self.first_at.setdefault(node.scope, {})
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if item is None:
                self.report(item_path, "expected a value, got null")
                continue
            self.walk(node.item, item, item_path)
            if node.key == SELF:
                key, key_path = item, item_path
            elif node.key is not None and isinstance(item, dict):
                key, key_path = item.get(node.key), f"{item_path}.{node.key}"
            else:
                continue
            if isinstance(key, str) and first_at.setdefault(key, key_path) != key_path:
                self.report(key_path, f"duplicate {key!r} (first at {first_at[key]})")


def _type_problem(node: Scalar, value: object) -> str | None:
    if isinstance(value, node.kind) and not (node.kind is int and isinstance(value, bool)):
        if node.kind is int and value not in _INT64:
            return f"integer {value} is out of range"
        return None
    problem = f"expected {_EXPECTED[node.kind]}, got {_describe(value)}"
    if node.kind is int and isinstance(value, float):
        problem += " (Ignition accepts only whole JSON numbers, e.g. 420 not 420.0)"
    return problem


def _unknown_key(node: Obj, key: object, path: str) -> tuple[str, str]:
    if not (isinstance(key, str) and _PLAIN_KEY.fullmatch(key)):
        return path, f"unknown key {key!r}"
    close = difflib.get_close_matches(key, list(node.fields), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(node.fields)}"
    return _join(path, key), f"unknown key, not in Ignition spec 3.3.0 ({hint})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
