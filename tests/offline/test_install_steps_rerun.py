"""Harmless changes to a running cluster run no machine's install step again.

The command provider replaces a Command only when its `triggers` change; any other input
change is an in-place update, which runs `update`, or `create` again when `update` is unset
(pulumi/pulumi-command `provider/pkg/provider/local/commandController.go`, `Update`; the
default diff of pulumi/pulumi-go-provider `infer/resource.go`). `engine_rules` applies that
rule to two runs of the program under mocks. Every install step now has an `update` that
re-runs nothing, so these changes leave every machine alone; the readiness gates have none and
do run again (they only wait, and pass at once on a healthy cluster).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from engine_rules import commands_that_run, install_steps
from program_stacks import sized_stack

import components.install_step
from stubernetes.mocks import RecordingMonitor, StandInMocks
from stubernetes.program_run import ProgramRun, run_program

SECRET_KEYS = ["matchbox", "machines"]


def running_cluster(values: dict[str, Any], renewed: frozenset[str] = frozenset()) -> ProgramRun:
    """The program on a stack whose every machine joined in an earlier update."""
    installed = {name: "00000000" for name in values["machines"]}
    mocks = StandInMocks("tests", previous_outputs={"installed": installed}, renewed_certs=renewed)
    return run_program(values, SECRET_KEYS, monitor=RecordingMonitor(mocks))


def steps_that_run(before: ProgramRun, after: ProgramRun) -> dict[str, str]:
    ran = commands_that_run(before.registrations, after.registrations)
    steps = install_steps(after.registrations)
    return {name: how for name, how in ran.items() if name in steps and how == "create"}


def gates_that_run(before: ProgramRun, after: ProgramRun) -> set[str]:
    ran = commands_that_run(before.registrations, after.registrations)
    steps = install_steps(after.registrations)
    return {name for name, how in ran.items() if name not in steps and how == "create"}


@pytest.fixture(scope="module")
def seven(example_values: dict[str, Any]) -> dict[str, Any]:
    """Three controllers and four workers, w1 with an IPMI BMC."""
    values = sized_stack(example_values, 3, 4)
    values["machines"]["w1"]["bmc"] = {
        "kind": "ipmi",
        "address": "10.1.0.21",
        "user": "admin",
        "password": "first-password",
    }
    return values


@pytest.fixture(scope="module")
def baseline(seven: dict[str, Any]) -> ProgramRun:
    return running_cluster(seven)


def test_adding_a_controller_runs_only_the_new_machines_steps(
    seven: dict[str, Any], baseline: ProgramRun
) -> None:
    grown = copy.deepcopy(seven)
    grown["machines"]["c4"] = {
        "mac": "52:54:00:b0:01:00",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "10.0.1.10/16",
        "gateway": "10.0.0.1",
        "dns": ["10.0.0.1"],
    }
    after = running_cluster(grown)
    assert steps_that_run(baseline, after) == {
        "lab-c4-install-clock": "create",
        "lab-c4-clean": "create",
        # A new controller's certificates, uploaded for its join, and the wait for that join.
        "lab-c4-upload-certs": "create",
        "lab-c4-network-boot": "create",
        "lab-c4-control-plane-joined": "create",
        "lab-c4-rejoin": "create",
        # Created once it joined; every other machine's membership step only records the new
        # list of controllers (an update that re-runs nothing).
        "lab-c4-membership": "create",
        # Its upgrade step: it finds the new Node at the stack's release, and upgrades nothing.
        "lab-c4-upgrade": "create",
    }
    # The gates wait for the new machine: their triggers are the machines' names.
    assert gates_that_run(baseline, after) == {"lab-registered", "lab-ready"}


def test_changing_gate_timeouts_runs_no_install_step(
    seven: dict[str, Any], baseline: ProgramRun
) -> None:
    changed = copy.deepcopy(seven)
    changed["gates"] = {
        "reinstallTimeoutSeconds": 7200,
        "pollSeconds": 30,
        "drainTimeoutSeconds": 60,
    }
    after = running_cluster(changed)
    assert steps_that_run(baseline, after) == {}
    # The gates' own settings changed: they run (and pass) again.
    assert gates_that_run(baseline, after) == {"lab-api-server", "lab-registered", "lab-ready"}


def test_rotating_a_bmc_password_power_cycles_nothing(
    seven: dict[str, Any], baseline: ProgramRun
) -> None:
    changed = copy.deepcopy(seven)
    changed["machines"]["w1"]["bmc"]["password"] = "second-password"
    after = running_cluster(changed)
    assert steps_that_run(baseline, after) == {}
    assert gates_that_run(baseline, after) == set()


def test_renewing_the_admin_certificate_runs_no_install_step(
    seven: dict[str, Any], baseline: ProgramRun
) -> None:
    after = running_cluster(seven, renewed=frozenset({"lab-admin"}))
    assert steps_that_run(baseline, after) == {}
    # Every gate carries the kubeconfig, so each runs again, and passes on a running cluster.
    assert gates_that_run(baseline, after) == {"lab-api-server", "lab-registered", "lab-ready"}


def test_without_update_commands_the_same_changes_rerun_install_steps(
    seven: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule and the check can fail: the steps as they were before, with no `update`."""
    monkeypatch.setattr(components.install_step, "KEEP_LAST_OUTPUT", None)
    before = running_cluster(seven)
    changed = copy.deepcopy(seven)
    changed["machines"]["w1"]["bmc"]["password"] = "second-password"
    changed["gates"] = {"reinstallTimeoutSeconds": 7200}
    rerun = steps_that_run(before, running_cluster(changed))
    assert rerun == {f"lab-{m}-rejoin": "create" for m in seven["machines"]} | {
        "lab-w1-network-boot": "create"
    } | {f"lab-{m}-control-plane-joined": "create" for m in ("c1", "c2", "c3")}
