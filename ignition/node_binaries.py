"""The binaries a node downloads, and the Ignition entries that fetch and verify them.

Fedora CoreOS ships the container runtime (containerd) but not Kubernetes: kubeadm, kubelet
and kubectl come from Kubernetes' release downloads (kubernetes.io, "Installing kubeadm",
"Without a package manager": https://dl.k8s.io/release/<version>/bin/linux/amd64/<binary>),
the reference CNI plugins, which Fedora CoreOS stopped shipping in Fedora 40
(coreos/fedora-coreos-config#2852), and crictl (cri-tools), from their GitHub releases. Each
is an Ignition file with a remote `source` and a `verification.hash`: Ignition downloads it,
checks its sha256 before it writes the file, and fails the boot on a mismatch (ignition
internal/resource/url.go, the fetch's hash check), so nothing on the node ever runs an
unverified binary. With `cachedInstall` they come from Matchbox's /assets/ instead, under the
same digests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ignition.entries import MODE_0644, MODE_0755
from stackconfig.model import StackConfig
from stackconfig.pinned_digests import CNI_PLUGINS_VERSION, CRICTL_VERSION, KUBERNETES_BINARIES
from stackconfig.release_digests import CNI_PLUGINS, CRICTL

KUBERNETES_DOWNLOADS = "https://dl.k8s.io/release"
CNI_PLUGINS_DOWNLOADS = "https://github.com/containernetworking/plugins/releases/download"
# /usr/local is /var/usrlocal on Fedora CoreOS: writable, kept across OS updates, on PATH.
BIN_DIR = "/usr/local/bin"
# Where Ignition puts the CNI plugins' archive; the setup service unpacks it (Ignition writes
# files, it does not unpack archives).
DOWNLOAD_DIR = "/var/lib/stubernetes/downloads"
CNI_PLUGINS_ARCHIVE_NAME = f"cni-plugins-linux-amd64-v{CNI_PLUGINS_VERSION}.tgz"
CNI_PLUGINS_ARCHIVE = f"{DOWNLOAD_DIR}/{CNI_PLUGINS_ARCHIVE_NAME}"
CRI_TOOLS_DOWNLOADS = "https://github.com/kubernetes-sigs/cri-tools/releases/download"
CRICTL_ARCHIVE_NAME = f"crictl-v{CRICTL_VERSION}-linux-amd64.tar.gz"
CRICTL_ARCHIVE = f"{DOWNLOAD_DIR}/{CRICTL_ARCHIVE_NAME}"


@dataclass(frozen=True)
class NodeDownload:
    """One file a node downloads: where it goes, where it comes from, and its digest."""

    name: str
    """kubeadm, kubectl, kubelet, cni-plugins or crictl (the keys of `Cluster.binary_digests`)."""
    path: str
    """Where Ignition writes it on the node."""
    official_url: str
    """Its upstream release download."""
    asset: str
    """Its path under Matchbox's assets directory, for `cachedInstall`."""
    sha256: str
    mode: int


def node_downloads(stack: StackConfig) -> tuple[NodeDownload, ...]:
    """What every node downloads, in a fixed order."""
    release = stack.cluster.kubernetes_release
    digests = stack.cluster.binary_digests
    kubernetes = tuple(
        NodeDownload(
            name=binary,
            path=f"{BIN_DIR}/{binary}",
            official_url=f"{KUBERNETES_DOWNLOADS}/v{release}/bin/linux/amd64/{binary}",
            asset=f"kubernetes/v{release}/bin/linux/amd64/{binary}",
            sha256=digests[binary],
            mode=MODE_0755,
        )
        for binary in KUBERNETES_BINARIES
    )
    cni = NodeDownload(
        name=CNI_PLUGINS,
        path=CNI_PLUGINS_ARCHIVE,
        official_url=f"{CNI_PLUGINS_DOWNLOADS}/v{CNI_PLUGINS_VERSION}/{CNI_PLUGINS_ARCHIVE_NAME}",
        asset=f"cni-plugins/v{CNI_PLUGINS_VERSION}/{CNI_PLUGINS_ARCHIVE_NAME}",
        sha256=digests[CNI_PLUGINS],
        mode=MODE_0644,
    )
    crictl = NodeDownload(
        name=CRICTL,
        path=CRICTL_ARCHIVE,
        official_url=f"{CRI_TOOLS_DOWNLOADS}/v{CRICTL_VERSION}/{CRICTL_ARCHIVE_NAME}",
        asset=f"cri-tools/v{CRICTL_VERSION}/{CRICTL_ARCHIVE_NAME}",
        sha256=digests[CRICTL],
        mode=MODE_0644,
    )
    return (*kubernetes, cni, crictl)


def download_url(stack: StackConfig, download: NodeDownload) -> str:
    """Where a node fetches it: upstream, or Matchbox's /assets/ with `cachedInstall`."""
    if stack.os.cached_install:
        return f"{stack.matchbox.http_endpoint}/assets/{download.asset}"
    return download.official_url


def download_entries(stack: StackConfig) -> list[dict[str, Any]]:
    """Ignition file entries that fetch every download and refuse it unless its sha256 matches."""
    return [
        {
            "path": download.path,
            "mode": download.mode,
            "overwrite": True,
            "contents": {
                "source": download_url(stack, download),
                "verification": {"hash": f"sha256-{download.sha256}"},
            },
        }
        for download in node_downloads(stack)
    ]
