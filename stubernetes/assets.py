"""`stubernetes assets`: the files `cachedInstall` has Matchbox serve, and where they come from:
Fedora CoreOS's boot files, and the binaries every node downloads (ignition.node_binaries).

With `cachedInstall: true` every profile boots from `<httpEndpoint>/assets/fedora-coreos/...`;
Matchbox serves `/assets/` from its `-assets-path` (default /var/lib/matchbox/assets,
poseidon/matchbox `cmd/matchbox/main.go`), so each file goes to
`<assets-path>/fedora-coreos/<name>`, as Matchbox's own `scripts/get-fedora-coreos` lays them
out. The names are taken from the very boot arguments the profiles get (`ignition.pxe`), so
they follow the pinned version: since Fedora CoreOS 42 the kernel's name has a dot before the
architecture, before that a dash. The binaries keep their upstream layout under kubernetes/
and cni-plugins/, and the commands check each against the digest the nodes will ask for, so a
file that would fail a node's Ignition fails on the Matchbox host first.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ignition.node_binaries import node_downloads
from ignition.pxe import fcos_install_boot
from stackconfig import StackConfig
from stubernetes.flatcar_assets import flatcar_assets_text

DEFAULT_ASSETS_PATH = "/var/lib/matchbox/assets"


@dataclass(frozen=True)
class Asset:
    relative: str  # under Matchbox's -assets-path
    url: str  # where it is downloaded from
    served_at: str  # the URL the profiles boot from, or the nodes fetch
    sha256: str | None = None  # what a node's Ignition checks it against (binaries only)


def _boot_urls(stack: StackConfig) -> list[str]:
    boot = fcos_install_boot(stack, stack.machines[0])
    initrds = [i.split()[-1] for i in boot.initrds]
    rootfs = [a.partition("=")[2] for a in boot.args if a.startswith("coreos.live.rootfs_url=")]
    return [boot.kernel, *initrds, *rootfs]


def cached_assets(stack: StackConfig) -> list[Asset]:
    cached = stack.model_copy(update={"os": stack.os.model_copy(update={"cached_install": True})})
    remote = stack.model_copy(update={"os": stack.os.model_copy(update={"cached_install": False})})
    prefix = f"{stack.matchbox.http_endpoint}/assets/"
    assets = []
    for served, url in zip(_boot_urls(cached), _boot_urls(remote), strict=True):
        if not served.startswith(prefix):
            raise ValueError(f"an asset URL outside {prefix}: {served}")
        assets.append(Asset(served.removeprefix(prefix), url, served))
    for download in node_downloads(stack):
        served = f"{prefix}{download.asset}"
        assets.append(Asset(download.asset, download.official_url, served, download.sha256))
    return assets


def assets_text(stack: StackConfig, assets_path: str = DEFAULT_ASSETS_PATH) -> str:
    os = stack.os
    if os.is_flatcar:
        return flatcar_assets_text(stack, assets_path)
    state = (
        "on: the profiles boot from Matchbox's /assets/"
        if os.cached_install
        else "off: the profiles boot from builds.coreos.fedoraproject.org (with "
        "cachedInstall: true, from Matchbox's /assets/ instead)"
    )
    assets = cached_assets(stack)
    lines = [
        f"Fedora CoreOS {os.version} ({os.stream}, x86_64) and Kubernetes "
        f"{stack.cluster.kubernetes_release}'s node binaries; cachedInstall is {state}.",
        f"Files under Matchbox's -assets-path ({assets_path}), served at "
        f"{stack.matchbox.http_endpoint}/assets/:",
        *(f"  {a.relative}" for a in assets),
        "Fetch them on the Matchbox host:",
    ]
    directories = sorted({a.relative.rpartition("/")[0] for a in assets})
    lines += [f"  mkdir -p {shlex.quote(f'{assets_path}/{d}')}" for d in directories]
    lines += [
        f"  curl -fL -o {shlex.quote(f'{assets_path}/{a.relative}')} {shlex.quote(a.url)}"
        for a in assets
    ]
    lines.append("Check the binaries against the digests the nodes' Ignition will ask for:")
    lines += [
        f"  printf '%s  %s\\n' {a.sha256} {shlex.quote(f'{assets_path}/{a.relative}')} "
        "| sha256sum --check"
        for a in assets
        if a.sha256 is not None
    ]
    return "\n".join(lines)
