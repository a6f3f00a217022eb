"""What the program owns on a machine is read off that machine's generated Ignition, so that a
file, unit or user it adds later is owned without anyone listing it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ignition.material import ClusterMaterial, standin_bootstrap_token
from ignition.node import SUDOERS_DROP_IN, machine_ignition
from ignition.owned_entries import (
    SYSTEMD_UNITS_DIR,
    canonical_path,
    machine_owned_entries,
    owned_entries,
)
from ignition.setup_paths import SETUP_UNIT
from stackconfig import StackConfig, parse_stack_config


def generated(
    stack: StackConfig, name: str, material: ClusterMaterial, cluster_exists: bool = False
) -> dict[str, Any]:
    machine = stack.machine(name)
    return machine_ignition(
        stack,
        machine,
        material,
        standin_bootstrap_token("owned", name),
        certificate_key="1" * 64,
        cluster_exists=cluster_exists,
    )


def config_entries(config: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Every path, unit and user of a generated config, read independently of the module."""
    paths = {canonical_path(f["path"]) for f in config["storage"].get("files", [])}
    units = {u["name"] for u in config["systemd"]["units"]}
    paths |= {f"{SYSTEMD_UNITS_DIR}/{unit}" for unit in units}
    # A drop-in is written to <unit>.d/<name> (coreos/ignition internal/exec/util/path.go
    # SystemdDropinsPath): the kubelet's 10-kubeadm.conf among them.
    paths |= {
        f"{SYSTEMD_UNITS_DIR}/{u['name']}.d/{d['name']}"
        for u in config["systemd"]["units"]
        for d in u.get("dropins", [])
    }
    users = {u["name"] for u in config["passwd"]["users"]}
    return paths, units, users


@pytest.mark.parametrize("name", ["c1", "w1", "w2"])
def test_the_owned_set_is_the_generated_configs_entries(
    name: str, example_stack: StackConfig, material: ClusterMaterial
) -> None:
    owned = machine_owned_entries(example_stack, example_stack.machine(name))
    paths, units, users = config_entries(generated(example_stack, name, material))
    assert set(owned.nodes) == paths
    assert set(owned.units) == units
    assert owned.users == users
    assert owned.groups == {"wheel", "sudo"}


@pytest.mark.parametrize("name", ["c1", "w1"])
def test_a_worker_and_a_controller_own_the_sudoers_drop_in_and_the_setup_unit(
    name: str, example_stack: StackConfig
) -> None:
    owned = machine_owned_entries(example_stack, example_stack.machine(name))
    assert SUDOERS_DROP_IN in owned.nodes
    assert f"{SYSTEMD_UNITS_DIR}/{SETUP_UNIT}" in owned.nodes
    assert SETUP_UNIT in owned.units
    assert "/etc/hostname" in owned.nodes
    assert "core-admin" in owned.users


def test_what_differs_by_machine_follows_the_machine(example_stack: StackConfig) -> None:
    controller = machine_owned_entries(example_stack, example_stack.machine("c1"))
    static = machine_owned_entries(example_stack, example_stack.machine("w1"))
    dhcp = machine_owned_entries(example_stack, example_stack.machine("w2"))
    keyfile = "/etc/NetworkManager/system-connections/stubernetes-static.nmconnection"
    assert keyfile in static.nodes and keyfile not in dhcp.nodes
    assert "stubernetes-cert-renewal.timer" in controller.units
    assert "stubernetes-cert-renewal.timer" not in static.units


def test_an_entry_the_program_adds_is_owned(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    config = generated(example_stack, "w1", material)
    config["storage"]["files"].append({"path": "/etc/stubernetes/something-new"})
    config["storage"]["links"] = [{"path": "/etc/stubernetes/a-link", "target": "/x"}]
    config["systemd"]["units"].append(
        {"name": "stubernetes-new.service", "dropins": [{"name": "10-own.conf"}]}
    )
    config["passwd"]["groups"] = [{"name": "stubernetes"}]
    owned = owned_entries(config)
    assert owned.nodes["/etc/stubernetes/something-new"] == (
        "the program's file /etc/stubernetes/something-new"
    )
    assert owned.nodes["/etc/stubernetes/a-link"] == "the program's link /etc/stubernetes/a-link"
    assert owned.units["stubernetes-new.service"] == {"10-own.conf"}
    assert f"{SYSTEMD_UNITS_DIR}/stubernetes-new.service.d/10-own.conf" in owned.nodes
    assert "stubernetes" in owned.groups


def _stacks(values: dict[str, Any]) -> list[StackConfig]:
    rebuild = copy.deepcopy(values)
    rebuild["cluster"]["allowClusterRebuild"] = True
    several = copy.deepcopy(values)
    several["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    several["machines"]["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "192.168.10.12/24",
        "gateway": "192.168.10.1",
        "dns": ["192.168.10.1"],
    }
    return [parse_stack_config(v) for v in (values, rebuild, several)]


def test_the_first_stage_owns_what_any_later_stage_writes(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    """machine_owned_entries reads the new stack's first update: every later stage writes a
    subset of it, so a snippet checked against it is checked against every stage."""
    for stack in _stacks(example_values):
        for machine in stack.machines:
            first = machine_owned_entries(stack, machine)
            later = owned_entries(generated(stack, machine.name, material, cluster_exists=True))
            assert set(later.nodes) <= set(first.nodes), machine.name
            assert set(later.units) <= set(first.units), machine.name
            assert later.users <= first.users


def test_the_founding_controller_owns_its_ca_material(example_stack: StackConfig) -> None:
    owned = machine_owned_entries(example_stack, example_stack.machine("c1"))
    assert "/etc/stubernetes/pki/ca.key" in owned.nodes


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/etc/sudoers.d/stubernetes-admin", ("/etc/sudoers.d/stubernetes-admin", "same")),
        ("/etc/sudoers.d", ("/etc/sudoers.d/stubernetes-admin", "holds")),
        ("/var/usrlocal/bin/stubernetes-setup", ("/var/usrlocal/bin/stubernetes-setup", "same")),
        # The first of the program's paths below it: Ignition's kubeadm download.
        ("/usr/local", ("/var/usrlocal/bin/kubeadm", "holds")),
        ("/etc/hostname/inside", ("/etc/hostname", "under")),
        ("/etc/sudoers.d/mine", None),
        ("/etc/systemd/system/stubernetes-setup.service.d/10-mine.conf", None),
        ("/etc/hostnames", None),
    ],
)
def test_node_conflicts(
    path: str, expected: tuple[str, str] | None, example_stack: StackConfig
) -> None:
    owned = machine_owned_entries(example_stack, example_stack.machine("w1"))
    assert owned.node_conflict(path) == expected


def test_usr_local_is_compared_as_fedora_coreos_resolves_it() -> None:
    assert canonical_path("/usr/local/bin/x") == "/var/usrlocal/bin/x"
    assert canonical_path("/usr/local") == "/var/usrlocal"
    assert canonical_path("/usr/localx") == "/usr/localx"
    assert canonical_path("/etc/hostname") == "/etc/hostname"
