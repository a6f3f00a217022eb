"""The cluster's own networks against each other and against the machines' LAN.

Kubernetes wants three disjoint ranges: the pods' (kubeadm's docs, "Creating a cluster with
kubeadm": "Take care that your Pod network must not overlap with any of the host networks"),
the Services' (kube-apiserver --service-cluster-ip-range: "This must not overlap with any IP
ranges assigned to nodes or pods") and the machines'. flannel routes podCidr to its overlay on
every node and kube-proxy takes over traffic to serviceCidr, so a machine inside either is
unreachable from the nodes, and pods and machines sharing addresses reach the wrong one.

Each range is read from the raw stack as the model reads it, None when it is unreadable (that
problem is reported on its own), so a bad field neither hides these checks nor feeds them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from stackconfig.model import ServiceCidr
from stackconfig.problems import Problem, machine_where

if TYPE_CHECKING:
    from stackconfig.checks import MachineFacts

CLUSTER = "stubernetes:cluster"
_POD_CIDR: TypeAdapter[ipaddress.IPv4Network] = TypeAdapter(ipaddress.IPv4Network)
_SERVICE_CIDR: TypeAdapter[ipaddress.IPv4Network] = TypeAdapter(ServiceCidr)
WHY = {
    "podCidr": "pods and machines would share addresses, and flannel routes podCidr to the "
    "pod network on every node",
    "serviceCidr": "kube-proxy takes traffic to serviceCidr on every node for Services",
}


def _read(adapter: TypeAdapter[ipaddress.IPv4Network], raw: object, key: str) -> Any:
    if not isinstance(raw, Mapping) or key not in raw:
        return None
    try:
        return adapter.validate_python(raw[key])
    except ValidationError:
        return None


def _names(machines: Sequence[MachineFacts]) -> str:
    return ", ".join(f"'{m.name}'" for m in machines)


def _lan_problems(
    field: str, cidr: ipaddress.IPv4Network, machines: Sequence[MachineFacts]
) -> list[Problem]:
    """One range against the machines' static subnets. When it overlaps every static machine
    the range is what is wrong: one line on it. When it overlaps some, those machines are: a
    line on each one's address."""
    static = [m for m in machines if m.network is not None]
    hit = [m for m in static if m.network is not None and m.network.overlaps(cidr)]
    if not hit:
        return []
    if len(hit) == len(static):
        lans = sorted({m.network for m in hit if m.network is not None})
        return [
            Problem(
                CLUSTER,
                field,
                f"{cidr} overlaps the machines' network {', '.join(map(str, lans))} (machines "
                f"{_names(hit)}): {WHY[field]}; pick a private range no machine uses",
            )
        ]
    problems = []
    for machine in hit:
        if machine.ip is not None and machine.ip in cidr:
            what = f"{machine.ip} lies inside {field} {cidr} ({CLUSTER})"
        else:
            what = f"its subnet {machine.network} overlaps {field} {cidr} ({CLUSTER})"
        problems.append(
            Problem(
                machine_where(machine.name),
                "address",
                f"{what}: {WHY[field]}, so the nodes could not reach this machine; give it an "
                "address outside podCidr and serviceCidr",
            )
        )
    return problems


def cluster_network_problems(
    raw_cluster: object, machines: Sequence[MachineFacts]
) -> list[Problem]:
    pod = _read(_POD_CIDR, raw_cluster, "podCidr")
    service = _read(_SERVICE_CIDR, raw_cluster, "serviceCidr")
    problems = []
    if pod is not None and service is not None and pod.overlaps(service):
        problems.append(
            Problem(
                CLUSTER,
                "serviceCidr",
                f"{service} overlaps podCidr {pod}: a Service address could also be a pod's, "
                "and kube-proxy would take that pod's traffic; give them disjoint ranges (the "
                "defaults are 10.96.0.0/12 and 10.244.0.0/16)",
            )
        )
    for field, cidr in (("podCidr", pod), ("serviceCidr", service)):
        if cidr is not None:
            problems.extend(_lan_problems(field, cidr, machines))
    return problems
