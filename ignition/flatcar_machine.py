"""A Flatcar machine's own Ignition: the Fedora CoreOS machine's (ignition/node.py), with each
thing Flatcar does differently, on this one page, each a fact of Flatcar's docs, its image or
poseidon/typhoon's Flatcar module (bare-metal/flatcar-linux/kubernetes) named beside it.

What stays the same needs no change: the admin in `wheel` and `sudo` and the sudoers drop-in
(Flatcar's baselayout has both groups and reads /etc/sudoers.d), containerd as the runtime,
the kubelet's and the controller-manager's FlexVolume directory under /opt (ignition/kubeadm.py,
as Flatcar's own kubeadm guide sets it: flatcar/flatcar-website docs
getting-started-with-kubernetes.md), the setup phases and every day-two unit. SELinux labels:
Flatcar's policy has container_file_t and its image has chcon, so the setup's labelling runs as
on Fedora CoreOS and changes nothing that Flatcar enforces (it ships SELinux permissive:
flatcar-website docs security/selinux.md).
"""

from __future__ import annotations

from typing import Any

from ignition.assets import read_asset, render_template
from ignition.entries import MODE_0644, MODE_0755, decode_data_url, file_entry, unit_entry
from ignition.etcd_backup import BACKUP_LIB
from ignition.node_binaries import BIN_DIR
from ignition.os_updates import UPDATE_ENGINE, ZINCATI, ZINCATI_STRATEGY
from ignition.setup_paths import SETUP_LIB, SETUP_UNIT
from stackconfig.model import Machine, StackConfig

# Flatcar's /usr is read-only and /usr/local is a directory of it (flatcar-website docs
# sdk-disk-partitions.md; flatcar/baselayout Makefile), so binaries go to /opt/bin, as Flatcar's
# kubeadm guide puts kubeadm, kubelet and kubectl, and the program's scripts beside it in /opt.
FLATCAR_BIN_DIR = "/opt/bin"
FLATCAR_LIB_DIR = "/opt/stubernetes"
RELOCATIONS = ((SETUP_LIB, FLATCAR_LIB_DIR), (BIN_DIR, FLATCAR_BIN_DIR))
# etcd-tool's /usr/local/bin/<tool> is a path inside etcd's image (etcd-io/etcd Dockerfile), not
# on the host: it stays.
IN_CONTAINER = frozenset({f"{BACKUP_LIB}/etcd-tool"})
# systemd's PATH for services lacks /opt/bin, which Flatcar's login shells have (flatcar/baselayout
# etc/env.d/00basic); Flatcar's kubeadm guide gives its units systemd's PATH and /opt/bin. The
# setup, renewal and upgrade scripts run kubeadm, kubectl and crictl by name, and kubeadm runs
# `kubelet --version`. /opt/bin comes first here (the guide has it last), so that the binaries
# whose digests the stack pins win over any of the same name in /usr/bin, where a Kubernetes
# system extension would put its own (flatcar/sysext-bakery).
SERVICE_PATH = "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
PATH_DROP_IN = "10-flatcar-path.conf"
# systemd-networkd, not NetworkManager (typhoon docs/architecture/operating-systems.md,
# "Networking | systemd-networkd"; flatcar-website docs network-config-with-networkd.md: units
# in /etc/systemd/network). networkd takes the first file in lexical order that matches a link
# (systemd.network(5)), so 00- comes before Flatcar's catch-all zz-default.network.
NETWORK_FILE = "/etc/systemd/network/00-stubernetes-static.network"
NM_KEYFILE_DIR = "/etc/NetworkManager/"
# Flatcar's containerd.service runs `containerd --config /usr/share/containerd/config.toml`;
# a custom /etc/containerd/config.toml takes this drop-in (flatcar-website docs
# customizing-docker.md, "Use a custom containerd configuration").
CONTAINERD_DROP_IN = {
    "name": "10-use-custom-config.conf",
    "contents": "[Service]\nExecStart=\nExecStart=/usr/bin/containerd\n",
}
UPDATES_HOLD = (
    "# Written by stubernetes: no OS update (and its reboot) until node setup is done.\n"
    "# The setup's last phase removes this file; update-engine then follows its defaults.\n"
    "SERVER=disabled\n"
)
# Typhoon's Flatcar nodes and Flatcar's kubeadm guide mask locksmithd, the image's reboot
# manager: it reboots as soon as an update is staged, one node's drain unasked. Its FleetLock
# client is not written yet (flatcar/Flatcar#510), so the machine has one of its own
# (ignition/files/flatcar/stubernetes-os-reboot), asking the same fleetlock server as Zincati.
MASKED = ("locksmithd.service",)
OS_REBOOT = f"{FLATCAR_LIB_DIR}/stubernetes-os-reboot"
FLEETLOCK_ENV = "/etc/stubernetes/fleetlock.env"
# Zincati's group when its config names none (coreos/zincati src/identity/mod.rs DEFAULT_GROUP),
# so that both flavors' machines take turns under one lock.
FLEETLOCK_GROUP = "default"
FLEETLOCK_RETRY_SECONDS = 60


