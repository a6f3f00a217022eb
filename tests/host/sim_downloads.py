"""What a node's Ignition downloads, served to the simulated host by the real Matchbox.

A node's Ignition fetches kubeadm, kubectl, kubelet and the CNI plugins' archive, and writes
each only if its sha256 is the one its config names (ignition/node_binaries.py). For the
simulated host they are:
- kubeadm, kubectl and kubelet: the stand-in program (node_standin.py, which acts by the name it
  is run by), so that the setup scripts run kubeadm and kubectl from where Ignition wrote them,
  as on a node. A stand-in: no real kubeadm can set up a simulated cluster. Each release's
  copy says which release it stands for, so that a test can tell which one a node received.
- the CNI plugins' archive: a real .tgz built here in the layout of the upstream release's
  (`tar -C bin -caf ARCHIVE .`, members `./<plugin>`: containernetworking/plugins
  scripts/release.sh) holding small stand-in plugins, the four the node uses; portmap is the
  largest, so that a file size limit stops tar half-way through it (recorded_tools.py).
They are served the way a user serves binaries of their own build: the stack's
`cluster.binarySha256` carries their digests and `os.cachedInstall: true` points the nodes at
Matchbox's /assets/, which the real Matchbox serves from its -assets-path (poseidon/matchbox
v0.11.0 matchbox/http/server.go: http.FileServer under /assets/). The real Ignition fetches
them and checks each digest before it writes the file.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matchbox_grpc import Matchbox, start_matchbox
from sim_machine import standin_program

from ignition.node_binaries import node_downloads
from stackconfig import parse_stack_config
from stackconfig.pinned_digests import KUBERNETES_BINARIES
from stackconfig.release_digests import CNI_PLUGINS, CRICTL, resolved_release

# The stack's `cluster.binarySha256` key of each download (stackconfig/model.py BinarySha256).
STACK_KEYS = {
    **{name: name for name in KUBERNETES_BINARIES},
    CNI_PLUGINS: "cniPlugins",
    CRICTL: "crictl",
}
# The plugins the node uses (flannel's bridge and portmap, host-local IPAM, loopback), with
# the size of each stand-in.
CNI_PLUGIN_SIZES = {"bridge": 4096, "host-local": 4096, "loopback": 4096, "portmap": 65536}


def cni_archive() -> bytes:
    """The archive: the same bytes on every call (fixed times, gzip without a name or time)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        top = tarfile.TarInfo(".")
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(top)
        for name, size in CNI_PLUGIN_SIZES.items():
            head = f"#!/bin/sh\n# stand-in CNI plugin {name}\nexit 1\n".encode()
            data = head + b"#" * (size - len(head) - 1) + b"\n"
            member = tarfile.TarInfo(f"./{name}")
            member.size, member.mode = len(data), 0o755
            archive.addfile(member, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)


def crictl_archive(program: bytes) -> bytes:
    """crictl's archive as cri-tools releases it: one member, `crictl`, at the top (its
    release notes: `tar zxvf crictl-$VERSION-linux-amd64.tar.gz -C /usr/local/bin`); here the
    stand-in program under that name (standin_runtime.py models crictl)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        member = tarfile.TarInfo("crictl")
        member.size, member.mode = len(program), 0o755
        archive.addfile(member, io.BytesIO(program))
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)


def cni_plugins(archive: bytes) -> dict[str, bytes]:
    """The plugins an archive holds, by name."""
    plugins = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as opened:
        for member in opened.getmembers():
            data = opened.extractfile(member) if member.isfile() else None
            if data is not None:
                plugins[member.name.removeprefix("./")] = data.read()
    return plugins


def release_files(release: str) -> dict[str, bytes]:
    """What the nodes of `release` download, by download name."""
    program = standin_program() + f"# stands in for v{release}\n".encode()
    return {
        **dict.fromkeys(KUBERNETES_BINARIES, program),
        CNI_PLUGINS: cni_archive(),
        CRICTL: crictl_archive(standin_program()),
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SimDownloads:
    matchbox: Matchbox

    def serve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` with its nodes fetching this release's files from this Matchbox (laid out
        under its assets), their digests in `binarySha256`."""
        served = copy.deepcopy(dict(values))
        files = release_files(resolved_release(served["cluster"]["kubernetesVersion"]))
        served["cluster"]["binarySha256"] = {
            STACK_KEYS[name]: sha256(data) for name, data in files.items()
        }
        served["os"]["cachedInstall"] = True
        served["matchbox"]["httpEndpoint"] = self.matchbox.http_url
        for download in node_downloads(parse_stack_config(served)):
            self.put(download.asset, files[download.name])
        return served

    def put(self, asset: str, data: bytes) -> None:
        """Serve `data` at /assets/`asset` from now on."""
        target = self.matchbox.assets_path / asset
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def withdraw(self, asset: str) -> None:
        (self.matchbox.assets_path / asset).unlink()


@contextmanager
def served_downloads(work: Path) -> Iterator[SimDownloads]:
    """The real Matchbox on loopback, serving nothing yet; it stops on exit."""
    data, assets = work / "matchbox-data", work / "matchbox-assets"
    data.mkdir(parents=True)
    assets.mkdir(parents=True)
    matchbox = start_matchbox(data, assets, work, name="matchbox-sim-downloads")
    try:
        yield SimDownloads(matchbox)
    finally:
        matchbox.stop()
