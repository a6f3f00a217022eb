"""Renewal of a controller's kubeadm certificates: a daily timer, its one-shot service and the
script it runs (files in `ignition/files/renewal/`).

kubeadm's leaf certificates and the client certificates in its kubeconfigs expire after one
year, and kubeadm renews them only during `kubeadm upgrade`. Every controller renews its own
(`kubeadm certs renew`) within `RENEW_BEFORE_DAYS` of their expiry, then restarts the static
pods that use them one at a time. Workers have none: their kubelet rotates its own client
certificate.

The timer is enabled through Ignition's preset from the first boot; its service does nothing
until the setup service's `done` stamp exists (`ConditionPathExists`), so the setup scripts
need not know about it, and an operator's `systemctl disable` sticks (Ignition's presets apply
on the first boot only).
"""

from __future__ import annotations

from typing import Any

from ignition.assets import read_asset
from ignition.entries import MODE_0755, file_entry, unit_entry
from stackconfig.model import Machine

RENEWAL_SERVICE = "stubernetes-cert-renewal.service"
RENEWAL_TIMER = "stubernetes-cert-renewal.timer"
RENEWAL_BIN = "/usr/local/bin/stubernetes-renew-certs"
# Kept in the script itself (RENEW_BEFORE_DAYS=); named here for the tests and the docs.
RENEW_BEFORE_DAYS = 60


def cert_renewal_files(machine: Machine) -> list[dict[str, Any]]:
    if not machine.is_controller:
        return []
    return [file_entry(RENEWAL_BIN, read_asset("renewal/stubernetes-renew-certs"), MODE_0755)]


def cert_renewal_units(machine: Machine) -> list[dict[str, Any]]:
    if not machine.is_controller:
        return []
    # The service has no [Install]: the timer starts it; only the timer is enabled.
    service = {"name": RENEWAL_SERVICE, "contents": read_asset(f"renewal/{RENEWAL_SERVICE}")}
    return [service, unit_entry(RENEWAL_TIMER, read_asset(f"renewal/{RENEWAL_TIMER}"))]


def add_cert_renewal(config: dict[str, Any], machine: Machine) -> None:
    """Add a controller's renewal files and units to its Ignition config (files stay sorted
    by path, as `machine_ignition` sorts them)."""
    files = cert_renewal_files(machine)
    if not files:
        return
    storage = config["storage"]
    storage["files"] = sorted([*storage["files"], *files], key=lambda f: f["path"])
    config["systemd"]["units"] = [*config["systemd"]["units"], *cert_renewal_units(machine)]
