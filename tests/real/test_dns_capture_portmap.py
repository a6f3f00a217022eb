"""Why the household DNS left the nodes' port 53, shown with the real portmap rules.

A node runs containerd, whose CNI network is the flannel conflist of charts/stubernetes-core:
flannel delegates the pod's interface to the reference `bridge` plugin (with `host-local`
addresses) and chains `portmap`, which serves a pod's hostPort (containerd passes the pod's
port mappings as the `portMappings` capability). These tests run the pinned plugins
(containernetworking/plugins v1.9.1, built by scripts/tools cni-plugins) in a network namespace
that stands in for the node: the flannel plugin itself is not run (its delegate is the bridge
configuration it writes, flannel-io/cni-plugin flannel_linux.go), and the pod is a second
namespace with a UDP server in it. portmap takes the iptables backend, as on Fedora CoreOS,
which ships iptables (nf_tables); Debian's iptables package provides it here.

- With the chart's former hostPort 53, portmap's OUTPUT rule (--dst-type LOCAL, portmap
  README "Rules") DNATs the node's own lookup of systemd-resolved's 127.0.0.53 into the pod.
- With no hostPort, as the household DNS now runs (its own LoadBalancer address), the same
  lookup reaches the node's resolver, and the pod still answers on its pod address.

Not tested here: the LoadBalancer address itself, which kube-proxy maps to the pod and MetalLB's
speaker announces on the LAN: tests/real/test_lan_load_balancer.py runs both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_plane.netns import NetworkNamespace, start_network_namespace
from real_process import RealProcess, start
from tool_cache import require_tool

pytestmark = pytest.mark.real

RESOLVED = "127.0.0.53"  # systemd-resolved's stub listener on the node
POD_SUBNET = "10.244.1.0/24"  # the node's share of podCidr, as flannel writes it to subnet.env
BRIDGE = "cni0"  # flannel's bridge (flannel-io/cni-plugin: delegate "name" cbr0, bridge cni0)
# A UDP server that answers every datagram with its own name: which side answered is the test.
ANSWERER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    data, peer = s.recvfrom(512)
    s.sendto(sys.argv[2].encode(), peer)
"""
ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"query", (sys.argv[1], 53))
print(s.recvfrom(512)[0].decode())
"""


def plugin(name: str) -> Path:
    return require_tool("cni-plugins", name)


def bridge_config(state: Path) -> dict[str, Any]:
    """What flannel delegates to `bridge` (flannel-io/cni-plugin flannel_linux.go
    doCmdAdd: isGateway, ipMasq false with flannel's own masquerade, host-local on the node's
    subnet), with the conflist's hairpinMode and isDefaultGateway (charts/stubernetes-core
    templates/flannel-configmap.yaml)."""
    return {
        "cniVersion": "0.3.1",
        "name": "cbr0",
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "isDefaultGateway": True,
        "hairpinMode": True,
        "ipMasq": False,
        # host-local's leases in the test's own directory (default /var/lib/cni/networks).
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_SUBNET}]],
            "dataDir": str(state),
        },
    }


def portmap_config(prev: dict[str, Any], mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """The conflist's portmap entry ({"type": "portmap", "capabilities": {"portMappings":
    true}}), as libcni hands it over: the runtime's mappings in runtimeConfig, the bridge's
    result as prevResult."""
    return {
        "cniVersion": "0.3.1",
        "name": "cbr0",
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "runtimeConfig": {"portMappings": mappings},
        "prevResult": prev,
    }


def run_plugin(
    node: NetworkNamespace, name: str, config: dict[str, Any], pod: NetworkNamespace
) -> dict[str, Any]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "household-dns-test",
        "CNI_NETNS": pod.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(plugin("bridge").parent),
    }
    done = subprocess.run(
        node.wrap([str(plugin(name))]),
        input=json.dumps(config),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def answerer(ns: NetworkNamespace, address: str, name: str, logs: Path) -> RealProcess:
    def ready() -> bool:
        probe = ns.run(["ss", "-Hlun", "sport = :53"])
        return address in probe.stdout or "*:53" in probe.stdout

    return start(
        f"answerer-{name}",
        ns.wrap(["python3", "-c", ANSWERER, address, name]),
        logs,
        ready,
        timeout_seconds=20,
    )


def ask(ns: NetworkNamespace, address: str) -> str:
    done = ns.run(["python3", "-c", ASK, address], timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Node:
    """A node stand-in namespace with systemd-resolved's stub address answered, and one pod
    wired by the real bridge, host-local and portmap plugins."""

    def __init__(self, logs: Path, mappings: list[dict[str, Any]]) -> None:
        self.processes: list[RealProcess] = []
        # As on a node, lo carries 127.0.0.1/8 alone: systemd-resolved binds 127.0.0.53 inside
        # it, and a lookup leaves from 127.0.0.1 (the local route's source).
        self.node = start_network_namespace([], logs / "node")
        self.pod = start_network_namespace([], logs / "pod")
        self.processes += [self.node.holder, self.pod.holder]
        result = run_plugin(self.node, "bridge", bridge_config(logs / "ipam"), self.pod)
        self.pod_ip = result["ips"][0]["address"].split("/")[0]
        run_plugin(self.node, "portmap", portmap_config(result, mappings), self.pod)
        self.processes.append(answerer(self.node, RESOLVED, "systemd-resolved", logs))
        self.processes.append(answerer(self.pod, "0.0.0.0", "household-dns", logs))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture(autouse=True)
def tools() -> None:
    for binary in ("ip", "ss", "iptables", "nsenter", "unshare"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is missing: scripts/test installs it (TEST_APT_PACKAGES)")


@pytest.fixture
def node_with_host_port(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path, [{"hostPort": 53, "containerPort": 53, "protocol": "udp"}])
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def node_without_host_port(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path, [])
    try:
        yield node
    finally:
        node.stop()


def test_a_host_port_53_captures_the_nodes_own_lookups(node_with_host_port: Node) -> None:
    node = node_with_host_port
    rules = node.node.run(["iptables", "-t", "nat", "-S"]).stdout
    assert "CNI-HOSTPORT-DNAT" in rules and "--dst-type LOCAL" in rules, rules
    # The node asks its resolver, and the pod answers: every image pull, Zincati's and the
    # kubelet's lookups would hang on the cluster.
    assert ask(node.node, RESOLVED) == "household-dns"


def test_without_a_host_port_the_node_keeps_its_resolver(node_without_host_port: Node) -> None:
    node = node_without_host_port
    assert ask(node.node, RESOLVED) == "systemd-resolved"
    # The pod still answers where kube-proxy sends its LoadBalancer address: its pod address.
    assert ask(node.node, node.pod_ip) == "household-dns"
    # No rule of portmap's maps anything: the chains exist, empty of DNATs.
    rules = node.node.run(["iptables", "-t", "nat", "-S"]).stdout
    assert "--to-destination" not in rules, rules


def test_the_answer_of_the_pod_is_its_own(node_without_host_port: Node) -> None:
    # The same server, asked from the pod's own namespace: a check that "household-dns" in
    # the answers above can only come from the pod.
    assert ask(node_without_host_port.pod, "127.0.0.1") == "household-dns"
