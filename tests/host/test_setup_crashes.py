"""The setup service survives a power cut anywhere (sim_crash: a kill before every command its
scripts run that leaves a state of its own, and inside every stand-in call), for every role:
the next boots finish what was left, with nothing half-done, no second kubeadm and no reboot
asked for by setup.

STUBERNETES_SIM_EVERY_KILL_POINT=1 kills before every command instead of once for each
distinct state that a kill can leave behind.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from setup_harness import (
    CNI_BIN_DIR,
    FAST,
    ROLES,
    SIMULATED,
    MachineFactory,
    assert_done,
    describe,
    keys,
)
from sim_crash import (
    KillPoint,
    call_kill_points,
    final_state,
    invariant_violations,
    reference_run,
    step_kill_points,
)
from sim_downloads import cni_archive, cni_plugins
from sim_machine import SETUP_UNIT

pytest_plugins = ["sim_fixtures"]

pytestmark = SIMULATED

EVERY_KILL_POINT = os.environ.get("STUBERNETES_SIM_EVERY_KILL_POINT") == "1"
UNPACKED = "/var/lib/stubernetes/cni-plugins-1.9.1.unpacked"


@pytest.mark.parametrize("name", list(ROLES), ids=list(ROLES.values()))
def test_a_crash_anywhere_converges_to_the_same_state(
    make_machine: MachineFactory, tmp_path: Path, name: str
) -> None:
    crashes_converge(make_machine, tmp_path, name)


@pytest.mark.parametrize("name", list(ROLES), ids=list(ROLES.values()))
def test_on_flatcar_a_crash_anywhere_converges_to_the_same_state(
    make_flatcar_machine: MachineFactory, tmp_path: Path, name: str
) -> None:
    """The same scripts, relocated to /opt, run by units whose PATH has /opt/bin, with the
    updates' hold in /etc/flatcar/update.conf (ignition/flatcar_machine.py)."""
    machine = make_flatcar_machine(name)
    assert machine.file("/opt/bin/stubernetes-setup").exists()
    assert not machine.file("/usr/local/bin/stubernetes-setup").exists()
    assert machine.file("/etc/flatcar/update.conf").exists()
    machine.remove()
    crashes_converge(make_flatcar_machine, tmp_path, name)


def crashes_converge(make_machine: MachineFactory, tmp_path: Path, name: str) -> None:
    template = make_machine(name)
    reference = reference_run(template, tmp_path)
    assert [b.ran for b in reference.boots] == [True, False]
    assert not reference.boots[0].reboot_requested
    steps, commands = step_kill_points(reference, every=EVERY_KILL_POINT)
    calls = call_kill_points(reference)
    points: list[KillPoint] = steps + calls
    assert commands > 400 and len(steps) > 25 and len(calls) >= 16

    failures = []
    left_enabled = []
    for index, point in enumerate(points):
        machine = point.snapshot.clone(tmp_path / f"kill-{index}")
        machine.set_plan(point.plan)
        boots = machine.boot_until_settled()
        problems = invariant_violations(machine, boots)
        if not any(boot.killed for boot in boots):
            problems.append("the kill never happened")
        final = final_state(machine)
        expected = reference.final
        if final["units"][SETUP_UNIT] == "enabled":
            # The one crash window that cannot converge completely: after the done stamp,
            # before the disable. The stamp alone keeps the unit from ever running again.
            left_enabled.append(point.label)
            final["units"] = {**final["units"], SETUP_UNIT: "disabled"}
            if not boots[-1].skipped or "ConditionPathExists" not in boots[-1].skipped:
                problems.append(f"enabled and not skipped by its condition: {boots[-1]}")
        problems += [f"{key} differs" for key in final if final[key] != expected[key]]
        if problems:
            failures.append(f"{point.label}: {problems} [{describe(boots)}]")
        else:
            machine.remove()
    print(
        f"\n{name}: {commands} commands, {len(steps)} kills before commands "
        f"({'every command' if EVERY_KILL_POINT else 'one per distinct state left behind'}), "
        f"{len(calls)} kills inside stand-ins; left enabled but skipped: {left_enabled}"
    )
    assert failures == [], "\n".join(failures)
    assert len(left_enabled) <= 2  # a kill before `systemctl disable`, the same in a stand-in


UNPACKING = {
    # tar has written part of the archive (portmap is cut short): all of it is checked and
    # unpacked again.
    "midway-through-the-archive": ({"tar": [{"do": "kill-midway", "bytes": 8192}]}, 2, 1),
    # tar is done, the stamp is not written: unpacked again, the same files.
    "after-the-archive": ({"tar": [{"do": "kill-after"}]}, 2, 1),
    # The stamp is written, containerd not yet started by the phase: not unpacked again.
    "after-the-stamp": ({"systemctl start": [{"do": "kill"}]}, 1, 2),
}


