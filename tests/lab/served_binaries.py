"""The node binaries the lab's Matchbox serves: this repository's tool builds, under /assets/.

A node's Ignition downloads kubeadm, kubectl, kubelet, the CNI plugins' and crictl's archives and
each only if its sha256 is the one its config names. The guests cannot reach dl.k8s.io or
GitHub, so the lab serves them the way an operator serves binaries of their own build: the lab's
stack sets `os.cachedInstall: true` (the nodes fetch from Matchbox's /assets/) and
`cluster.binarySha256` (the digests of these files), and the real Matchbox serves them from its
`-assets-path` (poseidon/matchbox v0.11.0 `matchbox/http/server.go`: `http.FileServer` under
`/assets/`, which follows the symlinks the lab puts there).

The files: kubeadm and kubectl from the tool "kubernetes", the kubelet from the tool "kubelet"
(scripts/tools, stripped as Kubernetes' release builds are), and a .tgz of the tool "cni-plugins"'
plugins in the upstream archive's layout (tests/real/node_downloads.py `build_cni_archive`).
Where they go is stated here from upstream's download layout, not taken from the program, so
that the lab checks the URLs the program renders: dl.k8s.io serves
`release/v<release>/bin/linux/amd64/<binary>` (kubernetes.io, "Installing kubeadm", "Without a
package manager"), and the CNI plugins' GitHub release names its archive
`cni-plugins-linux-amd64-v<version>.tgz` (containernetworking/plugins `scripts/release.sh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node_downloads import (
    KUBERNETES_TOOLS,
    STACK_KEYS,
    build_cni_archive,
    build_crictl_archive,
    kubernetes_release,
    sha256_of,
)
from tool_cache import require_tool, tool_version

CNI_PLUGINS = "cni-plugins"
CRICTL = "crictl"


@dataclass(frozen=True)
class ServedBinary:
    name: str
    """kubeadm, kubectl, kubelet, cni-plugins or crictl."""
    asset: str
    """Its path under Matchbox's -assets-path (and after /assets/ in the URL)."""
    file: Path
    """The tool build (or archive) Matchbox serves there."""
    sha256: str

    def url(self, matchbox_url: str) -> str:
        return f"{matchbox_url}/assets/{self.asset}"


def cni_plugins_version() -> str:
    """The version of the tool "cni-plugins", without its "v"."""
    return tool_version(CNI_PLUGINS).removeprefix("v")


def served_binaries(work: Path) -> tuple[ServedBinary, ...]:
    """The five files, the archives built into ``work``."""
    release = kubernetes_release()
    served = []
    for name, tool in KUBERNETES_TOOLS.items():
        path = require_tool(tool, name)
        asset = f"kubernetes/v{release}/bin/linux/amd64/{name}"
        served.append(ServedBinary(name, asset, path, sha256_of(path)))
    version = cni_plugins_version()
    archive_name = f"cni-plugins-linux-amd64-v{version}.tgz"
    archive = build_cni_archive(work / archive_name)
    asset = f"cni-plugins/v{version}/{archive_name}"
    served.append(ServedBinary(CNI_PLUGINS, asset, archive, sha256_of(archive)))
    # crictl's archive as cri-tools releases it, from the tool "cri-tools".
    version = tool_version("cri-tools").removeprefix("v")
    archive_name = f"crictl-v{version}-linux-amd64.tar.gz"
    archive = build_crictl_archive(work / archive_name)
    asset = f"cri-tools/v{version}/{archive_name}"
    served.append(ServedBinary(CRICTL, asset, archive, sha256_of(archive)))
    return tuple(served)


def stack_digests(served: tuple[ServedBinary, ...]) -> dict[str, str]:
    """The stack's `cluster.binarySha256` for these files."""
    return {STACK_KEYS[b.name]: b.sha256 for b in served}


def place(served: tuple[ServedBinary, ...], assets_dir: Path) -> None:
    """Each file at its asset path, as a symlink (no copies of some 200 MB)."""
    for binary in served:
        target = assets_dir / binary.asset
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.symlink_to(binary.file)


UPGRADE_TOOL = "kubernetes-upgrade"


def upgrade_release() -> str:
    """The release the real node is upgraded to (the tool "kubernetes-upgrade"), without "v"."""
    return tool_version(UPGRADE_TOOL).removeprefix("v")


def upgrade_binaries(served: tuple[ServedBinary, ...]) -> tuple[ServedBinary, ...]:
    """`served` with kubeadm, kubectl and the kubelet of the upgrade release instead, at that
    release's place in dl.k8s.io's layout; the archives stay."""
    release = upgrade_release()
    binaries = []
    for name in KUBERNETES_TOOLS:
        path = require_tool(UPGRADE_TOOL, name)
        asset = f"kubernetes/v{release}/bin/linux/amd64/{name}"
        binaries.append(ServedBinary(name, asset, path, sha256_of(path)))
    return (*binaries, *(b for b in served if b.name not in KUBERNETES_TOOLS))
