"""A machine's side of a Kubernetes upgrade: a timer, its one-shot service and the script it
runs (files in `ignition/files/upgrade/`).

The program never logs into a machine. Its upgrade step (components/scripts/upgrade-machine)
asks for a release in the ConfigMap kube-system/stubernetes-upgrade-<machine>
(components/upgrade_channel.py); this service polls it with the kubelet's own credentials,
downloads and checks the release's binaries, runs kubeadm's upgrade, restarts the kubelet and
reports back in the same ConfigMap. Every machine has it, whatever its role.

The timer is enabled through Ignition's preset from the first boot; its service does nothing
until the setup service's `done` stamp exists (`ConditionPathExists`), and nothing while the
ConfigMap asks for no release newer than the machine runs.
"""

from __future__ import annotations

from typing import Any

from ignition.assets import read_asset
from ignition.entries import MODE_0755, file_entry, unit_entry

UPGRADE_SERVICE = "stubernetes-upgrade.service"
UPGRADE_TIMER = "stubernetes-upgrade.timer"
UPGRADE_BIN = "/usr/local/lib/stubernetes/stubernetes-upgrade"
# Kept in the script itself (STATE_FILE=); named here for the tests and the docs.
UPGRADE_STATE = "/var/lib/stubernetes/upgrade.state"
UPGRADE_CONFIGMAP_PREFIX = "stubernetes-upgrade-"
UPGRADE_CONFIGMAP_NAMESPACE = "kube-system"


def upgrade_configmap(machine_name: str) -> str:
    return f"{UPGRADE_CONFIGMAP_PREFIX}{machine_name}"


def upgrade_files() -> list[dict[str, Any]]:
    return [file_entry(UPGRADE_BIN, read_asset("upgrade/stubernetes-upgrade"), MODE_0755)]


def upgrade_units() -> list[dict[str, Any]]:
    # The service has no [Install]: the timer starts it; only the timer is enabled.
    service = {"name": UPGRADE_SERVICE, "contents": read_asset(f"upgrade/{UPGRADE_SERVICE}")}
    return [service, unit_entry(UPGRADE_TIMER, read_asset(f"upgrade/{UPGRADE_TIMER}"))]


def add_upgrade(config: dict[str, Any]) -> None:
    """Add the upgrade's files and units to a machine's Ignition config (files stay sorted by
    path, as `machine_ignition` sorts them)."""
    storage = config["storage"]
    storage["files"] = sorted([*storage["files"], *upgrade_files()], key=lambda f: f["path"])
    config["systemd"]["units"] = [*config["systemd"]["units"], *upgrade_units()]
