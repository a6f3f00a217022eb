"""`stubernetes:vip`: a virtual IP on the controllers' LAN that keepalived moves to a healthy
controller, so that `apiEndpoint` outlives any one of them with no machine of the user's own.

keepalived (VRRP, RFC 5798) moves an address only between hosts on one layer-2 segment:
"all the hosts between which the virtual IP is negotiated need to be in the same IP subnet"
(kubernetes/kubeadm `docs/ha-considerations.md`, "keepalived and haproxy"). The address is
the cluster's, never a machine's own, and never one the cluster routes elsewhere (podCidr to
flannel, serviceCidr to kube-proxy). Its router id (VRRP's virtual router id, 1-255) must be
unique among the VRRP routers of that LAN.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

from stackconfig.problems import Problem
from stackconfig.strict_model import StrictModel, WholeNumber

if TYPE_CHECKING:
    from stackconfig.checks import MachineFacts
    from stackconfig.model import Cluster

VIP = "stubernetes:vip"
# A Linux interface name: at most IFNAMSIZ-1 = 15 bytes, no '/', whitespace or ':'
# (linux `net/core/dev.c` dev_valid_name).
INTERFACE_NAME = re.compile(r"^[^/\s:]{1,15}$")


def _check_interface(value: str) -> str:
    if value in (".", "..") or not INTERFACE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a Linux interface name (1 to 15 characters, no '/', ':' or "
            "whitespace), e.g. eno1"
        )
    return value


class Vip(StrictModel):
    """The API endpoint's virtual IP, held by one healthy controller at a time."""

    address: ipaddress.IPv4Address
    """The virtual IP: free, inside the controllers' subnet; `apiEndpoint` is `<address>:6443`."""
    interface: Annotated[str, AfterValidator(_check_interface)]
    """The controllers' interface on that subnet, which carries the address (e.g. eno1)."""
    router_id: Annotated[WholeNumber, Field(ge=1, le=255)]
    """VRRP's virtual router id, 1-255: the same on every controller, unique on the LAN."""


def vip_problems(
    vip: Vip, cluster: Cluster | None, machines: Sequence[MachineFacts]
) -> list[Problem]:
    """The VIP against the machines' addresses and subnets and the cluster's ranges and
    endpoint (`cluster` None when it is itself refused: those checks wait)."""
    problems = []
    address = vip.address
    for machine in machines:
        if machine.ip == address:
            problems.append(
                Problem(VIP, "address", f"{address} is machine '{machine.name}''s own address")
            )
    # One line per subnet, naming its controllers.
    subnets: dict[ipaddress.IPv4Network, list[str]] = {}
    for machine in machines:
        if machine.is_controller and machine.network is not None:
            subnets.setdefault(machine.network, []).append(f"'{machine.name}'")
    for network, names in subnets.items():
        if address not in network:
            problems.append(
                Problem(
                    VIP,
                    "address",
                    f"{address} is outside the subnet {network} of controllers "
                    f"{', '.join(names)}: VRRP moves an address only between hosts of one "
                    "subnet",
                )
            )
        elif address in (network.network_address, network.broadcast_address):
            problems.append(
                Problem(
                    VIP,
                    "address",
                    f"{address} is the network or broadcast address of {network}",
                )
            )
    if cluster is None:
        return problems
    for field, cidr in (("podCidr", cluster.pod_cidr), ("serviceCidr", cluster.service_cidr)):
        if address in cidr:
            problems.append(
                Problem(
                    VIP,
                    "address",
                    f"{address} lies inside {field} {cidr}, which the nodes route to the "
                    "cluster's own network",
                )
            )
    problems.extend(_endpoint_problems(vip, cluster))
    return problems


def _endpoint_problems(vip: Vip, cluster: Cluster) -> list[Problem]:
    """`apiEndpoint` is the VIP (or a DNS name, which the config cannot resolve)."""
    try:
        host = ipaddress.ip_address(cluster.api_host)
    except ValueError:
        return []
    if host == vip.address:
        return []
    return [
        Problem(
            "stubernetes:cluster",
            "apiEndpoint",
            f"{cluster.api_host} is not the VIP {vip.address} ({VIP}): the nodes would not "
            f"reach the API server through it; set apiEndpoint to {vip.address}:"
            f"{cluster.api_port}",
        )
    ]


SUGGESTION = (
    f"give the controllers a virtual IP that moves to a healthy one ({VIP}: address, "
    "interface, routerId) and set apiEndpoint to it, or use a DNS name or load balancer over "
    "all of them"
)
"""What the check on a controller's own apiEndpoint suggests."""
