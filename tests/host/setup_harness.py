"""What the setup service's tests share: the machines of the three-controller stack, the
cluster each meets, and what a finished setup looks like.

Each install of a machine has a bootstrap token and (a controller) a certificate key of its
own, as the program makes them; the cluster a machine meets is none for the founding
controller and, for the others, the one the founding controller made, with the program's
per-machine tokens and the kubeadm-certs upload a joining controller's install needs.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from ignition_root import IGNITION_BINARY
from repo_paths import TEST_SEED
from sim_cluster import empty_cluster, running_cluster, upload_kubeadm_certs
from sim_machine import Boot, CallRecord, SimMachine

from ignition.kubeadm import joins_with_certificate_key
from ignition.kubeadm_certs import standin_certificate_key
from ignition.material import ClusterMaterial, standin_bootstrap_token
from ignition.node import SetupPolicy, machine_ignition_json
from ignition.os_updates import UPDATE_ENGINE, ZINCATI
from stackconfig import StackConfig

SIMULATED = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root"),
    pytest.mark.skipif(not IGNITION_BINARY.exists(), reason="the Ignition binary is missing"),
    pytest.mark.usefixtures("host_untouched"),
]

# Fast retries: no backoff sleeps, and enough attempts for a crash's aftermath.
FAST = SetupPolicy(max_attempts=4, backoff_base_seconds=0, backoff_max_seconds=1)
ONE_ATTEMPT = SetupPolicy(max_attempts=1, backoff_base_seconds=0, backoff_max_seconds=0)
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
ADDRESSES = {"c1": "192.168.10.11", "c2": "192.168.10.12", "c3": "192.168.10.13"}
PEER = {name: f"https://{address}:2380" for name, address in ADDRESSES.items()}
ENDPOINT = "192.168.10.10:6443"
REFUSED = f"dial tcp {ENDPOINT}: connect: connection refused"
CNI_ARCHIVE = "/var/lib/stubernetes/downloads/cni-plugins-linux-amd64-v1.9.1.tgz"
CNI_BIN_DIR = "/opt/cni/bin"
ROLES = {"w1": "worker", "c1": "founding-controller", "c2": "joining-controller"}

MachineFactory = Callable[..., SimMachine]


def token(name: str, generation: int = 1) -> str:
    """Each install of a machine has a token of its own (the Pulumi side makes a new one)."""
    return standin_bootstrap_token(TEST_SEED, name if generation == 1 else f"{name}/{generation}")


def certificate_key(name: str, generation: int = 1) -> str:
    """Each install of a controller has a certificate key of its own, like its token."""
    label = name if generation == 1 else f"{name}/{generation}"
    return standin_certificate_key(TEST_SEED, label)


def config_for(
    stack: StackConfig, name: str, material: ClusterMaterial, policy: SetupPolicy = FAST
) -> bytes:
    machine = stack.machine(name)
    return machine_ignition_json(
        stack,
        machine,
        material,
        token(name, machine.generation),
        policy,
        certificate_key=certificate_key(name, machine.generation),
    )


def cluster_for(stack: StackConfig, name: str, material: ClusterMaterial) -> dict[str, Any]:
    """The cluster machine `name` meets: none for the init controller; for the others, one the
    init controller made, with the other controllers in it and every machine's token valid
    (the Pulumi side makes the tokens)."""
    if stack.machine(name).init:
        return empty_cluster()
    controllers = {m.name: ADDRESSES[m.name] for m in stack.machines if m.is_controller}
    controllers.pop(name, None)
    cluster = running_cluster(
        material.ca_cert_hash,
        [token(m.name) for m in stack.machines],
        controllers,
        api_host=stack.init_controller.name,
    )
    machine = stack.machine(name)
    if joins_with_certificate_key(stack, machine):
        # The program's upload step ran before this controller's network boot.
        generation = machine.generation
        upload_kubeadm_certs(
            cluster, material, certificate_key(name, generation), token(name, generation), name
        )
    return cluster


def keys(calls: list[CallRecord]) -> Counter[str]:
    return Counter(call.key for call in calls)


def kubeadm_key(machine: SimMachine) -> str:
    kind = machine.state()["facts"]["kind"]
    return "kubeadm init" if kind == "InitConfiguration" else "kubeadm join"


def assert_done(machine: SimMachine) -> None:
    status = machine.status()
    assert (status["phase"], status["state"], status["attempts"]) == ("done", "done", "0")
    assert machine.file("/var/lib/stubernetes/kubeadm.ok").exists()
    assert machine.file("/var/lib/stubernetes/done").exists()
    assert not machine.file("/var/lib/stubernetes/failed").exists()
    # The OS updates' hold is gone: Zincati's, or Flatcar's update-engine's (setup.env names it).
    env = machine.file("/etc/stubernetes/setup.env").read_text().splitlines()
    (hold,) = [line.partition("=")[2] for line in env if line.startswith("OS_UPDATES_HOLD=")]
    assert hold in (ZINCATI.hold_file, UPDATE_ENGINE.hold_file)
    assert not machine.file(hold).exists()
    assert not machine.unit_enabled()


def describe(boots: list[Boot]) -> str:
    return "; ".join(str(boot) for boot in boots)
