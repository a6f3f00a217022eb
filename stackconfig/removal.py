"""Which removals and reinstalls of machines an update must refuse, from the stack's last update.

Plain data in, problems out: the machines of the last update that completed (the `machines`
stack output: each machine's role, generation and whether it is the init controller), which of
them had joined (the `installed` output), and the stack config about to be applied.

The controllers of the last update are the cluster's etcd members (kubeadm runs a stacked etcd
member on every controller). etcd processes a membership change only while a majority of its
members work, calls removing a member from a two-member cluster unsafe, and asks for members to
be changed one at a time (etcd.io/docs/v3.6/op-guide/runtime-configuration/, "Reconfiguration
requests can only be processed when a majority of cluster members are functioning"; "Cycle or
upgrade multiple machines"). A reinstall removes its controller's member and adds it back; a
removal removes it. So one update may take away fewer than half of the last update's controllers:
at least a majority of them stays untouched.

A machine's role does not change in place: no step turns a running controller into a worker or
back. A controller whose stack entry says worker would keep its etcd member (the clean and
removal steps remove a member only for a controller) and a worker told it is a controller would
never run `kubeadm join --control-plane`. So a changed role is refused, whatever its generation:
remove the machine in one update (its membership step drains it and, for a controller, removes
its member) and add it back with its new role in the next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackconfig.model import StackConfig
from stackconfig.problems import Problem, machine_where

MACHINES_OUTPUT = "machines"
INSTALLED_OUTPUT = "installed"


@dataclass(frozen=True)
class PreviousMachine:
    """One machine as the last update left it (its entry of the `machines` output)."""

    name: str
    role: str
    # None when the output predates the field: no reinstall of it can be told apart.
    generation: int | None
    init: bool
    installed: bool

    @property
    def is_controller(self) -> bool:
        return self.role == "controller"


@dataclass(frozen=True)
class CurrentMachine:
    name: str
    role: str
    generation: int


def _natural(name: str) -> list[tuple[int, int | str]]:
    """c2 before c10: the order of names, their numbers as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def previous_machines(outputs: Mapping[str, Any]) -> list[PreviousMachine]:
    """The last update's machines from its outputs, by name (a stack output is a map, whose
    order the engine does not keep); none for a new stack."""
    listed = outputs.get(MACHINES_OUTPUT)
    installed = outputs.get(INSTALLED_OUTPUT)
    joined = set(installed) if isinstance(installed, Mapping) else set()
    if not isinstance(listed, Mapping):
        return []
    machines = []
    for name, entry in listed.items():
        if not isinstance(entry, Mapping):
            continue
        generation = entry.get("generation")
        machines.append(
            PreviousMachine(
                name=str(name),
                role=str(entry.get("role", "")),
                generation=int(generation) if isinstance(generation, int | float) else None,
                init=bool(entry.get("init", False)),
                installed=name in joined,
            )
        )
    return sorted(machines, key=lambda m: _natural(m.name))


def current_machines(stack: StackConfig) -> list[CurrentMachine]:
    return [CurrentMachine(m.name, m.role, m.generation) for m in stack.machines]


def removal_problems(
    previous: Sequence[PreviousMachine],
    current: Sequence[CurrentMachine],
    cluster_answered: bool = False,
) -> list[Problem]:
    """Every refusal at once, one problem per machine and rule, in the order of `previous`.

    `cluster_answered`: the last update saw the cluster answer (any machine in `installed`).
    """
    now = {m.name: m for m in current}
    controllers = [m for m in previous if m.is_controller]
    removed = [m for m in controllers if m.name not in now or now[m.name].role != m.role]
    reinstalled = [
        m
        for m in controllers
        if m not in removed and m.generation is not None and now[m.name].generation != m.generation
    ]
    problems: list[Problem] = []
    if controllers and len(removed) == len(controllers):
        for machine in removed:
            problems.append(
                Problem(
                    machine_where(machine.name),
                    "",
                    "removing the last controller of the cluster: its etcd holds the whole "
                    "cluster's state, and no controller of the last update would keep it; "
                    "add a controller first, and remove this one in a later update",
                )
            )
    elif len(controllers) >= 2:
        # A single controller's reinstall is the cluster rebuild, refused or allowed on its own
        # (stackconfig/checks.py rebuild_problems).
        going = [m for m in controllers if m in removed or m in reinstalled]
        kept = len(controllers) - len(going)
        majority = len(controllers) // 2 + 1
        if going and kept < majority:
            names = ", ".join(m.name for m in going)
            for machine in going:
                what = "removed" if machine in removed else "reinstalled"
                problems.append(
                    Problem(
                        machine_where(machine.name),
                        "generation" if what == "reinstalled" else "",
                        f"{what}: taking {names} out of etcd in one update leaves {kept} of "
                        f"the {len(controllers)} controllers (etcd members) of the last update "
                        f"untouched, fewer than etcd's majority of {majority}; remove or "
                        "reinstall controllers in separate updates",
                    )
                )
    for machine in previous:
        if machine.name in now and now[machine.name].role != machine.role:
            problems.append(
                Problem(
                    machine_where(machine.name),
                    "role",
                    f"changing a machine's role in place ({machine.role} to "
                    f"{now[machine.name].role}): nothing turns a running {machine.role} into a "
                    f"{now[machine.name].role}, and a controller's etcd member would stay; "
                    "remove the machine in one update and add it back in the next",
                )
            )
    for machine in removed:
        if machine.init and not machine.installed and not cluster_answered:
            problems.append(
                Problem(
                    machine_where(machine.name),
                    "",
                    "removing the init controller before the cluster ever answered: it alone "
                    "founds the cluster (kubeadm init) and no other machine has joined it yet; "
                    "let the first pulumi up finish, or remove every machine with pulumi destroy",
                )
            )
    return problems


def stack_removal_problems(outputs: Mapping[str, Any], stack: StackConfig) -> list[Problem]:
    """The refusals for applying `stack` to a stack whose last update output `outputs`."""
    # A machine joins only a cluster that answers: any entry in `installed` says it did.
    installed = outputs.get(INSTALLED_OUTPUT)
    answered = isinstance(installed, Mapping) and len(installed) > 0
    return removal_problems(previous_machines(outputs), current_machines(stack), answered)
