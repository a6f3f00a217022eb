"""What goes onto a kernel command line: the install disk and the kernel arguments.

The live installer's arguments are an iPXE `kernel` line (Matchbox renders the profile's args
into its iPXE script; ignition/pxe.py), where:
- iPXE expands `${name}` settings in every command before running it (ipxe.org/settings,
  ipxe.org/cmd/echo: "As with all iPXE commands, any settings such as ${filename} will be
  expanded"), so a `${...}` the user meant literally never reaches the kernel;
- the kernel splits its command line at whitespace outside double quotes, and double quotes
  are its only quoting, without escapes (docs.kernel.org admin-guide/kernel-parameters: "Double-
  quotes can be used to protect spaces in values"; lib/cmdline.c next_arg), so an argument
  with an unbalanced `"` swallows every argument after it. The installed system's arguments
  (Ignition kernelArguments, appended by rpm-ostree to the BLS entry) are parsed the same way.
"""

from __future__ import annotations

import re

# Arguments the installed system must not carry: coreos-installer's and the live system's own,
# and Ignition's, whose first boot they would steer (fedora-coreos-docs live-reference,
# coreos-installer's `coreos.inst.*`, Ignition's `ignition.*` first-boot arguments).
INSTALLER_ONLY_PREFIXES = ("coreos.inst.", "coreos.live.", "ignition.")
# What the PXE boot already sets from the machine's other fields (ignition/pxe.py).
PXE_SET_ARGS = (
    "initrd",
    "coreos.live.rootfs_url",
    "coreos.inst.install_dev",
    "coreos.inst.ignition_url",
)
IPXE_SETTING = "${"

# Kernel names of partitions (block/partitions/core.c: a disk whose name ends in a digit gets
# "p<N>" for its partitions, others "<N>"): sda1, vdb2, xvda3, nvme0n1p2, mmcblk0p1, md0p1,
# loop0p1, nbd0p1; and udev's links to partitions (systemd rules.d/60-persistent-storage.rules:
# by-id and by-path names of a partition end in "-part<N>", by-partuuid and by-partlabel name
# only partitions).
PARTITION_NAMES = (
    re.compile(r"^/dev/(sd|vd|hd|xvd)[a-z]+[0-9]+$"),
    re.compile(r"^/dev/[a-z]+[0-9]+(n[0-9]+)?p[0-9]+$"),
    re.compile(r"^/dev/disk/by-(id|path)/.+-part[0-9]+$"),
    re.compile(r"^/dev/disk/by-(partuuid|partlabel)/"),
)
# udev's links to filesystems (by-uuid, by-label): the install writes a new disk image, so the
# name is gone when the machine is next reinstalled (coreos-installer writes the whole disk).
FILESYSTEM_LINKS = re.compile(r"^/dev/disk/by-(uuid|label)/")


def check_install_disk(value: str) -> str:
    """A whole disk under /dev/, as coreos-installer takes it: it writes the Fedora CoreOS
    disk image (its own partition table) over the device, then asks the kernel to reread the
    device's partition table (coreos/coreos-installer src/install.rs write_disk, then
    `table.reread()`; src/blockdev.rs reread_partition_table), which a partition refuses
    ("couldn't reread partition table: device may not support partitions")."""
    if not value.startswith("/dev/"):
        raise ValueError(f"must be an absolute device path under /dev/, got {value!r}")
    if any(c.isspace() for c in value) or '"' in value:
        raise ValueError(
            f"{value!r} has whitespace or a double quote, which would split the installer's "
            "kernel argument coreos.inst.install_dev=; use the /dev/disk/by-id/ or by-path/ "
            "name, which has neither"
        )
    if IPXE_SETTING in value:
        raise ValueError(f"{value!r} has '${{', which iPXE would expand as a setting")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} has a '..' component; give the device's own path")
    if value.rstrip("/") == "/dev":
        raise ValueError("/dev/ is the device directory, not a disk")
    if any(form.match(value) for form in PARTITION_NAMES):
        raise ValueError(
            f"{value!r} is a partition; coreos-installer writes a whole disk image (partition "
            "table included) and fails on a partition, so give the disk itself (e.g. "
            "/dev/sda, /dev/nvme0n1, or the by-id name without -partN)"
        )
    if FILESYSTEM_LINKS.match(value):
        raise ValueError(
            f"{value!r} names a filesystem, which the install replaces, so the name is gone "
            "by the next reinstall; give the disk's /dev/disk/by-id/ or by-path/ name"
        )
    return value


def check_kernel_arg(value: str) -> str:
    """One kernel command-line argument: a single non-empty token without whitespace, whose
    double quotes pair up."""
    if not value:
        raise ValueError("a kernel argument must not be empty")
    if any(c.isspace() for c in value):
        raise ValueError(
            f"{value!r} is not one kernel argument (it has whitespace); give each argument "
            "as its own list item"
        )
    if value.count('"') % 2:
        raise ValueError(
            f"{value!r} has an unbalanced double quote: the kernel would read every argument "
            "after it as part of this one"
        )
    return value


def check_installed_kernel_arg(value: str) -> str:
    check_kernel_arg(value)
    prefix = next((p for p in INSTALLER_ONLY_PREFIXES if value.startswith(p)), None)
    if prefix is not None:
        place = (
            "Ignition's own first-boot arguments, which the installed system must not carry"
            if prefix == "ignition."
            else "the installer's (coreos-installer and the live system), not the installed "
            "system's; give it in installerKernelArgs"
        )
        raise ValueError(f"{value!r} cannot go to the installed system: {prefix}* are {place}")
    return value


def check_installer_kernel_arg(value: str) -> str:
    check_kernel_arg(value)
    key = value.partition("=")[0]
    if key in PXE_SET_ARGS:
        raise ValueError(
            f"{value!r}: stubernetes sets {key} itself (from installDisk, the OS and Matchbox)"
        )
    if IPXE_SETTING in value:
        raise ValueError(
            f"{value!r} has '${{': iPXE expands ${{...}} settings in the boot script before "
            "the kernel sees them, so the installer would get something else"
        )
    return value
