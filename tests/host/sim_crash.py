"""The crash suite of the simulated host: kill a run at every point, and judge what is left.

A reference run records every command the scripts run, with a digest of the persistent state
(the machine's disk, its state and the cluster's) before each; a kill before a command leaves
exactly that state behind, so one kill for each distinct digest covers every state a power cut
between commands can leave. Kills inside stand-in calls (before, between the steps of, and
after their state change) cover a cut in the middle of a command. What every run must end in:
the reference run's final state, and the invariants below (one kubeadm init or join to
completion, never an unpacking without a passed check of the archive, no reboot asked for by
setup, nothing unmodeled, no write outside the bound paths, no hang).

What this model keeps is more than a real power cut keeps: here every write a finished command
made survives, while a real disk keeps only what was flushed. The real node guest
(tests/lab/test_lab_node.py, a power cut by killing its QEMU) found the difference: the phase
record and the kubeadm choice, renamed into place without a flush, came back lost and empty,
and the setup stopped on the empty choice. The records are flushed since (common.sh
durable_write, durable_touch); that path is proved on the real guest, not here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim_machine import Boot, CallRecord, SimMachine

JSON = dict[str, Any]


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file and directory under `root` (relative path -> mode and content digest)."""
    result = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative in skip:
            continue
        mode = oct(path.lstat().st_mode & 0o7777)
        if path.is_symlink():
            result[relative] = f"link {os.readlink(path)}"
        elif path.is_dir():
            result[relative] = f"dir {mode}"
        else:
            result[relative] = f"{mode} {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    return result


@dataclass(frozen=True)
class TracedStep:
    point: str  # "invocation.step"
    digest: str
    where: str
    command: str

    @property
    def invocation(self) -> int:
        return int(self.point.split(".")[0])


@dataclass
class Reference:
    """An undisturbed run, with the state before each boot kept to start kill runs from."""

    boots: list[Boot]
    snapshots: list[SimMachine]  # the machine before each boot that ran the unit
    steps: list[TracedStep]
    calls: list[CallRecord]
    final: JSON

    def snapshot_for_step(self, step: TracedStep) -> SimMachine:
        for boot, snapshot in zip(self.boots, self.snapshots, strict=False):
            if boot.scripts[0] < step.invocation <= boot.scripts[1]:
                return snapshot
        raise ValueError(f"no boot ran command {step.point}")

    def snapshot_for_call(self, seq: int) -> SimMachine:
        for boot, snapshot in zip(self.boots, self.snapshots, strict=False):
            if boot.calls[0] < seq <= boot.calls[1]:
                return snapshot
        raise ValueError(f"no boot made call {seq}")


@dataclass(frozen=True)
class KillPoint:
    label: str
    plan: JSON
    snapshot: SimMachine


def reference_run(template: SimMachine, workdir: Path, max_boots: int = 8) -> Reference:
    machine = template.clone(workdir / "reference")
    boots: list[Boot] = []
    snapshots: list[SimMachine] = []
    for number in range(max_boots):
        snapshot = machine.clone(workdir / f"before-boot-{number + 1}")
        boot = machine.boot(trace=True)
        boots.append(boot)
        if not boot.ran:
            break
        snapshots.append(snapshot)
    steps = []
    for line in machine.trace():
        point, digest, where, command = line.split("\t", 3)
        steps.append(TracedStep(point, digest, where, command))
    return Reference(boots, snapshots, steps, machine.calls(), final_state(machine))


def step_kill_points(reference: Reference, every: bool = False) -> tuple[list[KillPoint], int]:
    """A kill before each command the scripts run; all of them, or one for each distinct state
    they leave behind (a run is determined by the state it starts from, so a kill before
    either of two commands that meet the same persistent state is the same kill).
    Returns the points to run and the number of commands."""
    seen: set[str] = set()
    points = []
    for step in reference.steps:
        if not every and step.digest in seen:
            continue
        seen.add(step.digest)
        points.append(
            KillPoint(
                f"SIGKILL before command {step.point} ({step.where}: {step.command})",
                {"kill_at": step.point},
                reference.snapshot_for_step(step),
            )
        )
    return points, len(reference.steps)


def call_kill_points(reference: Reference) -> list[KillPoint]:
    """A kill inside each stand-in call: before its state change, between the steps of it
    (kubeadm's phases), and after it (before the command returns)."""
    points = []
    for call in reference.calls:
        snapshot = reference.snapshot_for_call(call.seq)
        kills: list[tuple[str, JSON]] = [("before its state change", {"do": "kill"})]
        kills += [
            (f"after step {step}", {"do": "kill-step", "step": step}) for step in call.steps[:-1]
        ]
        kills.append(("after its state change", {"do": "kill-after"}))
        for where, fault in kills:
            points.append(
                KillPoint(
                    f"kill in call {call.seq} ({' '.join(call.argv)}) {where}",
                    {"kill_call": {"seq": call.seq, **fault}},
                    snapshot,
                )
            )
    return points


def final_state(machine: SimMachine) -> JSON:
    """What must be the same however the run went: files, status, units, the cluster."""
    state = machine.state()
    cluster = machine.cluster()
    return {
        "files": tree_digest(
            machine.root,
            skip=("var/lib/stubernetes/status", "var/lib/stubernetes/phase.log"),
        ),
        "status": {k: v for k, v in machine.status().items() if k not in ("updated", "last_error")},
        "units": state["units"],
        "runtime": state["containerd"]["running"],
        "kubelet": state["kubelet"],
        "selinux": state["selinux"],
        "etcd_level": state["etcd_level"],
        "cluster": {
            "initialized": cluster["initialized"],
            "api": cluster["api"],
            "nodes": {
                name: {k: v for k, v in node.items() if k not in ("stopped_at", "adopted")}
                for name, node in cluster["nodes"].items()
            },
            "etcd": cluster["etcd"],
            "tokens": sorted(cluster["tokens"]),
            "objects": sorted(cluster["objects"]),
        },
    }


def invariant_violations(machine: SimMachine, boots: list[Boot], settled: bool = True) -> list[str]:
    """What must hold of every run, whatever was killed where; `settled`: and setup is over."""
    problems = []
    joined = None
    verified = False
    for call in machine.calls():
        if call.key in ("kubeadm init", "kubeadm join"):
            if joined is not None:
                problems.append(f"call {call.seq}: {call.key} after call {joined} completed it")
            if call.effect == "complete":
                joined = call.seq
        # The archive is checked before every unpacking: a check that passed, then one tar.
        if call.key == "sha256sum":
            verified = call.rc == 0
        if call.key == "tar":
            if not verified:
                problems.append(f"call {call.seq}: unpacked with no passed check since the last")
            verified = False
        if call.end == "unmodeled":
            problems.append(f"call {call.seq}: unmodeled {call.argv}")
    for boot in boots:
        if boot.reboot_requested:
            problems.append(f"boot {boot.number}: setup asked for a reboot")
        if boot.outside_writes:
            problems.append(
                f"boot {boot.number} wrote outside the bound paths: {boot.outside_writes}"
            )
        if boot.hung:
            problems.append(f"boot {boot.number} hung")
    if settled and boots and boots[-1].ran:
        problems.append(f"still running setup after {len(boots)} boots: {boots[-1]}")
    return problems
