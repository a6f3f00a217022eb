"""The machines' LAN for the real node guest, inside the control plane's network namespace.

The tests' control plane runs in a network namespace whose loopback carries the stack's own
addresses (tests/real/control_plane/netns.py). A real node must reach them at those addresses,
which QEMU's user network cannot give it (it shows the host as 10.0.2.2 only, an address neither
the machines' configs nor the API server's certificate name). So the namespace gets the LAN a
rack has: a bridge carrying the stack's gateway address, one tap device per guest on it, a DHCP
server that answers PXE as the README's dnsmasq example does (the machine's address by MAC, the
iPXE boot script's URL as the boot file), and the real Matchbox listening on the gateway
address. Everything stays inside the namespace: nothing touches the host's network.

The kernel answers ARP on the bridge for the addresses on the namespace's loopback (arp_ignore
0, the default: Documentation/networking/ip-sysctl.rst), so the guest reaches the init
controller's address and the API endpoint as it would reach the real controller on its LAN.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from control_plane.netns import NetworkNamespace
from matchbox_grpc import matchbox_argv
from real_process import RealProcess, start

BRIDGE = "lan0"
MATCHBOX_PORT = 8080


@dataclass(frozen=True)
class LanHost:
    name: str
    mac: str
    address: str  # the address the DHCP server gives this MAC (its stack address)

    @property
    def tap(self) -> str:
        return f"tap-{self.name}"[:15]  # IFNAMSIZ - 1


@dataclass
class NodeLan:
    namespace: NetworkNamespace
    gateway: ipaddress.IPv4Interface
    hosts: tuple[LanHost, ...]
    processes: list[RealProcess] = field(default_factory=list)

    @property
    def matchbox_url(self) -> str:
        return f"http://{self.gateway.ip}:{MATCHBOX_PORT}"

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise RuntimeError("dnsmasq not found (Debian package dnsmasq-base)")
    return found


def _ip(namespace: NetworkNamespace, *args: str) -> None:
    done = namespace.run(["ip", *args])
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def start_node_lan(
    namespace: NetworkNamespace,
    gateway: ipaddress.IPv4Interface,
    hosts: Sequence[LanHost],
    matchbox_data: Path,
    matchbox_assets: Path,
    logs: Path,
) -> NodeLan:
    """The bridge, a tap per host, the DHCP server and the real Matchbox, in `namespace`."""
    lan = NodeLan(namespace, gateway, tuple(hosts))
    _ip(namespace, "link", "add", BRIDGE, "type", "bridge")
    _ip(namespace, "address", "add", str(gateway), "dev", BRIDGE)
    _ip(namespace, "link", "set", BRIDGE, "up")
    for host in hosts:
        _ip(namespace, "tuntap", "add", "dev", host.tap, "mode", "tap")
        _ip(namespace, "link", "set", host.tap, "master", BRIDGE)
        _ip(namespace, "link", "set", host.tap, "up")
    try:
        lan.processes.append(_start_matchbox(lan, matchbox_data, matchbox_assets, logs))
        lan.processes.append(_start_dhcp(lan, logs))
    except BaseException:
        lan.stop()
        raise
    return lan


def _start_matchbox(lan: NodeLan, data: Path, assets: Path, logs: Path) -> RealProcess:
    argv = matchbox_argv(data, assets, f"{lan.gateway.ip}:{MATCHBOX_PORT}")

    def ready() -> bool:
        return lan.namespace.port_open(str(lan.gateway.ip), MATCHBOX_PORT)

    return start("matchbox-node-lan", lan.namespace.wrap(argv), logs, ready, timeout_seconds=30)


def _start_dhcp(lan: NodeLan, logs: Path) -> RealProcess:
    """dnsmasq as DHCP server only (`--port=0`: no DNS), answering each known MAC with its
    address and every client with the iPXE boot script's URL as its boot file (iPXE takes a URL
    there: ipxe.org/cfg/filename); the same settings as the README's dnsmasq example."""
    network = lan.gateway.network
    argv = [
        dnsmasq_binary(),
        "--keep-in-foreground",
        "--log-facility=-",
        "--log-dhcp",
        "--conf-file=/dev/null",
        "--port=0",
        "--user=root",
        f"--interface={BRIDGE}",
        "--bind-interfaces",
        f"--pid-file={logs / 'dnsmasq.pid'}",
        f"--dhcp-leasefile={logs / 'dnsmasq.leases'}",
        f"--dhcp-range={network.network_address},static,{network.netmask}",
        f"--dhcp-option=option:router,{lan.gateway.ip}",
        f"--dhcp-boot={lan.matchbox_url}/boot.ipxe",
        *(f"--dhcp-host={h.mac},{h.address},{h.name}" for h in lan.hosts),
    ]

    def ready() -> bool:
        listening = lan.namespace.run(["ss", "-Hlun", "sport = :67"])
        return bool(listening.stdout.strip())

    return start("dnsmasq-node-lan", lan.namespace.wrap(argv), logs, ready, timeout_seconds=20)
