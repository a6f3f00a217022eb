"""Checks that span machines, and the check of each machine's Ignition snippets."""

from __future__ import annotations

from collections.abc import Sequence

from stackconfig.fragment import fragment_problems
from stackconfig.model import Machine
from stackconfig.problems import Problem, machine_where


def snippet_problems(machine: Machine) -> list[Problem]:
    where = machine_where(machine.name)
    return [
        Problem(where, f"snippets[{index}].{problem.partition(':')[0]}", problem.partition(": ")[2])
        for index, snippet in enumerate(machine.snippets)
        for problem in fragment_problems(snippet)
    ]


def network_problems(machine: Machine) -> list[Problem]:
    where = machine_where(machine.name)
    if machine.address is None:
        return [
            Problem(where, field, "needs a static 'address' (omit it for DHCP)")
            for field, value in (("gateway", machine.gateway), ("dns", machine.dns))
            if value
        ]
    problems = []
    if machine.address.network.prefixlen == 32:
        problems.append(Problem(where, "address", "needs a prefix length, e.g. 192.168.10.21/24"))
    elif machine.gateway is not None and machine.gateway not in machine.address.network:
        problems.append(
            Problem(
                where,
                "gateway",
                f"{machine.gateway} is outside the machine's subnet {machine.address.network}",
            )
        )
    return problems


def rebuild_problems(machines: Sequence[Machine], allow_cluster_rebuild: bool) -> list[Problem]:
    controllers = [m for m in machines if m.is_controller]
    if len(controllers) != 1 or controllers[0].generation == 1 or allow_cluster_rebuild:
        return []
    return [
        Problem(
            machine_where(controllers[0].name),
            "generation",
            "reinstalling the only controller wipes etcd, the whole cluster's state; add "
            "controllers first, or set stubernetes:cluster allowClusterRebuild: true",
        )
    ]


def power_problems(machine: Machine) -> list[Problem]:
    if machine.bmc is not None and machine.pxe_command is not None:
        return [
            Problem(machine_where(machine.name), "pxeCommand", "give either 'bmc' or 'pxeCommand'")
        ]
    return []


def cross_machine_problems(machines: Sequence[Machine]) -> list[Problem]:
    problems: list[Problem] = []
    first_with: dict[tuple[str, str], str] = {}
    for machine in machines:
        keys = [("mac", machine.mac)]
        if machine.address is not None:
            keys.append(("address", str(machine.address.ip)))
        for field, value in keys:
            owner = first_with.setdefault((field, value), machine.name)
            if owner != machine.name:
                problems.append(
                    Problem(
                        machine_where(machine.name),
                        field,
                        f"{value} is already used by machine '{owner}'",
                    )
                )
    if machines and not any(m.is_controller for m in machines):
        problems.append(
            Problem("stubernetes:machines", "role", "no machine is a controller; one is needed")
        )
    init_controller = None
    for machine in machines:
        if not machine.init:
            continue
        where = machine_where(machine.name)
        if not machine.is_controller:
            problems.append(Problem(where, "init", "only a controller can run kubeadm init"))
        elif init_controller is not None:
            problems.append(
                Problem(
                    where,
                    "init",
                    f"machine '{init_controller}' is already the init controller; only one may be",
                )
            )
        else:
            init_controller = machine.name
    return problems
