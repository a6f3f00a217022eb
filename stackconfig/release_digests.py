"""Which Kubernetes release a stack's nodes run, and the sha256 of each binary they download.

A stack names a minor ("1.36": its newest patch pinned in stackconfig/pinned_digests.py) or a
patch ("1.36.3"). Every binary's digest comes from the pinned table or, for a release the table
lacks (or a build of one's own), from the stack's `cluster.binarySha256`, which wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stackconfig.pinned_digests import (
    CNI_PLUGINS_SHA256,
    CRICTL_SHA256,
    KUBERNETES_BINARIES,
    KUBERNETES_SHA256,
)

if TYPE_CHECKING:
    from stackconfig.model import BinarySha256

CNI_PLUGINS: Final = "cni-plugins"
CRICTL: Final = "crictl"


def _patch_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def newest_pinned_patch(minor: str) -> str | None:
    """The newest patch release of `minor` with pinned digests, if any."""
    patches = [v for v in KUBERNETES_SHA256 if v.rpartition(".")[0] == minor]
    return max(patches, key=_patch_key) if patches else None


def resolved_release(version: str) -> str:
    """The exact release of a validated `kubernetesVersion`."""
    if version.count(".") == 2:
        return version
    patch = newest_pinned_patch(version)
    if patch is None:
        raise ValueError(f"no pinned patch release of {version}")
    return patch


def supplied_digests(supplied: BinarySha256 | None) -> dict[str, str]:
    """The digests a stack gives, by binary name (cni-plugins for the CNI archive)."""
    if supplied is None:
        return {}
    given = {name: getattr(supplied, name) for name in KUBERNETES_BINARIES}
    given[CNI_PLUGINS] = supplied.cni_plugins
    given[CRICTL] = supplied.crictl
    return {name: digest for name, digest in given.items() if digest is not None}


def pinned_digests(release: str) -> dict[str, str]:
    """The digests this version of stubernetes pins for `release` (with the CNI archive's)."""
    return {
        **KUBERNETES_SHA256.get(release, {}),
        CNI_PLUGINS: CNI_PLUGINS_SHA256,
        CRICTL: CRICTL_SHA256,
    }


def missing_digests(release: str, supplied: BinarySha256 | None) -> list[str]:
    """The stack keys of the binaries with neither a pinned nor a supplied digest."""
    known = {**pinned_digests(release), **supplied_digests(supplied)}
    return [name for name in KUBERNETES_BINARIES if name not in known]


def node_binary_digests(release: str, supplied: BinarySha256 | None) -> dict[str, str]:
    """The sha256 of every binary a node of `release` downloads, supplied ones first."""
    digests = {**pinned_digests(release), **supplied_digests(supplied)}
    return {name: digests[name] for name in (*KUBERNETES_BINARIES, CNI_PLUGINS, CRICTL)}
