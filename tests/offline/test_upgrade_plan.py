"""A bump of `kubernetesVersion` under the SDK's mocks: exactly which resources it changes, and
the rolling order of the upgrade steps (kubeadm's: `kubeadm upgrade apply` on the first
controller, `kubeadm upgrade node` on every other controller and then on the workers, one machine
at a time; kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/; kubespray
playbooks/upgrade_cluster.yml keeps the same order between machines: the control-plane nodes
with `serial: 1`, then the workers in batches of `serial`).

The previous state of an update is the outputs the last one recorded (components/previous.py):
here those of a run of the same stack at the old release, without their secrets, as `render`
writes them (stubernetes/render_outputs.py).
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from program_stacks import sized_stack
from test_reinstall import SECRET_KEYS, records

from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks
from stubernetes.program_run import ProgramRun, run_program
from stubernetes.render_outputs import outputs_document
from stubernetes.upgrade_plan import plan_line, upgrade_chain

COMMAND = "command:local:Command"
PROFILE = "matchbox:index/profile:Profile"
OLD, NEW = "1.35", "1.36"


def run(values: dict[str, Any], previous: dict[str, Any] | None = None) -> ProgramRun:
    monitor = RecordingMonitor(StandInMocks("stubernetes", previous_outputs=previous))
    return run_program(values, SECRET_KEYS, monitor=monitor)


def recorded_outputs(done: ProgramRun) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(outputs_document(done.stack_outputs))
    return document


def with_version(values: dict[str, Any], version: str) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    changed["cluster"]["kubernetesVersion"] = version
    return changed


@pytest.fixture(scope="module")
def bump(example_values: dict[str, Any]) -> tuple[ProgramRun, ProgramRun, ProgramRun]:
    """Three controllers and two workers at 1.35, then the same stack unchanged, then at 1.36,
    each from the first run's outputs."""
    old = with_version(sized_stack(example_values, 3, 2), OLD)
    first = run(old)
    previous = recorded_outputs(first)
    assert previous["kubernetesRelease"] == "1.35.8"
    return first, run(old, previous), run(with_version(old, NEW), previous)


def named(done: ProgramRun, type_: str, name: str) -> Registration:
    (found,) = [r for r in done.registrations if r.type == type_ and r.name == name]
    return found


def env(registration: Registration) -> dict[str, Any]:
    environment: dict[str, Any] = registration.inputs_in_place["environment"]
    return environment


MACHINES = ("c1", "c2", "c3", "w1", "w2")


