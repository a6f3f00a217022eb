"""The simulated host's fixtures, a pytest plugin its test modules name in `pytest_plugins`
(a conftest.py here would be a second module named conftest on mypy's path): the node's
downloads served by the real Matchbox, the stacks that fetch them, machines of the
three-controller stack, and the check that no boot touches the host."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from setup_harness import FAST, MachineFactory, cluster_for, config_for
from sim_downloads import SimDownloads, served_downloads
from sim_exec import BOUND_PATHS, OVERLAID
from sim_machine import SimMachine

from ignition.material import ClusterMaterial
from ignition.node import SetupPolicy
from stackconfig import StackConfig, parse_stack_config


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimDownloads]:
    with served_downloads(tmp_path_factory.mktemp("sim-downloads")) as served:
        yield served


@pytest.fixture(scope="session")
def served_values(example_values: dict[str, Any], downloads: SimDownloads) -> dict[str, Any]:
    """The example stack, its nodes fetching their binaries from the test's Matchbox."""
    return downloads.serve(example_values)


@pytest.fixture(scope="session")
def served_stack(served_values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(served_values)


# A virtual IP over all controllers: with several, the API endpoint may be none's own address.
VIRTUAL_IP = "192.168.10.10"


@pytest.fixture(scope="session")
def ha_values(served_values: dict[str, Any]) -> dict[str, Any]:
    """The example stack (its downloads served) with three controllers: c1 (init), c2 and c3
    (joining), and the API endpoint on a virtual IP (in the simulated cluster, `api_host` is
    who answers at it)."""
    values = copy.deepcopy(served_values)
    values["cluster"] = {**values["cluster"], "apiEndpoint": f"{VIRTUAL_IP}:6443"}
    for index in (2, 3):
        values["machines"][f"c{index}"] = {
            "mac": f"52:54:00:a1:00:1{index}",
            "role": "controller",
            "installDisk": "/dev/sda",
            "address": f"192.168.10.1{index}/24",
            "gateway": "192.168.10.1",
            "dns": ["192.168.10.1"],
        }
    return values


@pytest.fixture(scope="session")
def ha_stack(ha_values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(ha_values)


@pytest.fixture(scope="session")
def flatcar_ha_stack(ha_values: dict[str, Any]) -> StackConfig:
    """The three-controller stack on Flatcar stable 4593.2.5 (ignition/flatcar_machine.py)."""
    values = copy.deepcopy(ha_values)
    cached = values["os"].get("cachedInstall", False)
    values["os"] = {
        "flavor": "flatcar",
        "channel": "stable",
        "version": "4593.2.5",
        "cachedInstall": cached,
    }
    return parse_stack_config(values)


def machine_factory(
    tmp_path: Path, stack: StackConfig, material: ClusterMaterial
) -> MachineFactory:
    def make(
        name: str, policy: SetupPolicy = FAST, cluster: dict[str, Any] | None = None
    ) -> SimMachine:
        return SimMachine.create(
            tmp_path / name,
            config_for(stack, name, material, policy),
            cluster if cluster is not None else cluster_for(stack, name, material),
        )

    return make


@pytest.fixture
def make_machine(
    tmp_path: Path, ha_stack: StackConfig, material: ClusterMaterial
) -> MachineFactory:
    return machine_factory(tmp_path, ha_stack, material)


@pytest.fixture
def make_flatcar_machine(
    tmp_path: Path, flatcar_ha_stack: StackConfig, material: ClusterMaterial
) -> MachineFactory:
    return machine_factory(tmp_path, flatcar_ha_stack, material)


@pytest.fixture(scope="module")
def host_untouched() -> Iterator[None]:
    """Every boot runs in a namespace of its own: the host's paths never change."""

    def listing() -> dict[str, list[str] | None]:
        return {
            path: sorted(os.listdir(path)) if os.path.isdir(path) else None
            for path in (*BOUND_PATHS, *OVERLAID)
        }

    before = listing()
    yield
    assert listing() == before
