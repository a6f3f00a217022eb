"""A Flatcar machine's install: the Matchbox profile that PXE-boots Flatcar into RAM with an install
Ignition, which runs `flatcar-install` to the machine's disk and reboots into the installed system,
whose first boot takes the machine's own Ignition.

As poseidon/typhoon builds it (bare-metal/flatcar-linux/kubernetes/profiles.tf and
butane/install.yaml), two Matchbox groups per machine:
- selector {mac}: the install profile below, its `raw_ignition` the install Ignition;
- selector {mac, os: installed}: the machine's profile, its `raw_ignition` the machine's own
  Ignition, which the installer fetches with `?mac=<mac>&os=installed`. Matchbox tries the groups
  with the most selectors first (poseidon/matchbox matchbox/server/server.go SelectGroup), so that
  request gets the machine's own Ignition and the PXE boot's request, without `os`, the install.

Boot files and arguments (Flatcar's docs, flatcar/flatcar-website content/docs/latest/deploy/
bare-metal/booting-with-ipxe.md): `flatcar_production_pxe.vmlinuz` and
`flatcar_production_pxe_image.cpio.gz` from `https://<channel>.release.flatcar-linux.net/amd64-usr/
<version>/`, with `initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1
ignition.config.url=<url>`. Typhoon passes `flatcar.config.url` and `flatcar.first_boot=yes`
instead; Flatcar's docs name `ignition.config.url` the one to use ("we encourage the generic name
because future versions of Ignition will only support ignition.config.url", migrating-from-coreos).
With `cachedInstall` the files come from Matchbox's `/assets/flatcar/<version>/` (Typhoon's
`cached_kernel`, and poseidon/matchbox scripts/get-flatcar's layout).

`flatcar-install` is in the PXE-booted system (flatcar-website deploy/bare-metal/
installing-to-disk.md: "If you boot Flatcar Container Linux via PXE, the install script is
already installed";
flatcar/init bin/flatcar-install): `-d DEVICE -C CHANNEL -V VERSION -i IGNITION`,
and `-b BASEURL`, "URL to the image mirror", from which it downloads
`<BASEURL>/<VERSION>/flatcar_production_image.bin.bz2` and its `.sig`, checked with gpg against the
Flatcar image signing key it carries (GPG_LONG_ID E25D9AED0593B34A) before the image is written.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ignition.entries import SPEC_VERSION, dumps, file_entry, unit_entry
from ignition.pxe import IGNITION_QUERY, Boot
from stackconfig.model import Machine, StackConfig

FLATCAR_RELEASES = "https://{channel}.release.flatcar-linux.net/amd64-usr"
FLATCAR_KERNEL = "flatcar_production_pxe.vmlinuz"
FLATCAR_INITRD = "flatcar_production_pxe_image.cpio.gz"
FLATCAR_IMAGE = "flatcar_production_image.bin.bz2"
# The selector of a machine's second Matchbox group, whose profile serves its own Ignition.
INSTALLED_SELECTOR = {"os": "installed"}
INSTALLER_PATH = "/opt/stubernetes-install"
INSTALLER_UNIT = "stubernetes-install.service"
# Root may read and run it, as Typhoon's /opt/installer (mode 0500).
INSTALLER_MODE = 0o500
# What the installer keeps the machine's Ignition in: the live system's RAM, read by root only.
MACHINE_IGNITION = "/run/stubernetes-machine.ign"
# The live system's sshd listens on 2222 (Typhoon's install.yaml: "Avoid using the standard SSH
# port ... admins may SSH to debug disk install problems"), so nothing mistakes it for the
# installed machine, whose sshd listens on 22.
INSTALL_SSH_PORT = 2222
# Flatcar's own user, a sudoer; Typhoon's install Ignition gives it the SSH key.
FLATCAR_USER = "core"


@dataclass(frozen=True)
class FlatcarInstall:
    boot: Boot
    ignition: bytes


def flatcar_mirror(stack: StackConfig) -> str:
    """Where the channel's releases are: `<mirror>/<version>/<file>`."""
    if stack.os.cached_install:
        return f"{stack.matchbox.http_endpoint}/assets/flatcar"
    return FLATCAR_RELEASES.format(channel=stack.os.flatcar_channel)


def flatcar_install_boot(stack: StackConfig, machine: Machine) -> Boot:
    base = f"{flatcar_mirror(stack)}/{stack.os.version}"
    return Boot(
        kernel=f"{base}/{FLATCAR_KERNEL}",
        # iPXE names an image by its file name, which `initrd=` then names for UEFI firmware.
        initrds=(f"{base}/{FLATCAR_INITRD}",),
        args=(
            f"initrd={FLATCAR_INITRD}",
            "flatcar.first_boot=1",
            f"ignition.config.url={stack.matchbox.http_endpoint}/ignition?{IGNITION_QUERY}",
            *machine.installer_kernel_args,
        ),
    )


def installed_ignition_url(stack: StackConfig, machine: Machine) -> str:
    """The machine's own Ignition: its second group's, selected by MAC and `os=installed`."""
    return f"{stack.matchbox.http_endpoint}/ignition?mac={machine.mac}&os=installed"


def installer_script(stack: StackConfig, machine: Machine) -> str:
    os = stack.os
    install = [
        "flatcar-install",
        "-d",
        machine.install_disk,
        "-C",
        os.flatcar_channel,
        "-V",
        os.version,
        *(["-b", flatcar_mirror(stack)] if os.cached_install else []),
        "-i",
        MACHINE_IGNITION,
    ]
    return "\n".join(
        [
            "#!/bin/bash",
            "set -euxo pipefail",
            "umask 077",
            # --fail: a missing group is an HTTP 404, whose page must not become the config.
            "curl --fail --silent --show-error --retry 10 --location "
            f"-o {MACHINE_IGNITION} {shlex.quote(installed_ignition_url(stack, machine))}",
            shlex.join(install),
            "udevadm settle",
            "systemctl reboot",
            "",
        ]
    )


INSTALLER_UNIT_TEXT = f"""[Unit]
Description=Install Flatcar to disk with the machine's Ignition, then reboot into it
Requires=network-online.target
After=network-online.target
[Service]
Type=simple
ExecStart={INSTALLER_PATH}
[Install]
WantedBy=multi-user.target
"""

SSHD_PORT_DROPIN = f"""[Socket]
ListenStream=
ListenStream={INSTALL_SSH_PORT}
"""


def flatcar_install_config(stack: StackConfig, machine: Machine) -> dict[str, Any]:
    return {
        "ignition": {"version": SPEC_VERSION},
        "passwd": {
            "users": [
                {"name": FLATCAR_USER, "sshAuthorizedKeys": list(stack.admin.ssh_authorized_keys)}
            ]
        },
        "storage": {
            "files": [
                file_entry(INSTALLER_PATH, installer_script(stack, machine), INSTALLER_MODE),
            ]
        },
        "systemd": {
            "units": [
                unit_entry(INSTALLER_UNIT, INSTALLER_UNIT_TEXT),
                {
                    "name": "sshd.socket",
                    "dropins": [{"name": "10-install-port.conf", "contents": SSHD_PORT_DROPIN}],
                },
            ]
        },
    }


def flatcar_install(stack: StackConfig, machine: Machine) -> FlatcarInstall:
    """The install profile's boot and its Ignition (canonical JSON bytes)."""
    return FlatcarInstall(
        flatcar_install_boot(stack, machine), dumps(flatcar_install_config(stack, machine))
    )
