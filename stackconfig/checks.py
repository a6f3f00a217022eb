"""Checks that span machines, and the check of each machine's Ignition snippets."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from stackconfig.address_pool import pool_problems
from stackconfig.addresses import gateway_problem, host_address_problem
from stackconfig.fragment import fragment_problems
from stackconfig.model import Cluster, MacAddress, Machine, Role
from stackconfig.networks import cluster_network_problems
from stackconfig.problems import Problem, machine_where
from stackconfig.strict_model import WholeNumber
from stackconfig.vip import SUGGESTION as VIP_SUGGESTION


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
    if machine.address.network.prefixlen == 32:
        return [Problem(where, "address", "needs a prefix length, e.g. 192.168.10.21/24")]
    problem = host_address_problem(machine.address)
    if problem is not None:
        # The gateway is judged against a usable address only, so one bad address is one line.
        return [Problem(where, "address", problem)]
    if machine.gateway is not None:
        problem = gateway_problem(machine.address, machine.gateway)
        if problem is not None:
            return [Problem(where, "gateway", problem)]
    return []


def power_problems(machine: Machine) -> list[Problem]:
    if machine.bmc is not None and machine.pxe_command is not None:
        return [
            Problem(machine_where(machine.name), "pxeCommand", "give either 'bmc' or 'pxeCommand'")
        ]
    return []


def taint_problems(machine: Machine) -> list[Problem]:
    """Taints are unique by key and effect (kubernetes/kubernetes
    `pkg/apis/core/validation/validation.go` validateNodeTaints): kubelet would refuse the Node."""
    seen: dict[tuple[str, str], int] = {}
    problems = []
    for index, taint in enumerate(machine.taints):
        first = seen.setdefault((taint.key, taint.effect), index)
        if first != index:
            problems.append(
                Problem(
                    machine_where(machine.name),
                    f"taints[{index}]",
                    f"taints[{first}] already has key {taint.key!r} and effect {taint.effect}; "
                    "taints must be unique by key and effect",
                )
            )
    return problems


@dataclass(frozen=True)
class MachineFacts:
    """What the checks across machines need of one machine, each None when it cannot be read
    (the field itself has a problem, reported on its own), so that one machine's bad field
    neither hides the checks across machines nor makes them report what it caused."""

    name: str
    role: str | None
    mac: str | None
    ip: ipaddress.IPv4Address | None
    network: ipaddress.IPv4Network | None
    init: bool | None
    generation: int | None

    @property
    def is_controller(self) -> bool:
        return self.role == "controller"


_ROLE: TypeAdapter[Role] = TypeAdapter(Role)
_MAC: TypeAdapter[str] = TypeAdapter(MacAddress)
_ADDRESS: TypeAdapter[ipaddress.IPv4Interface | None] = TypeAdapter(ipaddress.IPv4Interface | None)
_INIT: TypeAdapter[bool] = TypeAdapter(bool)
_GENERATION: TypeAdapter[int] = TypeAdapter(Annotated[WholeNumber, Field(ge=1)])
_UNREADABLE = object()


def _read(adapter: TypeAdapter[Any], fields: Mapping[str, Any], key: str, default: Any) -> Any:
    if key not in fields:
        return default
    try:
        return adapter.validate_python(fields[key])
    except ValidationError:
        return _UNREADABLE


def machine_facts(name: str, fields: object) -> MachineFacts:
    """The facts of one machine read from its raw fields, each as the model reads it."""
    raw: Mapping[str, Any] = fields if isinstance(fields, Mapping) else {}
    read = {
        "role": _read(_ROLE, raw, "role", _UNREADABLE),
        "mac": _read(_MAC, raw, "mac", _UNREADABLE),
        "address": _read(_ADDRESS, raw, "address", None),
        "init": _read(_INIT, raw, "init", False),
        "generation": _read(_GENERATION, raw, "generation", 1),
    }
    known = {k: (None if v is _UNREADABLE else v) for k, v in read.items()}
    address = known["address"]
    return MachineFacts(
        name=name,
        role=known["role"],
        mac=known["mac"],
        ip=address.ip if address is not None else None,
        network=address.network if address is not None else None,
        init=known["init"],
        generation=known["generation"],
    )


def facts_of(machine: Machine) -> MachineFacts:
    return MachineFacts(
        name=machine.name,
        role=machine.role,
        mac=machine.mac,
        ip=machine.address.ip if machine.address is not None else None,
        network=machine.address.network if machine.address is not None else None,
        init=machine.init,
        generation=machine.generation,
    )


def rebuild_problems(
    machines: Sequence[MachineFacts], allow_cluster_rebuild: bool
) -> list[Problem]:
    if allow_cluster_rebuild or any(m.role is None for m in machines):
        return []
    controllers = [m for m in machines if m.is_controller]
    if len(controllers) != 1 or controllers[0].generation in (None, 1):
        return []
    return [
        Problem(
            machine_where(controllers[0].name),
            "generation",
            "reinstalling the only controller wipes etcd, the whole cluster's state; add "
            "controllers first, or set stubernetes:cluster allowClusterRebuild: true",
        )
    ]


def cross_machine_problems(machines: Sequence[MachineFacts]) -> list[Problem]:
    """Duplicate MACs and addresses, a controller, one init controller: each from what can be
    read, so a machine's other problems neither stop these checks nor cause their findings."""
    problems: list[Problem] = []
    first_with: dict[tuple[str, str], str] = {}
    for machine in machines:
        keys = [("mac", machine.mac), ("address", str(machine.ip) if machine.ip else None)]
        for field, value in keys:
            if value is None:
                continue
            owner = first_with.setdefault((field, value), machine.name)
            if owner != machine.name:
                problems.append(
                    Problem(
                        machine_where(machine.name),
                        field,
                        f"{value} is already used by machine '{owner}'",
                    )
                )
    roles_known = all(m.role is not None for m in machines)
    if machines and roles_known and not any(m.is_controller for m in machines):
        problems.append(
            Problem("stubernetes:machines", "role", "no machine is a controller; one is needed")
        )
    init_controller = None
    for machine in machines:
        if not machine.init or machine.role is None:
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


def api_endpoint_problems(cluster: Cluster, machines: Sequence[MachineFacts]) -> list[Problem]:
    """With several controllers, `apiEndpoint` must survive the loss of any one of them."""
    controllers = [m for m in machines if m.is_controller]
    if len(controllers) < 2:
        return []
    owner = next(
        (m for m in controllers if m.ip is not None and str(m.ip) == cluster.api_host), None
    )
    if owner is None:
        return []
    return [
        Problem(
            "stubernetes:cluster",
            "apiEndpoint",
            f"{cluster.api_host} is the address of controller '{owner.name}' itself: with "
            f"{len(controllers)} controllers, the API endpoint must outlive any one of them "
            f"(a reinstalled '{owner.name}' could join through nothing else); " + VIP_SUGGESTION,
        )
    ]


def cross_section_problems(raw_cluster: object, machines: Sequence[MachineFacts]) -> list[Problem]:
    """Checks between `stubernetes:cluster` and the machines, from what each can read."""
    return [*cluster_network_problems(raw_cluster, machines), *pool_problems(raw_cluster, machines)]