@pytest.mark.parametrize(("faults", "unpackings", "starts"), UNPACKING.values(), ids=UNPACKING)
def test_a_crash_while_unpacking_the_cni_plugins_unpacks_them_again(
    make_machine: MachineFactory, faults: dict[str, Any], unpackings: int, starts: int
) -> None:
    machine = make_machine("w1")
    machine.set_plan({"faults": faults})
    first = machine.boot()
    assert first.killed, first
    if "tar" in faults and faults["tar"][0]["do"] == "kill-midway":
        # Half-done on disk: the files before portmap whole, portmap cut at the size limit.
        assert machine.file(f"{CNI_BIN_DIR}/portmap").stat().st_size == 8192
        assert machine.file(f"{CNI_BIN_DIR}/bridge").stat().st_size == 4096
    assert machine.file(UNPACKED).exists() == ("systemctl start" in faults)
    boots = [first, *machine.boot_until_settled()]
    assert [b.ran for b in boots] == [True, True, False], describe(boots)
    assert_done(machine)
    counts = keys(machine.calls())
    # The CNI plugins' archive `unpackings` times, crictl's (unpacked after it) once.
    assert (counts["sha256sum"], counts["tar"]) == (unpackings + 1, unpackings + 1)
    assert counts["systemctl start"] == starts
    assert counts["kubeadm join"] == 1
    plugins = {p.name: p.read_bytes() for p in machine.file(CNI_BIN_DIR).iterdir()}
    assert plugins == cni_plugins(cni_archive())
    assert invariant_violations(machine, boots) == []


KILLED = {
    # A worker's join killed after its kubelet registered the Node: its work is done.
    "worker-after-its-work": ("w1", "kubeadm join", "kubelet-start/register-node", False),
    # Killed before it finished: the next attempt cleans up and joins again.
    "worker-before-its-end": ("w1", "kubeadm join", "kubelet-start/bootstrap-kubeconfig", True),
    # An init killed after it labelled the Node: its last phases are run again, not init.
    "init-after-mark-control-plane": ("c1", "kubeadm init", "mark-control-plane", False),
}


@pytest.mark.parametrize(("name", "command", "step", "resets"), KILLED.values(), ids=KILLED)
def test_kubeadm_killed_by_a_signal_is_asked_about_not_reset_over(
    make_machine: MachineFactory, name: str, command: str, step: str, resets: bool
) -> None:
    """kubeadm killed by a signal (the OOM killer's SIGKILL, a stop) was cut short, as by its
    time limit: it may have finished, so the next attempt asks the API server before anything
    else, and resets only what did not finish. timeout(1) passes such a death on as 128+N
    (GNU coreutils `timeout --help`: "137 if COMMAND (or timeout itself) is sent the KILL (9)
    signal (128+9)"), which phase-kubeadm tells from kubeadm's own failure (status 1)."""
    machine = make_machine(name)
    fault = {"do": "signal-step", "step": step, "signal": 9}
    machine.set_plan({"faults": {command: [fault]}})
    boots = machine.boot_until_settled()
    assert_done(machine)
    calls = machine.calls()
    killed = next(c for c in calls if c.key == command)
    assert (killed.end, killed.rc, killed.where) == ("signal", 137, f"after step {step}")
    after = next(c for c in calls if c.seq > killed.seq)
    assert after.status["last_error"] == (
        f"phase kubeadm exited 137: stubernetes-setup: {command} failed: killed by signal 9"
    )
    assert not any(b.killed for b in boots)  # the boot went on; only kubeadm died
    assert [b.ran for b in boots] == [True, False], describe(boots)
    counts = keys(calls)
    assert counts["kubeadm reset"] == (1 if resets else 0), describe(boots)
    assert counts[command] == (2 if resets else 1)
    if not resets:
        assert "kubectl get node" in counts
        assert f"the earlier {command} succeeded" in boots[0].journal
    if command == "kubeadm init":
        # init's last phases, run again to complete the init that was cut short.
        assert counts["kubeadm init phase bootstrap-token"] == 1
        assert counts["kubeadm init phase addon"] == 1
    assert invariant_violations(machine, boots) == []


def test_a_machine_that_crashes_in_the_same_place_every_boot_stops(
    make_machine: MachineFactory,
) -> None:
    """Crashes are not failures a phase can count; the boots that find it unfinished are."""
    policy = dataclasses.replace(FAST, max_boots_per_phase=3)
    machine = make_machine("w1", policy)
    machine.set_plan({"faults": {"kubeadm join": [{"do": "kill"}] * 10}})
    boots = machine.boot_until_settled(max_boots=8)
    joins = [c for c in machine.calls() if c.key == "kubeadm join"]
    # Boot 1 enters the phase after phase node; boots 2 to 4 find it unfinished; boot 5 stops.
    assert [c.boot for c in joins] == [1, 2, 3, 4], describe(boots)
    status = machine.status()
    assert (status["state"], status["phase"]) == ("failed", "kubeadm")
    assert "still unfinished after 3 boots" in status["last_error"]
    assert machine.file("/var/lib/stubernetes/failed").exists()
    assert not any(b.reboot_requested for b in boots)
    # Phase node, done in the first boot, is not run again (one tar per archive).
    assert keys(machine.calls())["tar"] == 2

    # Fixed and restarted by hand: a fresh start, not an instant failure on old counts.
    machine.set_plan({})
    machine.file("/var/lib/stubernetes/failed").unlink()
    assert machine.restart_unit().exit_code == 0
    assert_done(machine)
