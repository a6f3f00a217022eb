"""The LAN addresses the cluster hands to LoadBalancer Services (`cluster.loadBalancerPool`).

MetalLB in layer-2 mode answers ARP for a Service's address from one node (metallb.io,
"Concepts: Layer 2 mode"), so the pool must lie on the machines' own subnet (one of them,
where machines sit on several), and no other host may hold or be handed one of its addresses:
not a machine, not the DHCP server's clients (the `dhcpRange` the stack gives; docs/network.md's
dnsmasq example hands out .100 to .200), not the API endpoint's address (the controllers' VIP,
when there is one). podCidr and serviceCidr are
routed inside every node (flannel, kube-proxy), so an address there never reaches the LAN.

The first address of the pool is the household DNS server's, the second the default Gateway's
(stackconfig/releases.py); the rest are for the cluster's other LoadBalancer Services.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter, ValidationError

from stackconfig.problems import Problem

if TYPE_CHECKING:
    from stackconfig.checks import MachineFacts

CLUSTER = "stubernetes:cluster"
POOL_FIELD = "loadBalancerPool"
DHCP_FIELD = "dhcpRange"
# The household DNS and the default Gateway each take one address.
FIXED_ADDRESSES = 2


@dataclass(frozen=True)
class AddressRange:
    """An inclusive range of IPv4 addresses, written `first-last` or as a CIDR."""

    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, address: object) -> bool:
        return isinstance(address, ipaddress.IPv4Address) and self.first <= address <= self.last

    def overlaps(self, other: AddressRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def within(self, network: ipaddress.IPv4Network) -> bool:
        # Neither the network's own address nor its broadcast address is a host's.
        hosts = AddressRange(network.network_address + 1, network.broadcast_address - 1)
        return hosts.first <= self.first and self.last <= hosts.last

    def address(self, index: int) -> ipaddress.IPv4Address:
        return self.first + index

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def parse_range(value: object) -> AddressRange:
    if isinstance(value, AddressRange):
        return value
    if not isinstance(value, str):
        raise ValueError(
            "expected a range 'first-last' or a CIDR, e.g. 192.168.10.240-192.168.10.250"
        )
    text = value.strip()
    try:
        if "/" in text:
            network = ipaddress.IPv4Network(text, strict=True)
            return AddressRange(network.network_address, network.broadcast_address)
        first_text, dash, last_text = text.partition("-")
        first = ipaddress.IPv4Address(first_text.strip())
        last = ipaddress.IPv4Address(last_text.strip()) if dash else first
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not an IPv4 range 'first-last' or a CIDR ({error})"
        ) from None
    if last < first:
        raise ValueError(f"{value!r}: the range ends before it starts")
    return AddressRange(first, last)


LanRange = Annotated[
    AddressRange, BeforeValidator(parse_range), PlainSerializer(str, return_type=str)
]
_RANGE: TypeAdapter[AddressRange] = TypeAdapter(LanRange)
_NETWORK: TypeAdapter[ipaddress.IPv4Network] = TypeAdapter(ipaddress.IPv4Network)


def _read(raw: Mapping[str, Any], key: str, adapter: TypeAdapter[Any]) -> Any:
    if key not in raw:
        return None
    try:
        return adapter.validate_python(raw[key])
    except ValidationError:
        return None  # Refused by the model, and reported on its own.


def _api_host(raw: Mapping[str, Any]) -> ipaddress.IPv4Address | None:
    endpoint = raw.get("apiEndpoint")
    if not isinstance(endpoint, str):
        return None
    try:
        return ipaddress.IPv4Address(endpoint.rpartition(":")[0])
    except ValueError:
        return None  # A name, or refused on its own.


def pool_problems(raw_cluster: object, machines: Sequence[MachineFacts]) -> list[Problem]:
    """The pool against the machines, the DHCP range, the cluster's networks and the API
    endpoint, each read from the raw stack (an unreadable field is reported on its own)."""
    if not isinstance(raw_cluster, Mapping):
        return []
    pool = _read(raw_cluster, POOL_FIELD, _RANGE)
    if pool is None:
        return []

    def problem(message: str) -> Problem:
        return Problem(CLUSTER, POOL_FIELD, f"{pool}: {message}")

    problems = []
    if pool.size < FIXED_ADDRESSES:
        problems.append(
            problem(
                f"needs at least {FIXED_ADDRESSES} addresses: the first is the household DNS "
                "server's, the second the default Gateway's"
            )
        )
    subnets = sorted({m.network for m in machines if m.network is not None}, key=str)
    if subnets and not any(pool.within(subnet) for subnet in subnets):
        problems.append(
            problem(
                f"outside the machines' subnet ({', '.join(map(str, subnets))}): MetalLB "
                "announces its addresses with ARP, which only reaches the hosts of one subnet"
            )
        )
    for machine in machines:
        if machine.ip is not None and machine.ip in pool:
            problems.append(
                problem(f"holds the address of machine '{machine.name}' ({machine.ip})")
            )
    dhcp = _read(raw_cluster, DHCP_FIELD, _RANGE)
    if dhcp is not None and pool.overlaps(dhcp):
        problems.append(
            problem(f"overlaps dhcpRange {dhcp}: the DHCP server would hand its addresses out")
        )
    for field in ("podCidr", "serviceCidr"):
        network = _read(raw_cluster, field, _NETWORK)
        if network is not None and pool.overlaps(
            AddressRange(network.network_address, network.broadcast_address)
        ):
            problems.append(
                problem(f"overlaps {field} {network}, which every node routes inside the cluster")
            )
    api = _api_host(raw_cluster)
    machine_ips = {machine.ip for machine in machines}
    # The endpoint at a machine's own address is that machine's line above.
    if api is not None and api in pool and api not in machine_ips:
        problems.append(problem(f"holds the API endpoint's address {api}"))
    return problems
