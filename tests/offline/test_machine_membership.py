"""Adding and removing machines on a stack that was up, as the engine would apply the program's
two runs (tests/offline/engine_rules.py: the providers' replace-or-update rules, deletes of what the
program no longer registers, in reverse dependency order).

Each "up" runs the program under mocks with the previous run's stack outputs as the stack's
previous outputs (what `pulumi:pulumi:readStackOutputs` answers after a completed update).
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest
from engine_rules import (
    COMMAND,
    commands_that_run,
    delete_waves,
    deleted,
    deletes_that_run,
    plan,
)
from program_stacks import sized_stack
from pulumi.runtime import rpc

from components.install_step import KEEP_LAST_OUTPUT
from stackconfig.releases import DEFAULT_RELEASE_NAMES
from stubernetes.mocks import RecordingMonitor, StandInMocks, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program

SECRET_KEYS = ["matchbox", "machines"]
GATES = {"lab-api-server", "lab-registered", "lab-ready"}
# What waits for, or serves, every machine by name: the two gates that wait for every Node (their
# triggers are the machines' names, so they are replaced and run again), and the household DNS
# release, whose hosts block lists every machine (stackconfig/releases.py).
SHARED = {"lab-registered", "lab-ready", "household-dns"}
PROFILE = "matchbox:index/profile:Profile"


def up(values: dict[str, Any], previous: ProgramRun | None = None) -> ProgramRun:
    outputs = unwrap_secrets(previous.stack_outputs) if previous else {}
    mocks = StandInMocks("tests", previous_outputs=outputs)
    return run_program(values, SECRET_KEYS, monitor=RecordingMonitor(mocks))


def steady(values: dict[str, Any]) -> ProgramRun:
    """The program on a stack whose first update completed."""
    return up(values, up(values))


def of_machine(run: ProgramRun, machine: str) -> set[str]:
    """The URNs of a machine's resources: its component, everything named after it."""
    return {
        r.urn
        for r in run.registrations
        if r.name == f"lab-{machine}" or r.name.startswith(f"lab-{machine}-")
    }


def names(run: ProgramRun, urns: set[str]) -> set[str]:
    return {r.name for r in run.registrations if r.urn in urns}


def by_name(run: ProgramRun, name: str, type_: str = COMMAND) -> Any:
    (found,) = [r for r in run.registrations if r.name == name and r.type == type_]
    return found


def environment(registration: Any) -> dict[str, str]:
    value = registration.inputs["environment"]
    plain: dict[str, str] = rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value
    return unwrap_secrets(plain)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def values(example_values: dict[str, Any]) -> dict[str, Any]:
    return sized_stack(example_values, 3, 3)


@pytest.fixture(scope="module")
def baseline(values: dict[str, Any]) -> ProgramRun:
    return steady(values)


def new_machine(values: dict[str, Any], name: str, role: str, index: int) -> dict[str, Any]:
    grown = copy.deepcopy(values)
    grown["machines"][name] = {
        "mac": f"52:54:00:b1:00:{index:02x}",
        "role": role,
        "installDisk": "/dev/sda",
        "address": f"10.0.2.{index}/16",
        "gateway": "10.0.0.1",
        "dns": ["10.0.0.1"],
    }
    return grown


def without(values: dict[str, Any], *machines: str) -> dict[str, Any]:
    smaller = copy.deepcopy(values)
    for machine in machines:
        del smaller["machines"][machine]
    return smaller


def test_an_unchanged_stack_changes_nothing(values: dict[str, Any], baseline: ProgramRun) -> None:
    again = up(values, baseline)
    assert set(plan(baseline.registrations, again.registrations).values()) == {"same"}
    assert deleted(baseline.registrations, again.registrations) == []


def test_adding_a_worker_creates_its_resources_and_only_the_gates_wait_for_it(
    values: dict[str, Any], baseline: ProgramRun
) -> None:
    grown = up(new_machine(values, "w4", "worker", 10), baseline)
    actions = plan(baseline.registrations, grown.registrations)
    created = {urn for urn, action in actions.items() if action == "create"}
    assert created == of_machine(grown, "w4")
    # Exactly a worker's resources, by type and name: none missing, none extra.
    assert sorted((r.type, r.name) for r in grown.registrations if r.urn in created) == sorted(
        NEW_WORKER
    )
    changed = {urn for urn, action in actions.items() if action not in ("same", "create")}
    # The shared gates and the DNS release; nothing of any other machine.
    assert names(grown, changed) == SHARED
    assert deleted(baseline.registrations, grown.registrations) == []
    ran = commands_that_run(baseline.registrations, grown.registrations)
    # Its upgrade step too, which finds the new Node at the stack's release.
    assert set(ran) == {f"lab-w4-{s}" for s in (*STEPS, "upgrade")} | {
        "lab-registered",
        "lab-ready",
    }


