"""What a machine's Matchbox profile boots: the live kernel, initramfs and arguments that install
Fedora CoreOS to its disk with its Ignition.

iPXE expands `${uuid}` and `${mac:hexhyp}` itself, so the Ignition URL is the same string for
every machine, and Matchbox picks the config by the machine's MAC.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackconfig.model import Machine, StackConfig

FCOS_BUILDS = "https://builds.coreos.fedoraproject.org/prod/streams"
IGNITION_QUERY = "uuid=${uuid}&mac=${mac:hexhyp}"


@dataclass(frozen=True)
class Boot:
    kernel: str
    initrds: tuple[str, ...]
    args: tuple[str, ...]


def fcos_artifact_base(stack: StackConfig) -> str:
    os = stack.os
    if os.cached_install:
        return f"{stack.matchbox.http_endpoint}/assets/fedora-coreos"
    return f"{FCOS_BUILDS}/{os.stream}/builds/{os.version}/x86_64"


def fcos_kernel_name(version: str) -> str:
    # Since Fedora CoreOS 42 the kernel's name has a dot before the architecture.
    major = int(version.split(".")[0])
    separator = "." if major >= 42 else "-"
    return f"fedora-coreos-{version}-live-kernel{separator}x86_64"


def ignition_url(stack: StackConfig) -> str:
    return f"{stack.matchbox.http_endpoint}/ignition?{IGNITION_QUERY}"


def fcos_install_boot(stack: StackConfig, machine: Machine) -> Boot:
    base = fcos_artifact_base(stack)
    live = f"fedora-coreos-{stack.os.version}-live"
    return Boot(
        kernel=f"{base}/{fcos_kernel_name(stack.os.version)}",
        # `--name main` with `initrd=main` below is what UEFI firmware needs.
        initrds=(f"--name main {base}/{live}-initramfs.x86_64.img",),
        args=(
            "initrd=main",
            f"coreos.live.rootfs_url={base}/{live}-rootfs.x86_64.img",
            f"coreos.inst.install_dev={machine.install_disk}",
            f"coreos.inst.ignition_url={ignition_url(stack)}",
            *machine.installer_kernel_args,
        ),
    )