def test_a_bump_changes_the_ignitions_and_the_upgrade_steps_and_nothing_else(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    _, unchanged, bumped = bump
    before, after = records(unchanged), records(bumped)
    assert before.keys() == after.keys()
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {
        # Each machine's Ignition names the new release (its downloads and their digests,
        # kubeadm's kubernetesVersion): a later (re)install gets it; an update in place.
        *((PROFILE, f"lab-{m}") for m in MACHINES),
        # Each machine's upgrade step: its triggers hold the release, so it is replaced.
        *((COMMAND, f"lab-{m}-upgrade") for m in MACHINES),
    }


def test_the_upgrade_steps_are_replaced_with_the_release_and_say_from_which(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    _, unchanged, bumped = bump
    for machine in MACHINES:
        old = named(unchanged, COMMAND, f"lab-{machine}-upgrade")
        new = named(bumped, COMMAND, f"lab-{machine}-upgrade")
        assert old.inputs["triggers"] == [1, "1.35.8"]
        assert new.inputs["triggers"] == [1, "1.36.4"]
        assert (env(old)["RELEASE"], env(new)["RELEASE"]) == ("1.35.8", "1.36.4")
        # The binaries the machine fetches: the new release's, with their pinned digests.
        assert "dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm " in env(new)["BINARIES"]


def test_one_machine_at_a_time_in_kubeadms_order_after_every_membership(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    _, _, bumped = bump
    chain = upgrade_chain(bumped.registrations)
    assert [env(r)["MACHINE"] for r in chain] == list(MACHINES)
    assert [env(r)["KUBEADM_UPGRADE"] for r in chain] == ["apply"] + ["node"] * 4
    assert plan_line(bumped.registrations) == (
        "c1 (kubeadm upgrade apply) -> c2 (kubeadm upgrade node) -> c3 (kubeadm upgrade node) "
        "-> w1 (kubeadm upgrade node) -> w2 (kubeadm upgrade node)"
    )
    urns = [r.urn for r in chain]
    for index, step in enumerate(chain):
        machine = env(step)["MACHINE"]
        # Exactly the machine before it in the chain, and nothing after it.
        assert [d for d in step.dependencies if d in urns] == urns[max(index - 1, 0) : index]
        membership = named(bumped, COMMAND, f"lab-{machine}-membership")
        # A component dependency is sent as its children: the channel's ConfigMap among them.
        configmap = named(bumped, "kubernetes:core/v1:ConfigMap", f"lab-{machine}-upgrade-channel")
        assert {membership.urn, configmap.urn} <= set(step.dependencies), machine


def test_the_machine_that_runs_kubeadm_upgrade_apply_is_the_init_controller(
    example_values: dict[str, Any],
) -> None:
    values = with_version(sized_stack(example_values, 3, 1), NEW)
    values["machines"]["c1"].pop("init", None)
    values["machines"]["c2"]["init"] = True
    assert plan_line(run(values).registrations).startswith(
        "c2 (kubeadm upgrade apply) -> c1 (kubeadm upgrade node) -> c3 (kubeadm upgrade node)"
    )


def test_the_upgrade_steps_read_nothing_of_the_previous_outputs(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    """A new stack's and the next unchanged update's upgrade steps are the same: an update that
    changes nothing changes no upgrade step (the script asks the Node what it runs)."""
    first, unchanged, _ = bump
    steps = {(COMMAND, f"lab-{m}-upgrade") for m in MACHINES}
    before, after = records(first), records(unchanged)
    assert {k: before[k] for k in steps} == {k: after[k] for k in steps}


def test_the_upgrade_channel_lets_only_the_machines_kubelet_write_its_configmap(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    _, _, bumped = bump
    role = named(bumped, "kubernetes:rbac.authorization.k8s.io/v1:Role", "lab-w1-upgrade-channel")
    (rule,) = role.inputs["rules"]
    assert rule["resourceNames"] == ["stubernetes-upgrade-w1"]
    assert sorted(rule["verbs"]) == ["get", "patch", "update"]
    binding = named(
        bumped, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "lab-w1-upgrade-channel"
    )
    assert [s["name"] for s in binding.inputs["subjects"]] == ["system:node:w1"]
    configmap = named(bumped, "kubernetes:core/v1:ConfigMap", "lab-w1-upgrade-channel")
    # The data is the upgrade step's and the machine's, never the program's.
    assert configmap.ignore_changes == ["data"]
    assert "data" not in configmap.inputs


def test_a_refused_bump_registers_nothing(
    bump: tuple[ProgramRun, ProgramRun, ProgramRun], example_values: dict[str, Any]
) -> None:
    first, _, _ = bump
    skipped = with_version(sized_stack(example_values, 3, 2), "1.37.2")
    skipped["cluster"]["binarySha256"] = {n: "ab" * 32 for n in ("kubeadm", "kubectl", "kubelet")}
    monitor = RecordingMonitor(
        StandInMocks("stubernetes", previous_outputs=recorded_outputs(first))
    )
    with pytest.raises(Exception, match=r"1\.35\.8 to 1\.37\.2 skips a minor"):
        run_program(skipped, SECRET_KEYS, monitor=monitor)
    assert [r.type for r in monitor.registrations if r.custom] == []


def test_the_plan_is_said_in_preview_when_the_release_changes(
    example_values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    old = with_version(sized_stack(example_values, 2, 1), OLD)
    previous = recorded_outputs(run(old))
    with caplog.at_level(logging.INFO):
        run(old, previous)
        assert not [r for r in caplog.records if "one machine at a time" in r.getMessage()]
        run(with_version(old, NEW), previous)
    (said,) = [r.getMessage() for r in caplog.records if "one machine at a time" in r.getMessage()]
    assert said == (
        "Kubernetes 1.35.8 -> 1.36.4, one machine at a time, each drained, upgraded by its own "
        "upgrade service and uncordoned: c1 (kubeadm upgrade apply) -> c2 (kubeadm upgrade node) "
        "-> w1 (kubeadm upgrade node)"
    )
