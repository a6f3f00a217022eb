"""The API endpoint's virtual IP on every controller: keepalived as a static pod, its
configuration and its health check (files in `ignition/files/vip/`; the stack's side is
`stackconfig.vip`).

Why keepalived: it needs no credential of the cluster (kube-vip's control-plane mode reads
admin.conf, and since Kubernetes 1.29 needs super-admin.conf during `kubeadm init`:
kube-vip/kube-vip#684), its health is a script of ours (the API server's own /readyz, which
fails when that API server's etcd has lost quorum), and it is what kubeadm's HA guide runs as
a static pod (kubernetes/kubeadm `docs/ha-considerations.md`). The tests run Debian's
keepalived with the very configuration and script written here.

kubeadm's init preflight checks only its own four manifests and the etcd data directory
(kubernetes `cmd/kubeadm/app/preflight/checks.go` InitNodeChecks: FileAvailableCheck per
manifest), so a keepalived manifest placed beforehand does not stop `kubeadm init`; join
checks no manifest at all (JoinNodeChecks).
"""

from __future__ import annotations

from string import Template
from typing import Any

from ignition.assets import read_asset
from ignition.entries import MODE_0755, file_entry
from stackconfig.model import Machine, StackConfig
from stackconfig.vip import Vip

# Under /etc/kubernetes, which the setup labels container_file_t (ignition.node
# container_file_paths): the static pod's container reads these.
KEEPALIVED_DIR = "/etc/kubernetes/keepalived"
KEEPALIVED_CONF = f"{KEEPALIVED_DIR}/keepalived.conf"
CHECK_SCRIPT = f"{KEEPALIVED_DIR}/check-apiserver"
STATIC_POD = "/etc/kubernetes/manifests/keepalived.yaml"
# Where the static pod mounts the script and the cluster's CA (ignition/files/vip/keepalived.yaml).
CONTAINER_CHECK_SCRIPT = "/etc/keepalived/check-apiserver"
CONTAINER_CA = "/etc/kubernetes/pki/ca.crt"
# The check's timing, as keepalived.conf sets it: one check a second, three failures in a row
# take the address away; VRRP adverts once a second, so the backups take over at most
# 3 adverts and a skew (RFC 5798 Master_Down_Interval) after the holder falls silent.
CHECK_INTERVAL_SECONDS = 1
CHECK_FALL = 3
ADVERT_SECONDS = 1


def keepalived_conf(vip: Vip, check_command: str) -> str:
    """keepalived.conf for one controller (the same on all); `check_command` is the health
    check as keepalived runs it (a path and its arguments)."""
    return Template(read_asset("vip/keepalived.conf")).substitute(
        address=str(vip.address),
        interface=vip.interface,
        router_id=str(vip.router_id),
        check_command=check_command,
    )


def readyz_url(port: int) -> str:
    return f"https://127.0.0.1:{port}/readyz"


def vip_files(stack: StackConfig, machine: Machine) -> list[dict[str, Any]]:
    if stack.vip is None or not machine.is_controller:
        return []
    check = f"{CONTAINER_CHECK_SCRIPT} {CONTAINER_CA} {readyz_url(stack.cluster.api_port)}"
    return [
        file_entry(KEEPALIVED_CONF, keepalived_conf(stack.vip, check)),
        file_entry(CHECK_SCRIPT, read_asset("vip/check-apiserver"), MODE_0755),
        file_entry(STATIC_POD, read_asset("vip/keepalived.yaml")),
    ]


def add_vip(config: dict[str, Any], stack: StackConfig, machine: Machine) -> None:
    """Add a controller's keepalived files to its Ignition config (files stay sorted by path,
    as `machine_ignition` sorts them)."""
    files = vip_files(stack, machine)
    if files:
        storage = config["storage"]
        storage["files"] = sorted([*storage["files"], *files], key=lambda f: f["path"])