# What a new worker w4 brings: its component with its Matchbox profile and group, its install
# anchor and steps, its token (component, random id and secret, Secret) and its status report
# (component, ConfigMap, Role, RoleBinding).
NEW_WORKER = [
    ("stubernetes:machine:Machine", "lab-w4"),
    ("matchbox:index/profile:Profile", "lab-w4"),
    ("matchbox:index/group:Group", "lab-w4"),
    ("random:index/randomId:RandomId", "lab-w4-install"),
    *((COMMAND, f"lab-w4-{step}") for step in ("install-clock", "clean", "network-boot")),
    *((COMMAND, f"lab-w4-{step}") for step in ("rejoin", "membership")),
    ("stubernetes:cluster:BootstrapToken", "lab-w4-token"),
    ("random:index/randomString:RandomString", "lab-w4-token-id"),
    ("random:index/randomPassword:RandomPassword", "lab-w4-token-secret"),
    ("kubernetes:core/v1:Secret", "lab-w4-bootstrap-token"),
    ("stubernetes:machine:StatusReport", "lab-w4-status"),
    ("kubernetes:core/v1:ConfigMap", "lab-w4-status"),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", "lab-w4-status"),
    ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "lab-w4-status"),
    # Its upgrade step and channel (components/upgrade_step.py, upgrade_channel.py).
    (COMMAND, "lab-w4-upgrade"),
    ("stubernetes:machine:UpgradeChannel", "lab-w4-upgrade-channel"),
    ("kubernetes:core/v1:ConfigMap", "lab-w4-upgrade-channel"),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", "lab-w4-upgrade-channel"),
    ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "lab-w4-upgrade-channel"),
]


def controllers_changed(
    values: dict[str, Any], before: ProgramRun, after: ProgramRun, controllers: str
) -> None:
    """What a changed list of controllers does to the machines that stay: their steps that
    carry the list (the clean step, and the membership step whose delete needs it) are updated
    in place, each with an `update` that re-runs nothing (components/install_step.py
    KEEP_LAST_OUTPUT). No Matchbox profile changes: once the cluster exists the founding
    controller's Ignition is a join like every other controller's (test_founding_stage.py),
    and no Ignition lists the controllers."""
    actions = plan(before.registrations, after.registrations)
    staying = [m for m in values["machines"] if of_machine(after, m)]
    updated = {urn for urn, action in actions.items() if action == "update"}
    assert names(after, updated) - SHARED == {
        f"lab-{m}-{step}" for m in staying for step in ("clean", "membership")
    }
    for registration in after.registrations:
        if registration.urn in updated and registration.name not in SHARED:
            assert registration.inputs["update"], registration.name
            assert environment(registration)["CONTROLLERS"] == controllers
    replaced = {urn for urn, action in actions.items() if action == "replace"}
    assert names(after, replaced) == {"lab-registered", "lab-ready"}
    ran = commands_that_run(before.registrations, after.registrations)
    assert {name for name, how in ran.items() if how == "create"} <= {
        *(f"lab-c4-{s}" for s in CONTROLLER_STEPS),
        "lab-registered",
        "lab-ready",
    }


STEPS = ("install-clock", "clean", "network-boot", "rejoin", "membership")
# A joining controller's certificate steps besides (components/certificate_join.py).
# The upgrade step is created with the machine; it upgrades nothing on a new install.
CONTROLLER_STEPS = (*STEPS, "upload-certs", "control-plane-joined", "upgrade")


def test_adding_a_controller_changes_other_machines_only_by_steps_that_rerun_nothing(
    values: dict[str, Any], baseline: ProgramRun
) -> None:
    grown = up(new_machine(values, "c4", "controller", 11), baseline)
    actions = plan(baseline.registrations, grown.registrations)
    created = {urn for urn, action in actions.items() if action == "create"}
    assert created == of_machine(grown, "c4")
    assert deleted(baseline.registrations, grown.registrations) == []
    controllers_changed(values, baseline, grown, "c1 c2 c3 c4")
    ran = commands_that_run(baseline.registrations, grown.registrations)
    assert {name for name, how in ran.items() if how == "create"} == {
        *(f"lab-c4-{s}" for s in CONTROLLER_STEPS),
        "lab-registered",
        "lab-ready",
    }


