"""A stack's config keys: `<namespace>:<name>`, and near misses of the project's namespace.

Pulumi hands a program every config key of its stack, in whatever namespace, and the program
reads its own (`stubernetes:...`). A key in another namespace is some provider's setting
(`kubernetes:context`, `pulumi:tags`) and none of the program's business, so a misspelt
namespace (`stubrnetes:releases`) would be silently ignored: the releases it meant to change
stay as they were. A namespace close to the project's is refused instead, unless it is one of
the namespaces the stack's providers and Pulumi itself read.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from stackconfig.problems import Problem

NAMESPACE = "stubernetes"

# Pulumi's own (`pulumi:tags`, `pulumi:disable-default-providers`) and those of the providers
# the program uses (pyproject.toml: pulumi-kubernetes, pulumi-command, pulumiverse-matchbox,
# pulumi-tls, pulumi-random); `kubernetes` is one letter from `stubernetes`.
OTHER_NAMESPACES = frozenset({"pulumi", "kubernetes", "command", "matchbox", "tls", "random"})

# difflib's ratio, 2 * matching characters / both lengths: one letter missing, added or
# swapped in `stubernetes` scores 0.9 or more; `kubernets` scores 0.8 against it and 0.95
# against `kubernetes`, so a namespace also has to be closer to ours than to any other.
NAMESPACE_CUTOFF = 0.8
NAME_CUTOFF = 0.6


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def closest_name(name: str, known: Collection[str]) -> str | None:
    """The known key `name` is a near miss of (`machine` for `machines`), if any."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=NAME_CUTOFF)
    return matches[0] if matches else None


def _meant(key: str, known: Collection[str]) -> str | None:
    """The project key a config key was meant to be, if it is a near miss of one: outside
    the namespace, or a misspelt name inside it; None for another namespace's key."""
    namespace, colon, name = key.partition(":")
    if not colon:
        full = [f"{NAMESPACE}:{k}" for k in known]
        if key in known:
            return f"{NAMESPACE}:{key}"
        matches = difflib.get_close_matches(key, full, n=1, cutoff=NAMESPACE_CUTOFF)
        return matches[0] if matches else None
    if namespace == NAMESPACE:
        # `stubernetes:machine`: read as meant here, so that the missing `machines` does not
        # become a second problem; a key like no other is the parser's unknown key.
        meant = closest_name(name, known) if name not in known else None
        return f"{NAMESPACE}:{meant}" if meant else None
    if namespace in OTHER_NAMESPACES:
        return None
    lowered = namespace.lower()
    ours = _ratio(lowered, NAMESPACE)
    if ours < NAMESPACE_CUTOFF or any(_ratio(lowered, o) >= ours for o in OTHER_NAMESPACES):
        return None
    return f"{NAMESPACE}:{closest_name(name, known) or name}"


@dataclass
class KeyTypos:
    """Problems with the config's keys, and each misspelt key's meaning where it is the only
    key meant as that one (so the rest of the stack can still be checked in the same run)."""

    problems: list[tuple[str, Problem]] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


def key_typos(keys: Iterable[object], known: Collection[str]) -> KeyTypos:
    """`keys`: the config's keys as read (`stubernetes:machines`, `kubernetes:context`);
    `known`: the project's keys without the namespace. Each problem comes with its key."""
    found = KeyTypos()
    keys = list(keys)
    present = {k for k in keys if isinstance(k, str)}
    for read in keys:
        key = read if isinstance(read, str) else str(read)  # `10:`, which YAML read as a number
        meant = _meant(key, known)
        if ":" not in key:
            # Pulumi refuses such a key itself: "could not parse ... as a configuration key"
            # (pulumi/pulumi sdk/go/common/resource/config/key.go ParseKey).
            hint = f"; did you mean '{meant}'?" if meant else ""
            message = f"not a config key: Pulumi's are <namespace>:<name>{hint}"
        elif meant is not None and key.startswith(f"{NAMESPACE}:"):
            message = f"unknown config key; did you mean '{meant}'?"
        elif meant is not None:
            message = (
                f"a namespace close to '{NAMESPACE}', whose keys the program would ignore; "
                f"did you mean '{meant}'?"
            )
        else:
            continue
        found.problems.append((key, Problem(key, "", message)))
        taken = present | set(found.renamed.values())
        if isinstance(read, str) and meant is not None and meant not in taken:
            found.renamed[key] = meant
    return found