def _relocated(text: str) -> str:
    for fedora_coreos, flatcar in RELOCATIONS:
        text = text.replace(fedora_coreos, flatcar)
    return text


def _flatcar_file(entry: dict[str, Any]) -> dict[str, Any]:
    path = _relocated(entry["path"])
    contents = decode_data_url(entry.get("contents", {}).get("source", ""))
    if contents is None:
        return {**entry, "path": path}  # a download: only its path moves
    if entry["path"] not in IN_CONTAINER:
        contents = _relocated(contents.decode()).encode()
    return file_entry(path, contents, entry.get("mode", MODE_0644))


def _network_file(stack: StackConfig, machine: Machine) -> list[dict[str, Any]]:
    if machine.address is None:
        return []  # DHCP: Flatcar's zz-default.network
    text = render_template(
        "static.network",
        mac=machine.mac.lower(),
        address=str(machine.address),
        gateway=f"Gateway={machine.gateway}\n" if machine.gateway else "",
        dns="".join(f"DNS={server}\n" for server in machine.dns),
        domain=stack.cluster.domain,
    )
    return [file_entry(NETWORK_FILE, text)]


def _flatcar_unit(unit: dict[str, Any]) -> dict[str, Any]:
    unit = dict(unit)
    if "contents" in unit:
        unit["contents"] = _relocated(unit["contents"])
    dropins = [
        {**dropin, "contents": _relocated(dropin["contents"])} for dropin in unit.get("dropins", [])
    ]
    runs_ours = any(
        FLATCAR_BIN_DIR in text or FLATCAR_LIB_DIR in text
        for text in (unit.get("contents", ""), *(d["contents"] for d in dropins))
    )
    if runs_ours:
        dropins.append(
            {"name": PATH_DROP_IN, "contents": f'[Service]\nEnvironment="PATH={SERVICE_PATH}"\n'}
        )
    if unit["name"] == SETUP_UNIT:
        # The updater starts once setup is over, and then reads no hold (ignition/os_updates.py).
        before = f"[Unit]\nBefore={UPDATE_ENGINE.unit}\n"
        dropins.append({"name": "10-flatcar-updates.conf", "contents": before})
    if unit["name"] == "containerd.service":
        dropins.append(CONTAINERD_DROP_IN)
    if dropins:
        unit["dropins"] = dropins
    return unit


def _coordinated_reboots(stack: StackConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The FleetLock client's script, settings and units (ignition/files/flatcar/)."""
    env = (
        "# Written by stubernetes: where stubernetes-os-reboot asks for the reboot lock.\n"
        f"FLEETLOCK_URL=http://{stack.cluster.fleetlock_ip}/\n"
        f"FLEETLOCK_GROUP={FLEETLOCK_GROUP}\n"
        f"FLEETLOCK_RETRY_SECONDS={FLEETLOCK_RETRY_SECONDS}\n"
    )
    files = [
        file_entry(OS_REBOOT, read_asset("flatcar/stubernetes-os-reboot"), MODE_0755),
        file_entry(FLEETLOCK_ENV, env),
    ]
    units = [
        unit_entry(name, read_asset(f"flatcar/{name}"))
        for name in ("stubernetes-os-reboot.path", "stubernetes-os-steady-state.service")
    ]
    # Started by its path unit only: no [Install], so not enabled.
    service = "stubernetes-os-reboot.service"
    units.append({"name": service, "contents": read_asset(f"flatcar/{service}")})
    return files, units


def flatcar_machine_ignition(
    fedora_coreos: dict[str, Any], stack: StackConfig, machine: Machine
) -> dict[str, Any]:
    """The Flatcar machine's config, from the Fedora CoreOS machine's config of the same stack,
    machine and material (ignition.node.machine_ignition)."""
    fedora_only = (ZINCATI.hold_file, ZINCATI_STRATEGY)
    files = [
        _flatcar_file(entry)
        for entry in fedora_coreos["storage"]["files"]
        if entry["path"] not in fedora_only and not entry["path"].startswith(NM_KEYFILE_DIR)
    ]
    files += _network_file(stack, machine)
    files.append(file_entry(UPDATE_ENGINE.hold_file, UPDATES_HOLD))
    reboot_files, reboot_units = _coordinated_reboots(stack)
    files += reboot_files
    units = [_flatcar_unit(unit) for unit in fedora_coreos["systemd"]["units"]]
    units += [{"name": name, "mask": True} for name in MASKED]
    units += reboot_units
    return {
        **fedora_coreos,
        "storage": {**fedora_coreos["storage"], "files": sorted(files, key=lambda f: f["path"])},
        "systemd": {**fedora_coreos["systemd"], "units": units},
    }
