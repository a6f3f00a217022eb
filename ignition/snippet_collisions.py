"""Snippets that would take over what the program writes on their machine: refused.

A machine's snippets are merged by Ignition itself over the config the program generates:
each is a child config in the parent's `ignition.config.merge` (ignition/node.py
`_merged_snippets`). Ignition's merge rules (coreos/ignition `config/merge/merge.go`, and
docs/operator-notes.md "Config merging") decide what a snippet's entry does to the program's:

- files, directories and links are one list keyed by path: a child's entry at a parent's path
  is merged into it field by field, the child's fields winning (new `contents`, `mode`,
  `user`; its `append` added), and an entry of another kind at that path replaces it;
- units are keyed by name: a child's `contents`, `enabled` and `mask` win over the parent's,
  and its `dropins` are merged by name, so a drop-in of a new name only adds to the unit;
- users and groups are keyed by name: a child's `shell`, `passwordHash`, `shouldExist`...
  win, and its `groups` and `sshAuthorizedKeys` are added.

So a snippet may add files, units and users of its own, and drop-ins of its own to the
program's units; it may not name a path the program writes (nor a directory above one, where
a link or file would move it and a directory entry change its owner or mode, nor a path below
one of its files), set anything but drop-ins on a program unit, or name a program user or
group. What the program writes is read off the machine's generated config
(ignition.owned_entries), never listed by hand. Only machines with snippets are generated.

Not checked: a snippet's own `ignition.config.merge` children (fetched by the machine, maybe
from elsewhere), and what a snippet's files do once the machine runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ignition.owned_entries import OwnedEntries, machine_owned_entries
from stackconfig.model import Machine, StackConfig
from stackconfig.problems import Problem, machine_where

_NODE_KINDS = ("files", "directories", "links")
# A unit's fields a snippet may set on a program unit: its name, and drop-ins of its own.
_UNIT_FIELDS_ALLOWED = frozenset({"name", "dropins"})


def _node_message(path: str, owner: str, how: str) -> str:
    if how == "same":
        return (
            f"collides with {owner}: Ignition merges a snippet's files, directories and links "
            "into the program's by path, the snippet's fields winning, so this entry would "
            "replace or change it; use a path of your own"
        )
    if how == "holds":
        return (
            f"{path!r} is a directory above {owner}: a link or file there would move the "
            "program's files or leave them no place, a directory entry would change their "
            "directory's owner or mode"
        )
    return f"{path!r} is below {owner}, which would have to be a directory"


def _node_problems(snippet: Mapping[str, Any], owned: OwnedEntries) -> Iterator[tuple[str, str]]:
    storage = snippet.get("storage")
    if not isinstance(storage, Mapping):
        return
    for kind in _NODE_KINDS:
        entries = storage.get(kind)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            path = entry.get("path") if isinstance(entry, Mapping) else None
            if not isinstance(path, str):
                continue
            conflict = owned.node_conflict(path)
            if conflict is not None:
                target, how = conflict
                yield f"storage.{kind}[{index}].path", _node_message(path, owned.nodes[target], how)


def _unit_problems(snippet: Mapping[str, Any], owned: OwnedEntries) -> Iterator[tuple[str, str]]:
    systemd = snippet.get("systemd")
    units = systemd.get("units") if isinstance(systemd, Mapping) else None
    for index, unit in enumerate(units if isinstance(units, list) else []):
        name = unit.get("name") if isinstance(unit, Mapping) else None
        if not isinstance(name, str) or name not in owned.units:
            continue
        at = f"systemd.units[{index}]"
        for field in sorted(set(unit) - _UNIT_FIELDS_ALLOWED):
            yield (
                f"{at}.{field}",
                f"collides with the program's unit {name}: Ignition would take its {field!r} "
                "from the snippet; on a program unit a snippet may only add drop-ins of its "
                "own (dropins, with a new name)",
            )
        dropins = unit.get("dropins")
        for number, dropin in enumerate(dropins if isinstance(dropins, list) else []):
            dropin_name = dropin.get("name") if isinstance(dropin, Mapping) else None
            if isinstance(dropin_name, str) and dropin_name in owned.units[name]:
                yield (
                    f"{at}.dropins[{number}].name",
                    f"collides with the program's drop-in {dropin_name} of its unit {name}: "
                    "Ignition would take its contents from the snippet; give yours another name",
                )


def _passwd_problems(snippet: Mapping[str, Any], owned: OwnedEntries) -> Iterator[tuple[str, str]]:
    passwd = snippet.get("passwd")
    if not isinstance(passwd, Mapping):
        return
    users = passwd.get("users")
    for index, user in enumerate(users if isinstance(users, list) else []):
        name = user.get("name") if isinstance(user, Mapping) else None
        if isinstance(name, str) and name in owned.users:
            yield (
                f"passwd.users[{index}].name",
                f"collides with the program's user {name!r}: Ignition merges a snippet's users "
                "into the program's by name, the snippet's fields (shell, passwordHash, "
                "shouldExist...) winning and its groups and SSH keys added; add a user of your "
                "own (the admin's SSH keys are stubernetes:admin's sshAuthorizedKeys)",
            )
    groups = passwd.get("groups")
    for index, group in enumerate(groups if isinstance(groups, list) else []):
        name = group.get("name") if isinstance(group, Mapping) else None
        if isinstance(name, str) and name in owned.groups:
            yield (
                f"passwd.groups[{index}].name",
                f"{name!r} is a group the program declares or puts its user in: Ignition "
                "would take the group's fields from the snippet (shouldExist: false removes "
                "it); add a group of your own",
            )


def machine_snippet_collisions(machine: Machine, owned: OwnedEntries) -> list[Problem]:
    """A problem for each entry of `machine`'s snippets that collides with `owned`."""
    where = machine_where(machine.name)
    problems = []
    for index, snippet in enumerate(machine.snippets):
        for check in (_node_problems, _unit_problems, _passwd_problems):
            problems += [
                Problem(where, f"snippets[{index}].{field}", message)
                for field, message in check(snippet, owned)
            ]
    return problems


def snippet_collisions(stack: StackConfig) -> list[Problem]:
    """Every collision of any machine's snippets with what the program writes there."""
    problems = []
    for machine in stack.machines:
        if machine.snippets:
            problems += machine_snippet_collisions(machine, machine_owned_entries(stack, machine))
    return problems