@pytest.mark.parametrize("machine", ["w2", "c3"])
def test_removing_a_machine_deletes_exactly_its_resources_and_runs_its_membership_delete(
    values: dict[str, Any], baseline: ProgramRun, machine: str
) -> None:
    smaller = up(without(values, machine), baseline)
    gone = deleted(baseline.registrations, smaller.registrations)
    assert {r.urn for r in gone} == of_machine(baseline, machine)
    assert deletes_that_run(baseline.registrations, smaller.registrations) == {
        f"lab-{machine}-membership"
    }
    actions = plan(baseline.registrations, smaller.registrations)
    assert "create" not in actions.values()
    if machine.startswith("c"):
        controllers_changed(values, baseline, smaller, "c1 c2")
    else:
        changed = {urn for urn, action in actions.items() if action != "same"}
        assert names(smaller, changed) == SHARED
    ran = commands_that_run(baseline.registrations, smaller.registrations)
    assert {name for name, how in ran.items() if how == "create"} == {"lab-registered", "lab-ready"}
    # The delete runs with the inputs the state recorded: the last update's, this machine's.
    membership = by_name(baseline, f"lab-{machine}-membership")
    assert membership.inputs["delete"] == "bash components/scripts/remove-machine"
    recorded = environment(membership)
    assert recorded["MACHINE"] == machine and recorded["CONTROLLERS"] == "c1 c2 c3"
    assert recorded["DRAIN_TIMEOUT_SECONDS"] == "600"
    assert rpc.is_rpc_secret(membership.inputs["environment"]) or rpc.is_rpc_secret(
        membership.inputs["environment"]["KUBECONFIG_CONTENT"]
    )


def test_the_removal_drain_takes_the_gates_drain_timeout(values: dict[str, Any]) -> None:
    """``stubernetes:gates.drainTimeoutSeconds`` bounds a removal's drain as it bounds a
    reinstall's: the membership step records it for its delete (remove-machine's
    ``kubectl drain --timeout``)."""
    changed = copy.deepcopy(values)
    changed.setdefault("gates", {})["drainTimeoutSeconds"] = 75
    run = up(changed)
    for machine in ("w1", "c2"):
        recorded = environment(by_name(run, f"lab-{machine}-membership"))
        assert recorded["DRAIN_TIMEOUT_SECONDS"] == "75", machine


@pytest.mark.parametrize("machines", [("w1",), ("c2",), ("w1", "c2")])
def test_a_reinstall_never_runs_or_deletes_a_membership_step(
    values: dict[str, Any], baseline: ProgramRun, machines: tuple[str, ...]
) -> None:
    bumped = copy.deepcopy(values)
    for machine in machines:
        bumped["machines"][machine]["generation"] = 2
    after = up(bumped, baseline)
    actions = plan(baseline.registrations, after.registrations)
    for machine in machines:
        assert actions[by_name(after, f"lab-{machine}-membership").urn] == "same"
        anchor = by_name(after, f"lab-{machine}-install", "random:index/randomId:RandomId")
        assert actions[anchor.urn] == "replace"
    ran = commands_that_run(baseline.registrations, after.registrations)
    assert not [name for name in ran if name.endswith("-membership")]
    assert deletes_that_run(baseline.registrations, after.registrations) == set()
    # Outside the chain: nothing ties it to the install anchor.
    membership = by_name(after, f"lab-{machines[0]}-membership")
    assert membership.replace_with == []
    # And no triggers: a replacement would run the old step's delete on a machine that stays.
    assert "triggers" not in membership.inputs


def test_a_destroy_deletes_workers_first_then_the_controllers_one_at_a_time(
    baseline: ProgramRun,
) -> None:
    waves = delete_waves(baseline.registrations, [])
    when = {
        name: index
        for index, wave in enumerate(waves)
        for name in wave
        if name.endswith("-membership")
    }
    assert set(when) == {f"lab-{m}-membership" for m in ("c1", "c2", "c3", "w1", "w2", "w3")}
    workers = {when[f"lab-w{i}-membership"] for i in (1, 2, 3)}
    assert len(workers) == 1  # in parallel
    assert max(workers) < when["lab-c3-membership"] < when["lab-c2-membership"]
    assert when["lab-c2-membership"] < when["lab-c1-membership"]
    # Each membership step goes before its machine's rejoin step and the kubeconfig it uses.
    assert when["lab-c1-membership"] < next(
        i for i, wave in enumerate(waves) if "lab-c1-rejoin" in wave
    )
    assert deletes_that_run(baseline.registrations, []) == set(when)
    # Every Helm release is uninstalled before any machine leaves: the releases wait for the
    # gates, which wait for every membership step (components/program.py).
    releases = {
        index
        for index, wave in enumerate(waves)
        for name in wave
        if name in {"stubernetes-core", *DEFAULT_RELEASE_NAMES}
    }
    assert releases and max(releases) < min(when.values())


