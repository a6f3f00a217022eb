"""What the program itself writes on a machine, read off that machine's generated Ignition.

The list is never written by hand: it is what `machine_ignition` generates for the machine, so a
file, unit or user the program adds later is owned the moment it is generated. Entries are
keyed as Ignition merges them (coreos/ignition `config/merge/merge.go`, docs/operator-notes.md
"Config merging"): files, directories and links by path, in one namespace; units by name, their
drop-ins by name; users and groups by name.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ignition.material import ClusterMaterial, standin_cluster_material
from ignition.node import machine_ignition
from stackconfig.model import Machine, StackConfig

# Where Ignition writes a unit and its drop-ins (coreos/ignition internal/exec/util/path.go,
# SystemdUnitsPath and SystemdDropinsPath).
SYSTEMD_UNITS_DIR = "/etc/systemd/system"

# Fedora CoreOS's /usr/local is a link to /var/usrlocal (rpm-ostree's commit step, "Linking
# /usr/local -> ../var/usrlocal"), and Ignition follows links in every element of a path but
# the last (coreos/ignition docs/operator-notes.md, "Path Traversal and Following Symlinks"):
# a snippet's /var/usrlocal/bin/x is the program's /usr/local/bin/x.
PATH_ALIASES = (("/usr/local", "/var/usrlocal"),)

# Stand-ins for generating a config whose entries, not whose contents, are wanted: the entries
# depend on the machine and the stack, never on the key material or the token.
_STANDIN_SEED = "stubernetes-owned-entries"
_STANDIN_TOKEN = "abcdef.0123456789abcdef"
_STANDIN_CERTIFICATE_KEY = "0" * 64


def canonical_path(path: str) -> str:
    """`path` as Fedora CoreOS resolves it, for comparing node paths."""
    for alias, target in PATH_ALIASES:
        if path == alias or path.startswith(f"{alias}/"):
            return target + path[len(alias) :]
    return path


@dataclass(frozen=True)
class OwnedEntries:
    """The program's own entries in one machine's Ignition config."""

    nodes: Mapping[str, str]
    """Canonical node path -> what the program has there (`the program's file /etc/hostname`)."""
    units: Mapping[str, frozenset[str]]
    """Unit name -> the names of the program's own drop-ins for it."""
    users: frozenset[str]
    groups: frozenset[str]
    """The groups the program declares, and those its users are put in."""

    def node_conflict(self, path: str) -> tuple[str, str] | None:
        """The program's node that `path` collides with, and how: `same` (the very path),
        `holds` (`path` is a directory above it) or `under` (`path` is below one of its files),
        or None."""
        path = canonical_path(path)
        if path in self.nodes:
            return path, "same"
        prefix = path.rstrip("/") + "/"
        below = sorted(p for p in self.nodes if p.startswith(prefix))
        if below:
            return below[0], "holds"
        parent = posixpath.dirname(path)
        while parent not in ("/", ""):
            if parent in self.nodes:
                return parent, "under"
            parent = posixpath.dirname(parent)
        return None


def owned_entries(config: Mapping[str, Any]) -> OwnedEntries:
    """Every entry of a generated Ignition config (its `ignition.config.merge` children, the
    user's snippets, are not the program's and are not read)."""
    storage = config.get("storage", {})
    nodes: dict[str, str] = {}
    for kind, noun in (("files", "file"), ("directories", "directory"), ("links", "link")):
        for entry in storage.get(kind, []):
            nodes[canonical_path(entry["path"])] = f"the program's {noun} {entry['path']}"
    units: dict[str, frozenset[str]] = {}
    for unit in config.get("systemd", {}).get("units", []):
        name = unit["name"]
        dropins = frozenset(d["name"] for d in unit.get("dropins", []))
        units[name] = dropins
        nodes[f"{SYSTEMD_UNITS_DIR}/{name}"] = f"the file of the program's unit {name}"
        for dropin in sorted(dropins):
            where = f"{SYSTEMD_UNITS_DIR}/{name}.d/{dropin}"
            nodes[where] = f"the program's drop-in {dropin} of its unit {name}"
    passwd = config.get("passwd", {})
    users = passwd.get("users", [])
    groups = {g["name"] for g in passwd.get("groups", [])}
    groups |= {group for user in users for group in user.get("groups", [])}
    return OwnedEntries(
        nodes=nodes,
        units=units,
        users=frozenset(u["name"] for u in users),
        groups=frozenset(groups),
    )


@lru_cache(maxsize=1)
def _standin_material() -> ClusterMaterial:
    return standin_cluster_material(_STANDIN_SEED)


def machine_owned_entries(stack: StackConfig, machine: Machine) -> OwnedEntries:
    """The entries the program writes on `machine`: those of its Ignition in a new stack's
    first update. That stage's configs hold every entry a later one does, and more on the
    founding controller (its CA material and its second kubeadm config), so a snippet is held
    to the widest; tests/offline/test_owned_entries.py checks both stages."""
    config = machine_ignition(
        stack,
        machine,
        _standin_material(),
        _STANDIN_TOKEN,
        certificate_key=_STANDIN_CERTIFICATE_KEY,
        cluster_exists=False,
    )
    return owned_entries(config)
