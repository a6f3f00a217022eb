"""The binaries a node downloads, from this repository's tool builds, served by the real Matchbox.

A node's Ignition fetches kubeadm, kubectl, kubelet and the CNI plugins' archive, each only if
its sha256 is the one its config names (ignition/node_binaries.py). Here they are the builds
scripts/tools makes (tool "kubernetes" for kubeadm and kubectl, "kubelet", and an archive of
"cni-plugins"), served the way a user serves binaries of their own: the stack's
`cluster.binarySha256` carries their digests and `os.cachedInstall: true` points the nodes at
Matchbox's `/assets/`, which the real Matchbox serves from its `-assets-path` (poseidon/matchbox
v0.11.0 `matchbox/http/server.go`: `http.FileServer` under `/assets/`), laid out at the paths
`stubernetes assets` names (ignition.node_binaries `NodeDownload.asset`).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matchbox_grpc import Matchbox, start_matchbox
from tool_cache import require_tool, tool_dir, tool_version

from ignition.node_binaries import node_downloads
from stackconfig import StackConfig, parse_stack_config
from stackconfig.pinned_digests import KUBERNETES_BINARIES
from stackconfig.release_digests import CNI_PLUGINS, CRICTL

# Which tool builds each Kubernetes binary (scripts/tools).
KUBERNETES_TOOLS = {"kubeadm": "kubernetes", "kubectl": "kubernetes", "kubelet": "kubelet"}
# The stack's `cluster.binarySha256` key of each download (stackconfig/model.py BinarySha256).
STACK_KEYS = {
    **{name: name for name in KUBERNETES_BINARIES},
    CNI_PLUGINS: "cniPlugins",
    CRICTL: "crictl",
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def kubernetes_release() -> str:
    """The release the built kubeadm, kubectl and kubelet are, without its "v"."""
    return tool_version("kubernetes").removeprefix("v")


def write_tgz(dest: Path, members: list[tuple[str, Path | None]]) -> Path:
    """A gzip'd GNU tar of `members` (name, file; None: a directory), mode 0755 each, owner 0,
    time 0, at gzip's default level as tar's `-z` writes it, with no name or time in the gzip
    header: the same bytes on every call, so its digest is stable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, path in members:
            member = tarfile.TarInfo(name)
            member.mode = 0o755
            if path is None:
                member.type = tarfile.DIRTYPE
                archive.addfile(member)
                continue
            member.size = path.stat().st_size
            with path.open("rb") as data:
                archive.addfile(member, data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (
        dest.open("wb") as out,
        gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=6, mtime=0) as packed,
    ):
        packed.write(buffer.getvalue())
    return dest


def build_cni_archive(dest: Path) -> Path:
    """The CNI plugins the tool built, as a .tgz in the layout of the upstream release's:
    `tar -C bin --owner=0 --group=0 -caf <archive> .` (containernetworking/plugins
    `scripts/release.sh`), so its members are `./<plugin>`."""
    require_tool("cni-plugins", "bridge")
    plugins = sorted(p for p in (tool_dir("cni-plugins") / "bin").iterdir() if p.is_file())
    return write_tgz(dest, [(".", None), *((f"./{p.name}", p) for p in plugins)])


def build_crictl_archive(dest: Path) -> Path:
    """The crictl the tool built, as a .tar.gz in the layout of cri-tools' release: one member,
    `crictl` (its release notes: `tar zxvf crictl-$VERSION-linux-amd64.tar.gz -C
    /usr/local/bin`)."""
    return write_tgz(dest, [("crictl", require_tool("cri-tools", "crictl"))])


def built_downloads(work: Path) -> dict[str, Path]:
    """Each download's file from the tool builds, by its name in ignition.node_binaries
    (kubeadm, kubectl, kubelet, cni-plugins, crictl)."""
    files = {name: require_tool(tool, name) for name, tool in KUBERNETES_TOOLS.items()}
    files[CNI_PLUGINS] = build_cni_archive(work / "cni-plugins.tgz")
    files[CRICTL] = build_crictl_archive(work / "crictl.tar.gz")
    return files


def serving_values(
    values: Mapping[str, Any], http_endpoint: str, files: Mapping[str, Path]
) -> dict[str, Any]:
    """`values` with the nodes fetching `files` from `http_endpoint`'s /assets/: the release of
    the built binaries, `cachedInstall: true`, and `binarySha256` computed from the files."""
    changed = copy.deepcopy(dict(values))
    changed["cluster"]["kubernetesVersion"] = kubernetes_release()
    changed["cluster"]["binarySha256"] = {
        STACK_KEYS[name]: sha256_of(path) for name, path in files.items()
    }
    changed["os"]["cachedInstall"] = True
    changed["matchbox"]["httpEndpoint"] = http_endpoint
    return changed


def lay_out_assets(stack: StackConfig, files: Mapping[str, Path], assets: Path) -> list[Path]:
    """Each file at its asset path under Matchbox's `-assets-path` (a hard link where it can be:
    the builds are hundreds of megabytes); returns where they went."""
    placed = []
    for download in node_downloads(stack):
        target = assets / download.asset
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(files[download.name], target)
        except OSError:
            shutil.copyfile(files[download.name], target)
        placed.append(target)
    return placed


@dataclass
class ServedDownloads:
    matchbox: Matchbox
    files: dict[str, Path]
    """What the nodes must receive, by download name."""
    values: dict[str, Any]
    """Stack values whose nodes fetch them from this Matchbox."""

    @property
    def stack(self) -> StackConfig:
        return parse_stack_config(self.values)

    def asset(self, name: str) -> Path:
        """Where Matchbox serves a download from."""
        (download,) = [d for d in node_downloads(self.stack) if d.name == name]
        return self.matchbox.assets_path / download.asset

    def serve_instead(self, name: str, data: bytes) -> None:
        """Serve `data` for a download from now on (its digest in `values` unchanged). The
        served file is replaced, never written through: it may be a link to the build."""
        target = self.asset(name)
        target.unlink()
        target.write_bytes(data)

    def restore(self, name: str) -> None:
        target = self.asset(name)
        target.unlink()
        shutil.copyfile(self.files[name], target)


@contextmanager
def served_downloads(
    values: Mapping[str, Any], work: Path, files: Mapping[str, Path] | None = None
) -> Iterator[ServedDownloads]:
    """The real Matchbox on loopback serving the tool builds (or `files`, by download name:
    small stand-ins where only the tree matters) under /assets/, and `values` changed to fetch
    them from there; Matchbox stops on exit."""
    files = dict(files) if files is not None else built_downloads(work / "built")
    data, assets = work / "matchbox-data", work / "matchbox-assets"
    data.mkdir(parents=True)
    assets.mkdir(parents=True)
    matchbox = start_matchbox(data, assets, work, name="matchbox-assets")
    try:
        served = serving_values(values, matchbox.http_url, files)
        lay_out_assets(parse_stack_config(served), files, assets)
        yield ServedDownloads(matchbox, files, served)
    finally:
        matchbox.process.stop()