def test_the_membership_steps_order(baseline: ProgramRun) -> None:
    urn = {name: by_name(baseline, f"lab-{name}-membership").urn for name in ("c1", "c2", "c3")}
    c1, c2, c3 = (by_name(baseline, f"lab-{m}-membership") for m in ("c1", "c2", "c3"))
    assert by_name(baseline, "lab-c1-rejoin").urn in c1.dependencies
    assert urn["c1"] in c2.dependencies and urn["c2"] in c3.dependencies
    assert urn["c1"] not in c3.dependencies
    w1 = by_name(baseline, "lab-w1-membership")
    assert urn["c3"] in w1.dependencies and by_name(baseline, "lab-w1-rejoin").urn in (
        w1.dependencies
    )


def test_refusals_come_before_anything_is_registered(
    values: dict[str, Any], baseline: ProgramRun
) -> None:
    outputs = unwrap_secrets(baseline.stack_outputs)
    assert outputs["machines"]["c2"]["generation"] == 1 and outputs["machines"]["c1"]["init"]
    changed = without(values, "c3")
    changed["machines"]["c2"]["generation"] = 2
    monitor = RecordingMonitor(StandInMocks("tests", previous_outputs=outputs))
    with pytest.raises(pulumi.RunError) as refused:
        run_program(changed, SECRET_KEYS, monitor=monitor)
    lines = str(refused.value).splitlines()
    assert lines[0] == "refusing this update of the machines:"
    assert lines[1].startswith("machine 'c2': field 'generation': reinstalled: taking c2, c3")
    assert lines[2].startswith("machine 'c3': removed: taking c2, c3 out of etcd")
    assert monitor.registrations == []


def test_removing_the_init_controller_before_the_cluster_answered_is_refused_by_the_program(
    values: dict[str, Any], baseline: ProgramRun
) -> None:
    """The third removal rule (stackconfig/removal.py), through the program: previous outputs
    of an update that finished before any machine joined (``installed`` empty: the cluster never
    answered) refuse the init controller's removal before anything is registered; the same
    removal once machines joined is not refused by that rule (it is the majority rule's case)."""
    outputs = unwrap_secrets(baseline.stack_outputs)
    unanswered = {**outputs, "installed": {}, "installedOverEarlier": {}, "clusterExists": False}
    monitor = RecordingMonitor(StandInMocks("tests", previous_outputs=unanswered))
    with pytest.raises(pulumi.RunError) as refused:
        run_program(without(values, "c1"), SECRET_KEYS, monitor=monitor)
    lines = str(refused.value).splitlines()
    assert lines[0] == "refusing this update of the machines:"
    assert lines[1:] == [
        "machine 'c1': removing the init controller before the cluster ever answered: it alone "
        "founds the cluster (kubeadm init) and no other machine has joined it yet; let the "
        "first pulumi up finish, or remove every machine with pulumi destroy"
    ]
    assert monitor.registrations == []
    answered = RecordingMonitor(StandInMocks("tests", previous_outputs=outputs))
    smaller = run_program(without(values, "c1"), SECRET_KEYS, monitor=answered)
    assert not of_machine(smaller, "c1") and of_machine(smaller, "c2")


def test_a_renewed_admin_certificate_is_recorded_for_the_deletes_and_runs_nothing(
    values: dict[str, Any], baseline: ProgramRun
) -> None:
    """A delete runs with the inputs of the last update (commandController.go Delete): every
    membership step records the renewed kubeconfig by an update that re-runs nothing."""
    outputs = unwrap_secrets(baseline.stack_outputs)
    mocks = StandInMocks("tests", previous_outputs=outputs, renewed_certs=frozenset({"lab-admin"}))
    after = run_program(values, SECRET_KEYS, monitor=RecordingMonitor(mocks))
    actions = plan(baseline.registrations, after.registrations)
    ran = commands_that_run(baseline.registrations, after.registrations)
    for machine in values["machines"]:
        name = f"lab-{machine}-membership"
        old, new = by_name(baseline, name), by_name(after, name)
        assert actions[new.urn] == "update"
        assert ran[name] == "update"  # its `update`, which prints the last output again
        assert new.inputs["update"] == KEEP_LAST_OUTPUT
        assert environment(new)["KUBECONFIG_CONTENT"] != environment(old)["KUBECONFIG_CONTENT"]
        assert environment(new)["KUBECONFIG_CONTENT"] == unwrap_secrets(
            after.stack_outputs["kubeconfig"]
        )
