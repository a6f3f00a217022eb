"""Each machine reports its setup status to its cluster (the script
`ignition/files/setup/report-status`, its units in `ignition/files/report/`).

The setup service writes `/var/lib/stubernetes/status` at every step; a path unit starts a
one-shot service at each change, which PATCHes the status into the ConfigMap
`kube-system/stubernetes-status-<machine>` with the machine's own bootstrap token, and a timer
sends it again until the cluster has it (the program creates the ConfigMap and the RBAC rule
that lets exactly that token write exactly that ConfigMap: components/status_report.py).
The setup scripts need not know about it, and a report that fails never touches the setup.

The cluster's CA certificate (public) comes with every machine, so that the report trusts
only the cluster's API server; workers have no other copy of it before they join.
"""

from __future__ import annotations

from typing import Any

from ignition.assets import read_asset
from ignition.entries import MODE_0755, file_entry, unit_entry
from ignition.material import ClusterMaterial

REPORT_SERVICE = "stubernetes-status-report.service"
REPORT_PATH = "stubernetes-status-report.path"
REPORT_TIMER = "stubernetes-status-report.timer"
REPORT_BIN = "/usr/local/lib/stubernetes/report-status"
# Not under /etc/stubernetes/pki: the setup copies everything there into kubeadm's PKI.
CLUSTER_CA = "/etc/stubernetes/cluster-ca.crt"
# The ConfigMap's name is this prefix and the machine's name (report-status: CONFIGMAP=).
CONFIGMAP_PREFIX = "stubernetes-status-"
CONFIGMAP_NAMESPACE = "kube-system"


def status_configmap(machine_name: str) -> str:
    return f"{CONFIGMAP_PREFIX}{machine_name}"


def status_report_files(material: ClusterMaterial) -> list[dict[str, Any]]:
    return [
        file_entry(REPORT_BIN, read_asset("setup/report-status"), MODE_0755),
        file_entry(CLUSTER_CA, material.ca.cert_pem),
    ]


def status_report_units() -> list[dict[str, Any]]:
    # The service has no [Install]: the path unit and the timer start it.
    service = {"name": REPORT_SERVICE, "contents": read_asset(f"report/{REPORT_SERVICE}")}
    return [
        service,
        unit_entry(REPORT_PATH, read_asset(f"report/{REPORT_PATH}")),
        unit_entry(REPORT_TIMER, read_asset(f"report/{REPORT_TIMER}")),
    ]


def add_status_report(config: dict[str, Any], material: ClusterMaterial) -> None:
    """Add the report's files and units to a machine's Ignition config (files stay sorted by
    path, as `machine_ignition` sorts them). Every machine reports, whatever its role."""
    storage = config["storage"]
    files = [*storage["files"], *status_report_files(material)]
    storage["files"] = sorted(files, key=lambda f: f["path"])
    config["systemd"]["units"] = [*config["systemd"]["units"], *status_report_units()]
