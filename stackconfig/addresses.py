"""Addresses that cannot work: MACs no network card has, IPv4 addresses no host may use, and a
Service network too small or too large for what takes addresses from it.

Each check names the range and the document that reserves it, so a refused value says why.
"""

from __future__ import annotations

import ipaddress

# (range, what it is): the IPv4 ranges no machine can have as its own address or reach as a
# router or API endpoint. Checked in order: the first match names the address.
SPECIAL_USE = (
    (ipaddress.IPv4Network("0.0.0.0/32"), "the unspecified address (RFC 1122 §3.2.1.3)"),
    (
        ipaddress.IPv4Network("0.0.0.0/8"),
        "in 0.0.0.0/8, 'this network' (RFC 1122 §3.2.1.3), never a host's address",
    ),
    (ipaddress.IPv4Network("127.0.0.0/8"), "a loopback address (127.0.0.0/8, RFC 1122 §3.2.1.3)"),
    (ipaddress.IPv4Network("169.254.0.0/16"), "a link-local address (169.254.0.0/16, RFC 3927)"),
    (ipaddress.IPv4Network("224.0.0.0/4"), "a multicast address (224.0.0.0/4, RFC 5771)"),
    (ipaddress.IPv4Network("255.255.255.255/32"), "the limited broadcast address (RFC 919)"),
    (ipaddress.IPv4Network("240.0.0.0/4"), "a reserved address (240.0.0.0/4, RFC 1112 §4)"),
)


def special_use(address: ipaddress.IPv4Address) -> str | None:
    """What `address` is when no host may use it as its own (loopback, link-local, ...)."""
    return next((what for network, what in SPECIAL_USE if address in network), None)


def check_unicast_mac(mac: str) -> str:
    """A MAC a network card boots with: unicast and not all zeros. The least significant bit
    of the first octet is IEEE 802's I/G bit, set for group (multicast) addresses, which is
    what ff:ff:ff:ff:ff:ff, the broadcast address, is too (RFC 7042 §2.1, IEEE 802-2014 §8.2);
    no card sends from one, so Matchbox would never see this machine's boot."""
    if mac == "ff:ff:ff:ff:ff:ff":
        raise ValueError(f"{mac} is the broadcast address, not a network card's own address")
    if int(mac[:2], 16) & 1:
        raise ValueError(
            f"{mac} is a multicast address (the least significant bit of its first octet is "
            "set), not a network card's own address"
        )
    if mac == "00:00:00:00:00:00":
        raise ValueError(f"{mac} is all zeros, not a network card's own address")
    return mac


def host_address_problem(interface: ipaddress.IPv4Interface) -> str | None:
    """Why a machine cannot have `interface` as its static address, or None.

    The network address (host part all zeros) and the broadcast address (all ones) of a
    subnet belong to no host (RFC 919, RFC 922), except in a /31, where RFC 3021 makes both
    addresses hosts of a point-to-point link. A /32 has no subnet to speak of and is refused
    on its own (checks.network_problems)."""
    ip, network = interface.ip, interface.network
    what = special_use(ip)
    if what is not None:
        return f"{ip} is {what}; a machine needs a unicast LAN address"
    if network.prefixlen >= 31:
        return None
    if ip == network.network_address:
        return (
            f"{ip} is the network address of its subnet {network} (host part all zeros), "
            "which no host can use"
        )
    if ip == network.broadcast_address:
        return (
            f"{ip} is the broadcast address of its subnet {network} (host part all ones), "
            "which no host can use"
        )
    return None


def gateway_problem(
    interface: ipaddress.IPv4Interface, gateway: ipaddress.IPv4Address
) -> str | None:
    """Why `gateway` cannot be the default router of a machine at `interface`, or None."""
    network = interface.network
    if gateway not in network:
        return f"{gateway} is outside the machine's subnet {network}"
    if gateway == interface.ip:
        return f"{gateway} is the machine's own address; the gateway is another host (the router)"
    if network.prefixlen < 31 and gateway in (network.network_address, network.broadcast_address):
        which = "network" if gateway == network.network_address else "broadcast"
        return f"{gateway} is the {which} address of the subnet {network}, which no router can use"
    return None


# What takes fixed addresses from the Service network, by offset from its network address:
# - the `kubernetes` Service (the API): the first address, kubeadm's GetAPIServerVirtualIP
#   (kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go, GetIndexedIP(subnet, 1));
# - CoreDNS (`kube-dns`): the tenth, kubeadm's GetDNSIP (same file, GetIndexedIP(subnet, 10)),
#   which kubeadm also writes as every kubelet's clusterDNS;
# - the fleet-lock server: network + 15, `Cluster.fleetlock_ip`, which Zincati reaches before
#   DNS works.
SERVICE_ADDRESS_USERS = (
    (1, "the kubernetes API Service (kubeadm: the first address)"),
    (10, "CoreDNS (kubeadm: the tenth address)"),
    (15, "the fleet-lock server (stubernetes: network + 15)"),
)
# Kubernetes never allocates a Service the network or the broadcast address of an IPv4 Service
# range (kubernetes/kubernetes pkg/registry/core/service/ipallocator/bitmap.go, New: "Don't
# use the network's ".0" address", "Don't use the IPv4 network's broadcast address"), so the
# highest offset taken must stay below the broadcast address: 15 < size - 1, 32 addresses.
SERVICE_CIDR_LARGEST_PREFIX = 27
# kubeadm refuses a larger Service subnet: MaximumBitsForServiceSubnet = 20 (constants.go),
# checked by ValidateServiceSubnetSize (cmd/kubeadm/app/apis/kubeadm/validation/validation.go,
# "the same validation performed in the apiserver"): at most 2^20 addresses, a /12.
SERVICE_CIDR_SMALLEST_PREFIX = 12


def check_service_cidr(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if network.prefixlen > SERVICE_CIDR_LARGEST_PREFIX:
        takers = "; ".join(
            f"{what} takes {network.network_address + offset}"
            for offset, what in SERVICE_ADDRESS_USERS
        )
        raise ValueError(
            f"{network} is too small: {takers}; Kubernetes never gives a Service the network "
            f"or broadcast address ({network.broadcast_address}), so the Service network "
            f"needs at least 32 addresses, a /{SERVICE_CIDR_LARGEST_PREFIX} or larger"
        )
    if network.prefixlen < SERVICE_CIDR_SMALLEST_PREFIX:
        raise ValueError(
            f"{network} is too large: kubeadm refuses a Service network larger than "
            f"/{SERVICE_CIDR_SMALLEST_PREFIX} (2^20 addresses); 10.96.0.0/12 is its default"
        )
    return network
