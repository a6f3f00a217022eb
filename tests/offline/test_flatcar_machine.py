"""A Flatcar machine's own Ignition (ignition/flatcar_machine.py): the Fedora CoreOS machine's with
Flatcar's differences, each pinned here beside its upstream fact.

- /usr is read-only on Flatcar and /usr/local is part of it (flatcar/flatcar-website docs
  sdk-disk-partitions.md, flatcar/baselayout Makefile): binaries in /opt/bin, as Flatcar's
  kubeadm guide (getting-started-with-kubernetes.md) puts kubeadm, kubelet and kubectl; that guide
  gives its units `PATH=...:/opt/bin`, which systemd's service PATH lacks;
- systemd-networkd, not NetworkManager (poseidon/typhoon docs/architecture/operating-systems.md;
  flatcar-website network-config-with-networkd.md; `[Match] MACAddress=`: systemd.network(5));
- a custom containerd config needs the drop-in of flatcar-website customizing-docker.md;
- update-engine held by `SERVER=disabled` in /etc/flatcar/update.conf (flatcar-website
  update-strategies.md, "Disable Automatic Updates"), locksmithd masked (Typhoon's Flatcar
  butane/controller.yaml and worker.yaml; Flatcar's kubeadm guide).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from repo_paths import TEST_SEED

from ignition import machine_ignition
from ignition.entries import SPEC_VERSION, dumps
from ignition.flatcar_machine import SERVICE_PATH
from ignition.material import standin_cluster_material
from ignition.validate import check_structure, check_with_ignition_validate, have_ignition_validate
from stackconfig import StackConfig, parse_stack_config
from stackconfig.stackfile import read_stack_values

BACKUP_STACK = Path(__file__).resolve().parent / "backup-stack.yaml"
RELEASE = "4593.2.5"  # Flatcar stable, published 2026-08-13 (flatcar-website data/releases/stable)
TOKEN = "abcdef.0123456789abcdef"


def flatcar_stack(values: dict[str, Any]) -> StackConfig:
    values["os"] = {"flavor": "flatcar", "channel": "stable", "version": RELEASE}
    return parse_stack_config(values)


@pytest.fixture
def stack(raw_values: dict[str, Any]) -> StackConfig:
    return flatcar_stack(raw_values)


@pytest.fixture
def backup_stack() -> StackConfig:
    values, _ = read_stack_values(BACKUP_STACK)
    return flatcar_stack(values)


def config_of(stack: StackConfig, name: str) -> dict[str, Any]:
    return machine_ignition(stack, stack.machine(name), standin_cluster_material(TEST_SEED), TOKEN)


def files_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in config["storage"]["files"]}


def text_of(entry: dict[str, Any]) -> str:
    source = entry["contents"]["source"]
    assert source.startswith("data:;base64,"), entry["path"]
    return base64.b64decode(source.removeprefix("data:;base64,")).decode()


def units_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in config["systemd"]["units"]}


def dropins_of(unit: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["contents"] for d in unit.get("dropins", [])}


@pytest.mark.parametrize("name", ["c1", "w1"])
def test_nothing_is_written_to_or_run_from_usr_local(backup_stack: StackConfig, name: str) -> None:
    config = config_of(backup_stack, name)
    files = files_of(config)
    assert [p for p in files if p.startswith("/usr/")] == []
    for path, entry in files.items():
        if not entry["contents"]["source"].startswith("data:"):
            continue  # a download, checked by its path above
        lines = [line for line in text_of(entry).splitlines() if "/usr/local/" in line]
        if path.endswith("/etcd-tool"):
            # The path inside etcd's image (etcd-io/etcd Dockerfile), not the host's.
            assert all('"/usr/local/bin/$1"' in line or line.startswith("#") for line in lines)
        else:
            assert lines == [], path
    for unit in config["systemd"]["units"]:
        texts = [unit.get("contents", ""), *dropins_of(unit).values()]
        assert all("/usr/local/bin/" not in t and "/usr/local/lib/" not in t for t in texts)


def test_binaries_and_scripts_are_in_opt(backup_stack: StackConfig) -> None:
    files = files_of(config_of(backup_stack, "c1"))
    for binary in ("kubeadm", "kubectl", "kubelet", "stubernetes-setup"):
        assert files[f"/opt/bin/{binary}"]["mode"] == 0o755
    for script in ("phase-node", "phase-kubeadm", "phase-finish", "backup/etcd-backup"):
        assert files[f"/opt/stubernetes/{script}"]["mode"] == 0o755
    # Downloads keep their source and digest: only where they go moves.
    assert files["/opt/bin/kubeadm"]["contents"]["verification"]["hash"].startswith("sha256-")
    assert ". /opt/stubernetes/common.sh" in text_of(files["/opt/bin/stubernetes-setup"])
    unit_text = units_of(config_of(backup_stack, "c1"))["stubernetes-setup.service"]["contents"]
    assert "ExecStart=/opt/bin/stubernetes-setup" in unit_text


def test_every_unit_that_runs_the_programs_files_has_opt_bin_on_its_path(
    backup_stack: StackConfig,
) -> None:
    units = units_of(config_of(backup_stack, "c1"))
    with_path = {n for n, u in units.items() if "10-flatcar-path.conf" in dropins_of(u)}
    assert with_path >= {
        "kubelet.service",
        "stubernetes-setup.service",
        "stubernetes-cert-renewal.service",
        "stubernetes-status-report.service",
        "stubernetes-upgrade.service",
        "stubernetes-etcd-backup.service",
    }
    path = dropins_of(units["stubernetes-setup.service"])["10-flatcar-path.conf"]
    assert path == f'[Service]\nEnvironment="PATH={SERVICE_PATH}"\n'
    assert "/opt/bin" in SERVICE_PATH.split(":")
    assert "/usr/bin" in SERVICE_PATH.split(":")


def test_static_address_is_a_networkd_file_matched_by_mac(stack: StackConfig) -> None:
    files = files_of(config_of(stack, "c1"))
    assert not [p for p in files if p.startswith("/etc/NetworkManager/")]
    machine = stack.machine("c1")
    assert machine.address is not None
    network = text_of(files["/etc/systemd/network/00-stubernetes-static.network"])
    assert f"[Match]\nMACAddress={machine.mac.lower()}\n" in network
    assert f"\n[Network]\nAddress={machine.address}\n" in network
    assert f"Gateway={machine.gateway}\n" in network
    assert [f"DNS={d}" for d in machine.dns] == [
        line for line in network.splitlines() if line.startswith("DNS=")
    ]
    assert f"Domains={stack.cluster.domain}\n" in network


def test_a_machine_without_an_address_keeps_flatcars_dhcp(raw_values: dict[str, Any]) -> None:
    for field in ("address", "gateway", "dns"):
        raw_values["machines"]["w1"].pop(field, None)
    stack = flatcar_stack(raw_values)
    assert stack.machine("w1").address is None
    files = files_of(config_of(stack, "w1"))
    assert not [p for p in files if p.startswith("/etc/systemd/network/00-")]


def test_containerd_reads_the_programs_config(stack: StackConfig) -> None:
    config = config_of(stack, "w1")
    assert "/etc/containerd/config.toml" in files_of(config)
    containerd = units_of(config)["containerd.service"]
    assert dropins_of(containerd) == {
        "10-use-custom-config.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/containerd\n"
    }


def test_updates_are_held_by_update_engines_file_until_setup_is_done(stack: StackConfig) -> None:
    config = config_of(stack, "w1")
    files, units = files_of(config), units_of(config)
    assert not [p for p in files if p.startswith("/etc/zincati/")]
    assert "SERVER=disabled" in text_of(files["/etc/flatcar/update.conf"]).splitlines()
    env = text_of(files["/etc/stubernetes/setup.env"]).splitlines()
    assert "OS_UPDATES_HOLD=/etc/flatcar/update.conf" in env
    assert "OS_UPDATER=update-engine" in env
    finish = text_of(files["/opt/stubernetes/phase-finish"])
    assert 'rm -f "$OS_UPDATES_HOLD"' in finish
    setup = dropins_of(units["stubernetes-setup.service"])
    assert setup["10-flatcar-updates.conf"] == "[Unit]\nBefore=update-engine.service\n"
    assert units["locksmithd.service"] == {"name": "locksmithd.service", "mask": True}


def test_fedora_coreos_machines_keep_their_layout(example_stack: StackConfig) -> None:
    config = machine_ignition(
        example_stack, example_stack.machine("w1"), standin_cluster_material(TEST_SEED), TOKEN
    )
    files = files_of(config)
    assert "/usr/local/bin/kubelet" in files
    assert not [p for p in files if p.startswith("/opt/bin/")]
    env = text_of(files["/etc/stubernetes/setup.env"]).splitlines()
    assert "OS_UPDATES_HOLD=/etc/zincati/config.d/90-stubernetes-hold-updates.toml" in env
    assert "locksmithd.service" not in units_of(config)


@pytest.mark.parametrize("name", ["c1", "w1", "w2"])
def test_every_flatcar_machine_config_is_well_formed(backup_stack: StackConfig, name: str) -> None:
    config = config_of(backup_stack, name)
    assert config["ignition"]["version"] == SPEC_VERSION
    check_structure(f"machine '{name}'", dumps(config))
    json.loads(dumps(config))


@pytest.mark.skipif(not have_ignition_validate(), reason="ignition-validate is not installed")
@pytest.mark.parametrize("name", ["c1", "w1"])
def test_flatcar_machine_config_passes_ignition_validate(
    backup_stack: StackConfig, name: str
) -> None:
    check_with_ignition_validate(f"machine '{name}'", dumps(config_of(backup_stack, name)))


def test_reboots_into_staged_updates_take_the_clusters_fleet_lock(stack: StackConfig) -> None:
    """update-engine writes /var/run/update_engine_autoupdate_completed once it has applied an
    update (flatcar/update_engine src/update_engine/update_attempter.cc); the path unit then
    starts the reboot, which first takes the lock of the fleetlock server Zincati asks, in
    Zincati's default group (coreos/zincati src/identity/mod.rs DEFAULT_GROUP)."""
    config = config_of(stack, "w1")
    files, units = files_of(config), units_of(config)
    settings = text_of(files["/etc/stubernetes/fleetlock.env"]).splitlines()
    assert f"FLEETLOCK_URL=http://{stack.cluster.fleetlock_ip}/" in settings
    assert "FLEETLOCK_GROUP=default" in settings
    assert files["/opt/stubernetes/stubernetes-os-reboot"]["mode"] == 0o755
    path = units["stubernetes-os-reboot.path"]
    assert path["enabled"] is True
    assert "PathExists=/run/update_engine_autoupdate_completed" in path["contents"]
    assert "Unit=stubernetes-os-reboot.service" in path["contents"]
    # Started by the path unit alone.
    assert "enabled" not in units["stubernetes-os-reboot.service"]
    steady = units["stubernetes-os-steady-state.service"]
    assert steady["enabled"] is True
    assert "ExecStart=/opt/stubernetes/stubernetes-os-reboot steady-state" in steady["contents"]
