"""The setup service under faults: a runtime that fails to start, a CNI archive that is not
the one pinned, tar failing half-way, kubeadm and kubectl failing, hanging or unreachable. It
retries with a bounded backoff within the boot, names the cause in the status, gives up for
good once the attempts are spent, and leaves nothing half-done: no unpacking of an unchecked
archive, kubeadm only with the runtime up, never a second kubeadm over a finished one.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from setup_harness import (
    CNI_ARCHIVE,
    CNI_BIN_DIR,
    FAST,
    REFUSED,
    ROLES,
    SIMULATED,
    MachineFactory,
    assert_done,
    describe,
    keys,
    kubeadm_key,
    token,
)
from sim_crash import invariant_violations
from sim_downloads import cni_archive, cni_plugins

from ignition.node import SetupPolicy

pytest_plugins = ["sim_fixtures"]

pytestmark = SIMULATED

CONTAINERD_FAILED = (
    "phase node exited 1: stubernetes-setup: containerd.service did not start: "
    "journalctl -u containerd.service says why"
)


# ------------------------------------------------------------------------------ the runtime


@pytest.mark.parametrize("name", list(ROLES), ids=list(ROLES.values()))
def test_containerd_failing_to_start_is_retried_in_the_same_boot(
    make_machine: MachineFactory, name: str
) -> None:
    """containerd fails at power-on and at the phase's first two starts: the phase retries it
    with its backoff, kubeadm runs once it is up, and all of it in the one boot."""
    machine = make_machine(name)
    machine.fail_runtime_starts(3)
    boots = machine.boot_until_settled()
    assert [(b.ran, b.reboot_requested, b.exit_code) for b in boots] == [
        (True, False, 0),
        (False, False, None),
    ], describe(boots)
    assert_done(machine)
    calls = machine.calls()
    starts = [c for c in calls if c.key == "systemctl start"]
    assert [c.rc for c in starts] == [1, 1, 0]
    assert [c.status.get("attempts", "0") for c in starts] == ["0", "1", "2"]
    assert starts[1].status["last_error"] == CONTAINERD_FAILED
    # The setup's boot, then the next one's power-on.
    assert machine.state()["containerd"]["starts"] == [
        ["power-on", "failed"],
        ["systemctl start", "failed"],
        ["systemctl start", "failed"],
        ["systemctl start", "running"],
        ["power-on", "running"],
    ]
    # Each archive unpacked once (the CNI plugins', crictl's): the stamps spare the retries them.
    assert (keys(calls)["tar"], keys(calls)[kubeadm_key(machine)]) == (2, 1)
    (kubeadm,) = [c for c in calls if c.key == kubeadm_key(machine)]
    assert kubeadm.seq > starts[-1].seq
    assert invariant_violations(machine, boots) == []


def test_a_containerd_that_never_starts_stops_setup_before_kubeadm(
    make_machine: MachineFactory,
) -> None:
    policy = SetupPolicy(max_attempts=3, backoff_base_seconds=0, backoff_max_seconds=0)
    machine = make_machine("w1", policy)
    machine.fail_runtime_starts(100)
    boots = machine.boot_until_settled(max_boots=3)
    assert [(b.ran, b.exit_code) for b in boots] == [(True, 1)] * 3, describe(boots)
    status = machine.status()
    assert (status["state"], status["phase"], status["attempts"]) == ("failed", "node", "3")
    assert status["last_error"] == CONTAINERD_FAILED
    counts = keys(machine.calls())
    assert counts["systemctl start"] == 3 and "kubeadm join" not in counts
    assert "setup failed earlier" in boots[2].journal
    assert invariant_violations(machine, boots, settled=False) == []

    # Fixed (the runtime starts again) and restarted by hand: it carries on from phase node.
    machine.fail_runtime_starts(0)
    machine.file("/var/lib/stubernetes/failed").unlink()
    restart = machine.restart_unit()
    assert restart.exit_code == 0, restart.journal
    assert_done(machine)
    assert keys(machine.calls())["kubeadm join"] == 1


def test_kubeadm_refuses_a_runtime_at_another_socket(make_machine: MachineFactory) -> None:
    """containerd runs, but its CRI socket is not the one kubeadm's criSocket names: kubeadm's
    CRI preflight check fails before it writes anything, and setup gives up with its error."""
    policy = SetupPolicy(max_attempts=2, backoff_base_seconds=0, backoff_max_seconds=0)
    machine = make_machine("c2", policy)
    config = machine.file("/etc/containerd/config.toml")
    text = config.read_text()
    assert 'address = "/run/containerd/containerd.sock"' in text
    config.write_text(text.replace("containerd.sock", "elsewhere.sock"))
    boots = machine.boot_until_settled(max_boots=2)
    status = machine.status()
    assert (status["state"], status["phase"]) == ("failed", "kubeadm"), describe(boots)
    assert status["last_error"] == (
        "phase kubeadm exited 1: stubernetes-setup: kubeadm join failed: [ERROR CRI]: container "
        "runtime is not running: rpc error: code = Unavailable desc = connection error: desc = "
        '"transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: '
        'no such file or directory"'
    )
    assert not machine.file("/etc/kubernetes/kubelet.conf").exists()
    assert "kubeadm reset" not in keys(machine.calls())


# -------------------------------------------------------------------------- the CNI plugins


def test_a_cni_archive_that_lost_its_digest_is_never_unpacked(
    make_machine: MachineFactory,
) -> None:
    """Ignition checked the archive; a byte changed on disk since. Phase node checks it again,
    refuses to unpack it, names the archive and the digest, and setup stops before kubeadm."""
    policy = SetupPolicy(max_attempts=2, backoff_base_seconds=0, backoff_max_seconds=0)
    machine = make_machine("w1", policy)
    archive = machine.file(CNI_ARCHIVE)
    data = bytearray(archive.read_bytes())
    data[-1] ^= 0xFF
    archive.write_bytes(bytes(data))
    pinned = machine.file("/etc/stubernetes/setup.env").read_text()
    digest = pinned.split("CNI_PLUGINS_SHA256=", 1)[1].split()[0]
    boots = machine.boot_until_settled(max_boots=2)
    status = machine.status()
    assert (status["state"], status["phase"], status["attempts"]) == ("failed", "node", "2")
    assert status["last_error"] == (
        f"phase node exited 1: stubernetes-setup: {CNI_ARCHIVE} does not have the pinned "
        f"sha256 {digest}: not unpacking it"
    ), describe(boots)
    counts = keys(machine.calls())
    assert counts["sha256sum"] == 2
    assert not {"tar", "systemctl start", "kubeadm join"} & set(counts)
    assert not machine.file(CNI_BIN_DIR).exists()
    assert invariant_violations(machine, boots, settled=False) == []


@pytest.mark.parametrize("name", list(ROLES), ids=list(ROLES.values()))
def test_tar_failing_midway_unpacks_the_whole_archive_again(
    make_machine: MachineFactory, name: str
) -> None:
    """The disk refuses tar's writes past 8 KiB (portmap is 64 KiB): tar fails half-way, the
    phase leaves no stamp, and the next attempt checks and unpacks the whole archive again."""
    machine = make_machine(name)
    machine.set_plan({"faults": {"tar": [{"do": "fail-midway", "bytes": 8192}]}})
    boots = machine.boot_until_settled()
    assert [(b.ran, b.exit_code) for b in boots] == [(True, 0), (False, None)], describe(boots)
    assert_done(machine)
    calls = machine.calls()
    tars = [c for c in calls if c.key == "tar"]
    # The CNI plugins' archive fails, then unpacks whole; then crictl's.
    assert [c.rc for c in tars] == [2, 0, 0]
    assert tars[1].status["last_error"] == (
        f"phase node exited 1: stubernetes-setup: unpacking {CNI_ARCHIVE} into {CNI_BIN_DIR} "
        "failed: it is unpacked again at the next attempt"
    )
    assert "tar: ./portmap: Wrote only" in boots[0].journal
    plugins = {p.name: p.read_bytes() for p in machine.file(CNI_BIN_DIR).iterdir()}
    assert plugins == cni_plugins(cni_archive())
    counts = keys(calls)
    # The CNI archive checked at each of its two attempts, crictl's once.
    assert (counts["sha256sum"], counts[kubeadm_key(machine)]) == (3, 1)
    assert invariant_violations(machine, boots) == []


# ------------------------------------------------------------------------ kubeadm, kubectl


def test_join_retries_with_bounded_backoff_within_and_across_boots(
    make_machine: MachineFactory,
) -> None:
    """The API server is not up yet: kubeadm join fails, is retried with doubling delays up to
    the cap, a crash in the middle of retrying keeps the attempt count, and it succeeds."""
    policy = SetupPolicy(max_attempts=6, backoff_base_seconds=1, backoff_max_seconds=2)
    machine = make_machine("w1", policy)
    refused = {"do": "unreachable"}
    machine.set_plan({"faults": {"kubeadm join": [refused, refused, {"do": "kill"}, refused]}})
    boots = machine.boot_until_settled()
    assert [b.ran for b in boots] == [True, True, False], describe(boots)
    assert boots[0].killed and boots[1].exit_code == 0
    assert_done(machine)

    joins = [c for c in machine.calls() if c.key == "kubeadm join"]
    assert [(c.boot, c.do) for c in joins] == [
        (1, "unreachable"),
        (1, "unreachable"),
        (1, "kill"),
        (2, "unreachable"),
        (2, "ok"),
    ]
    # The status as each call found it: the attempts so far and the error of the last one.
    assert [c.status.get("attempts", "0") for c in joins] == ["0", "1", "2", "2", "3"]
    assert all(c.status["state"] == "running" for c in joins)
    assert all(c.status["phase"] == "kubeadm" for c in joins)
    for call in joins[1:]:
        assert REFUSED in call.status["last_error"], call.status
        assert call.status["last_error"].startswith("phase kubeadm exited 1: ")
    # Doubling delays, capped; the count goes on after the crash.
    assert "attempt 1 failed" in boots[0].journal and "retrying in 1s" in boots[0].journal
    assert "attempt 2 failed" in boots[0].journal and "retrying in 2s" in boots[0].journal
    assert "attempt 3 failed" in boots[1].journal and "retrying in 2s" in boots[1].journal
    gaps = [later.time - earlier.time for earlier, later in itertools.pairwise(joins)]
    assert 1 <= gaps[0] < 1.9 and 2 <= gaps[1] < 2.9 and 2 <= gaps[3] < 2.9, gaps
    # The last error stays on record after success, the attempts start over with each phase.
    assert REFUSED in machine.status()["last_error"]


def test_join_refused_while_its_own_node_is_still_ready_is_retried_until_it_is_not(
    make_machine: MachineFactory,
) -> None:
    """A controller's join cut short after its kubelet registered the Node: the next attempt
    resets (stopping that kubelet), and kubeadm refuses to join while the Node still counts as
    Ready (for the grace period after its last heartbeat); the backoff outlasts it."""
    policy = SetupPolicy(max_attempts=6, backoff_base_seconds=1, backoff_max_seconds=2)
    machine = make_machine("c2", policy)
    machine.update_cluster(lambda c: c.update(grace_seconds=2.0))
    cut = {"do": "kill-step", "step": "kubelet-start/register-node"}
    machine.set_plan({"faults": {"kubeadm join": [cut]}})
    boots = machine.boot_until_settled()
    assert_done(machine)
    joins = [c for c in machine.calls() if c.key == "kubeadm join"]
    # Refused at once and after the 1 s delay (mostly), joined after the next one (2 s).
    refused = [c for c in joins if c.rc == 1]
    assert (joins[0].end, joins[-1].rc) == ("killed", 0), describe(boots)
    assert 1 <= len(refused) <= 2 and len(joins) == len(refused) + 2
    error = 'a Node with name "c2" and status "Ready" already exists in the cluster'
    assert error in joins[-1].status["last_error"]
    assert keys(machine.calls())["kubeadm reset"] == len(refused) + 1


HANGS = {
    "kubeadm-join": (
        "kubeadm join",
        {"do": "hang-step", "step": "kubelet-start/bootstrap-kubeconfig"},
        "kubeadm_timeout_seconds",
        "phase kubeadm exited 124: stubernetes-setup: kubeadm join failed: timed out after 1s",
    ),
    "kubectl-get-node": (
        "kubectl get node",
        {"do": "hang"},
        "kubectl_timeout_seconds",
        "phase kubeadm exited 1: stubernetes-setup: cannot reach the API server",
    ),
}


@pytest.mark.parametrize(("command", "fault", "setting", "error"), HANGS.values(), ids=HANGS)
def test_a_hung_command_times_out_and_is_retried(
    make_machine: MachineFactory, command: str, fault: dict[str, Any], setting: str, error: str
) -> None:
    # A second instead of minutes, for the test.
    machine = make_machine("w1", dataclasses.replace(FAST, **{setting: 1}))
    faults: dict[str, list[dict[str, Any]]] = {command: [fault]}
    if command == "kubectl get node":
        # kubectl is asked only where an earlier join left credentials behind.
        faults["kubeadm join"] = [{"do": "kill-step", "step": "kubelet-start/tls-bootstrap"}]
    machine.set_plan({"faults": faults})
    boots = [machine.boot(timeout=15) for _ in range(3)]
    assert not any(b.hung for b in boots), describe(boots)
    assert_done(machine)
    hung = next(c for c in machine.calls() if c.key == command)
    assert hung.end == "hanging"
    after = next(c for c in machine.calls() if c.seq > hung.seq)
    assert after.status["attempts"] == "1", after.status
    assert after.status["last_error"].startswith(error), after.status


def test_permanent_failure_stops_for_good_with_the_reason(make_machine: MachineFactory) -> None:
    """A join that cannot succeed (the cluster does not know this machine's token): after
    MAX_ATTEMPTS the runner stops, records why, and later boots neither reboot nor retry."""
    policy = SetupPolicy(max_attempts=3, backoff_base_seconds=0, backoff_max_seconds=0)
    machine = make_machine("w1", policy)
    machine.update_cluster(lambda c: c["tokens"].remove(token("w1")))
    boots = machine.boot_until_settled(max_boots=4)
    assert [(b.ran, b.reboot_requested, b.exit_code) for b in boots] == [
        (True, False, 1),
    ] * 4, describe(boots)
    status = machine.status()
    assert (status["state"], status["phase"], status["attempts"]) == ("failed", "kubeadm", "3")
    assert "phase kubeadm exited 1: " in status["last_error"]
    assert (
        "could not find a JWS signature in the cluster-info ConfigMap for token ID"
        in status["last_error"]
    )
    assert machine.file("/var/lib/stubernetes/failed").exists()
    assert not machine.file("/var/lib/stubernetes/done").exists()
    # Updates stay held: a failed node is not rebooted by Zincati either.
    assert machine.file("/etc/zincati/config.d/90-stubernetes-hold-updates.toml").exists()
    calls = machine.calls()
    assert keys(calls)["kubeadm join"] == 3
    assert [c.key for c in calls if c.boot > 1] == []
    for boot in boots[1:]:
        assert "setup failed earlier" in boot.journal
    assert invariant_violations(machine, boots, settled=False) == []

    # The documented way out: fix the cause, remove the stamp, restart the unit.
    machine.update_cluster(lambda c: c["tokens"].append(token("w1")))
    machine.file("/var/lib/stubernetes/failed").unlink()
    restart = machine.restart_unit()
    assert restart.exit_code == 0
    assert_done(machine)
