"""The household DNS's LoadBalancer address, announced on the LAN by the real MetalLB (layer 2)
and carried to the pod by the real kube-proxy, in network namespaces on this machine.

The tests' real control plane (control_plane.cluster) runs from the program's own output for
the example stack. On it: MetalLB's CRDs from its chart at the program's pin, the IPAddressPool
and L2Advertisement of the `lan` release and the household DNS Service of the `household-dns`
release, each rendered by the real helm as the program registers it, as
test_system_releases_real renders every release. Then, built by scripts/tools at the pinned
versions (MetalLB v0.16.2, the chart's; kube-proxy at the control plane's Kubernetes release):

- MetalLB's controller (in the control plane's namespace: it only talks to the API server)
  gives the Service the pool address the program asks for with its annotation;
- kube-proxy (iptables mode) and MetalLB's speaker run in a namespace that is the worker `w1`,
  its `eth0` on a LAN bridge that also carries the controller `c1` (the API endpoint) and a
  household client.

The client then asks ARP for the address, and sends a query over UDP and over TCP to it on
port 53. Only the speaker can answer the ARP request: kube-proxy's iptables mode puts the address
on no interface (unlike its IPVS mode, for which MetalLB asks for strictARP: metallb.io
"Installation"); the speaker's ARP responder replies with the interface's own MAC for an address
it announces (internal/layer2/arp.go processRequest, after speaker/layer2_controller.go
ShouldAnnounce elects this node). kube-proxy captures the address in KUBE-SERVICES and DNATs it
to the endpoint (pkg/proxy/iptables/proxier.go, "Capture load-balancer ingress").

Stand-ins, as no kubelet runs (the control plane's controller-manager does): the Node object `w1`
(created with its status, as a kubelet registers it); the pod, a namespace joined to the node by a
veth pair (flannel puts its cni0 bridge between them: tests/real/test_dns_capture_portmap.py) with
a small UDP and TCP answerer on port 53 where CoreDNS would be; the pod's EndpointSlice, written
by hand as the EndpointSlice controller would from a ready pod (a slice with a `managed-by` of its
own, which that controller leaves alone: kubernetes.io/docs "EndpointSlices", Management); the
Pod objects the two MetalLB processes are told they are (internal/k8s/k8s.go New reads its own
pod for owner references); the speaker's memberlist key, a file where the chart mounts the
Secret that MetalLB's controller generates. Every process uses the admin kubeconfig: the chart's
RBAC is not what is tested here (test_system_releases_real dry-runs it).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.cluster import ControlPlane, running_control_plane
from control_plane.netns import NetworkNamespace, start_network_namespace
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm
from real_process import RealProcess, start
from test_system_releases_real import helm_template
from tool_cache import require_tool

from stackconfig.releases import (
    METALLB_ADDRESS_ANNOTATION,
    METALLB_NAMESPACE,
    household_dns_address,
)

pytestmark = pytest.mark.real

NODE = "w1"  # a worker of the example stack
LAN_IF = "eth0"
POD_IF = "veth-dns"  # the node's end of the pod's veth pair
# systemd-resolved's stub listener on a node (tests/real/test_dns_capture_portmap.py).
RESOLVED = "127.0.0.53"
SYSCTL_FILE = "/etc/sysctl.d/90-stubernetes.conf"
# w1's share of podCidr (kubeadm's controller-manager gives each node a /24), as in
# tests/real/test_dns_capture_portmap.py, and the household DNS pod's address in it.
POD_SUBNET = "10.244.1.0/24"
POD_IP = "10.244.1.2"
# A UDP and TCP server on port 53 that answers every query with its own name; over TCP each
# message has a two-byte length in front, as DNS frames it (RFC 1035 4.2.2).
ANSWERER = """
import socket, sys, threading
address, name = sys.argv[1], sys.argv[2].encode()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 53))
    while True:
        _, peer = s.recvfrom(512)
        s.sendto(name, peer)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((address, 53))
t.listen()
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept()
    with c:
        c.recv(int.from_bytes(c.recv(2, socket.MSG_WAITALL), "big"), socket.MSG_WAITALL)
        c.sendall(len(name).to_bytes(2, "big") + name)
"""
ASK = """
import socket, sys
address, transport = sys.argv[1], sys.argv[2]
if transport == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"query", (address, 53))
    print(s.recvfrom(512)[0].decode())
else:
    s = socket.create_connection((address, 53), timeout=2)
    s.sendall(len(b"query").to_bytes(2, "big") + b"query")
    length = int.from_bytes(s.recv(2, socket.MSG_WAITALL), "big")
    print(s.recv(length, socket.MSG_WAITALL).decode())
"""
Manifest = dict[str, Any]
Manifests = dict[str, list[Manifest]]


def _run(ns: NetworkNamespace, *argv: str) -> str:
    done = ns.run(list(argv))
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


def ask(ns: NetworkNamespace, address: str, transport: str) -> str:
    """The answer to a query from `ns`, or "" when none came within 2 s."""
    done = ns.run(["python3", "-c", ASK, address, transport], timeout=20)
    return done.stdout.strip() if done.returncode == 0 else ""


def arp_reply(ns: NetworkNamespace, device: str, address: str) -> str:
    """The MAC address that answers one ARP request for `address` (iputils arping), or ""."""
    done = ns.run(["arping", "-c", "1", "-w", "1", "-I", device, address], timeout=10)
    found = re.search(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", done.stdout)
    return found.group(1).lower() if done.returncode == 0 and found else ""


def wait_for(what: str, condition: Callable[[], bool], seconds: float, logs: str = "") -> float:
    """Poll `condition` until it holds; the seconds it took."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > seconds:
            raise AssertionError(f"not within {seconds} s: {what}\n{logs}")
        time.sleep(0.2)
    return time.monotonic() - began


def veth(outer: NetworkNamespace, name: str, inner: NetworkNamespace, inner_name: str) -> None:
    """A veth pair: `name` in `outer`, `inner_name` in `inner`, both up."""
    pid = str(inner.holder.process.pid)
    _run(outer, "ip", "link", "add", name, "type", "veth", "peer", "name", inner_name, "netns", pid)
    _run(outer, "ip", "link", "set", name, "up")
    _run(inner, "ip", "link", "set", inner_name, "up")


@dataclass
class Lan:
    plane: ControlPlane
    lan: NetworkNamespace  # the bridge, with a household client's address on it
    node: NetworkNamespace  # the worker w1
    pod: NetworkNamespace  # the household DNS pod
    service: Manifest
    expected_address: str
    node_address: str
    node_mac: str
    ingress: list[dict[str, Any]] = field(default_factory=list)
    arp_before_speaker: str = ""
    arp_answer: str = ""
    nat_rules: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    processes: list[RealProcess] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(p.log_tail(40) for p in self.processes)

    @property
    def kubeconfig_env(self) -> dict[str, str]:
        # controller-runtime's GetConfig reads KUBECONFIG (both MetalLB binaries call it:
        # internal/k8s/k8s.go New).
        return {"KUBECONFIG": str(self.plane.admin_kubeconfig)}


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(for_built_kubeadm(example_values))


def only(objects: list[Manifest], *kinds: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] in kinds]


def endpoint_slice(service: Manifest, workload: Manifest, pod_ip: str) -> Manifest:
    """The slice the EndpointSlice controller writes for one ready pod of `workload` on the
    node: the Service's ports by name, each target port resolved to the container's number
    (kubernetes pkg/controller/endpointslice reconciler, podutil.FindPort)."""
    container_ports = {
        p["name"]: p["containerPort"]
        for c in workload["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    ports = []
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        number = container_ports[target] if isinstance(target, str) else int(target)
        ports.append({"name": port["name"], "protocol": port["protocol"], "port": number})
    name = service["metadata"]["name"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-stand-in",
            "namespace": service["metadata"]["namespace"],
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "stubernetes-tests",
            },
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [{"addresses": [pod_ip], "conditions": {"ready": True}, "nodeName": NODE}],
    }


def stand_in_pod(name: str) -> Manifest:
    """A Pod object for a MetalLB process to find as its own; nothing runs it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": METALLB_NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "automountServiceAccountToken": False,
            "containers": [{"name": name, "image": "quay.io/metallb/speaker:v0.16.2"}],
        },
    }


def node_object(address: str, pod_subnet: str) -> Manifest:
    """The Node as w1's kubelet registers it: its status set on create (kubernetes
    pkg/registry/core/node/strategy.go: "Nodes allow *all* fields, including status, to be set
    on create"), its pod subnet as the controller-manager's range allocator would give it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        "spec": {"podCIDR": pod_subnet, "podCIDRs": [pod_subnet]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": NODE},
            ]
        },
    }


def wire(
    plane: ControlPlane, output: ProgramOutput, service: Manifest, logs: Path, stack: ExitStack
) -> Lan:
    """The LAN bridge with c1 (the control plane's namespace), w1 and a client on it; w1's pod
    and w1's Node object. `stack` stops the namespaces, and every process of the Lan's."""
    cluster = output.stack.cluster
    machines = {m.name: m for m in output.stack.machines}
    c1, w1 = machines[output.init_controller.name].address, machines[NODE].address
    assert c1 is not None and w1 is not None
    prefix = w1.network.prefixlen
    # A household device with an address from the DHCP server's range.
    assert cluster.dhcp_range is not None
    client = cluster.dhcp_range.address(50)
    pod_subnet = ipaddress.IPv4Network(POD_SUBNET)
    assert pod_subnet.subnet_of(cluster.pod_cidr)
    gateway = str(pod_subnet.network_address + 1)

    lan = start_network_namespace([], logs / "lan")
    stack.callback(lan.stop)
    node = start_network_namespace([], logs / NODE)
    stack.callback(node.stop)
    pod = start_network_namespace([], logs / "pod")
    stack.callback(pod.stop)
    _run(lan, "ip", "link", "add", "br0", "type", "bridge")
    _run(lan, "ip", "address", "add", f"{client}/{prefix}", "dev", "br0")
    _run(lan, "ip", "link", "set", "br0", "up")
    for name, ns, address in (("c1", plane.namespace, c1), (NODE, node, w1)):
        veth(lan, f"port-{name}", ns, LAN_IF)
        _run(lan, "ip", "link", "set", f"port-{name}", "master", "br0")
        # c1's loopback already carries its address (control_plane.netns); eth0 adds the LAN.
        _run(ns, "ip", "address", "add", f"{address.ip}/{prefix}", "dev", LAN_IF)
    veth(node, POD_IF, pod, "eth0")
    _run(node, "ip", "address", "add", f"{gateway}/24", "dev", POD_IF)
    _run(pod, "ip", "address", "add", f"{POD_IP}/24", "dev", "eth0")
    _run(pod, "ip", "route", "add", "default", "via", gateway)
    # The node's kernel settings as the program writes them (ignition/files/node/sysctl.conf):
    # forwarding on. The bridge-nf keys need br_netfilter and a bridge; this node has neither.
    sysctls = output.machines[NODE].files[SYSCTL_FILE].contents.decode()
    for line in sysctls.splitlines():
        key, _, value = line.partition("=")
        if key.strip().startswith("net.ipv4."):
            _run(node, "sysctl", "-w", f"{key.strip()}={value.strip()}")
    assert _run(node, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    mac = json.loads(_run(node, "ip", "-j", "link", "show", LAN_IF))[0]["address"]
    node_json = json.dumps(node_object(str(w1.ip), POD_SUBNET))
    plane.kubectl("create", "-f", "-", input_text=node_json)
    wanted = str(household_dns_address(output.stack))
    net = Lan(plane, lan, node, pod, service, wanted, str(w1.ip), node_mac=mac.lower())

    def stop_processes() -> None:
        for process in reversed(net.processes):
            process.stop()

    stack.callback(stop_processes)
    return net


def start_answerer(ns: NetworkNamespace, address: str, name: str, logs: Path) -> RealProcess:
    def ready() -> bool:
        return len(ns.run(["ss", "-Hlntu", "sport = :53"]).stdout.splitlines()) >= 2

    return start(f"answerer-{name}", ns.wrap(["python3", "-c", ANSWERER, address, name]), logs,
                 ready, timeout_seconds=20)  # fmt: skip


def apply_objects(plane: ControlPlane, output: ProgramOutput, work: Path) -> Manifests:
    """MetalLB's CRDs, the pool and its L2Advertisement, and the household DNS's Service with
    its stand-in EndpointSlice; the rendered objects by release."""
    rendered = {n: helm_template(output.releases[n], output.stack, work) for n in
                ("metallb", "lan", "household-dns")}  # fmt: skip
    crds = only(rendered["metallb"], "CustomResourceDefinition")
    plane.apply(crds, "--server-side", "--field-manager=stubernetes-tests")
    names = [f"crd/{c['metadata']['name']}" for c in crds]
    plane.kubectl("wait", "--for=condition=Established", "--timeout=120s", *names)
    (service,) = only(rendered["household-dns"], "Service")
    (workload,) = only(rendered["household-dns"], "Deployment", "DaemonSet")
    for namespace in (METALLB_NAMESPACE, service["metadata"]["namespace"]):
        plane.kubectl("create", "namespace", namespace)
    plane.apply(only(rendered["lan"], "IPAddressPool", "L2Advertisement"))
    # The ServiceAccount admission plugin wants the namespace's default account, which the
    # controller-manager's service account controller creates.
    wait_for("the default ServiceAccount", lambda: plane.kubectl(
        "get", "serviceaccount", "default", "-n", METALLB_NAMESPACE, check=False
    ).returncode == 0, 60)  # fmt: skip
    plane.apply([stand_in_pod("controller"), stand_in_pod(f"speaker-{NODE}")])
    plane.apply([service, endpoint_slice(service, workload, POD_IP)])
    return rendered


def assign_the_address(net: Lan, logs: Path) -> None:
    """MetalLB's controller, until the Service has an address."""
    plane, meta = net.plane, net.service["metadata"]
    # Metrics off (--port=0) and no webhook: neither is what this test is about
    # (controller/main.go flags).
    controller = [str(require_tool("metallb", "controller")), f"--namespace={METALLB_NAMESPACE}",
                  "--pod-name=controller", "--port=0", "--webhook-mode=disabled"]  # fmt: skip
    began = time.monotonic()
    net.processes.append(start("metallb-controller", plane.wrap(controller), logs,
                               lambda: True, env=net.kubeconfig_env))  # fmt: skip

    def assigned() -> bool:
        svc = ["get", "service", meta["name"], "-n", meta["namespace"], "-o", "json"]
        stored = json.loads(plane.kubectl(*svc).stdout)
        net.ingress = stored["status"].get("loadBalancer", {}).get("ingress", [])
        return bool(net.ingress)

    wait_for("an address for the Service", assigned, 120, net.logs())
    net.figures["address assigned (s after the controller started)"] = time.monotonic() - began


def start_kube_proxy(net: Lan, output: ProgramOutput, work: Path) -> None:
    """kube-proxy on w1, until its rules carry the address.

    As kubeadm configures it (cmd/kubeadm/app/componentconfigs/kubeproxy.go: clusterCIDR from
    the pod subnet, a kubeconfig of its own) in its default mode on Linux, iptables
    (cmd/kube-proxy/app/server_linux.go); the program sets nothing of kube-proxy's. conntrack's
    table size is left alone (maxPerCore 0): nf_conntrack_max is the host's, not w1's."""
    config = work / "kube-proxy.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(net.plane.admin_kubeconfig)},
        "hostnameOverride": NODE,
        "clusterCIDR": str(output.stack.cluster.pod_cidr),
        "conntrack": {"maxPerCore": 0, "min": 0},
    }))  # fmt: skip
    proxy = [str(require_tool("kube-proxy", "kube-proxy")), f"--config={config}"]

    def programmed() -> bool:
        net.nat_rules = net.node.run(["iptables-save", "-t", "nat"]).stdout
        return f"-d {net.expected_address}/32" in net.nat_rules

    began = time.monotonic()
    net.processes.append(start("kube-proxy", net.node.wrap(proxy), work / "logs", programmed,
                               timeout_seconds=120))  # fmt: skip
    net.figures["load-balancer rules written (s after kube-proxy started)"] = (
        time.monotonic() - began
    )


def speaker_environment(
    metallb: list[Manifest], node_address: str, secret_dir: Path
) -> dict[str, str]:
    """The speaker container's environment as the chart renders it, on w1.

    The chart turns memberlist on (values.yaml `speaker.memberlist.enabled: true`), and with it
    the speaker's candidate nodes are memberlist's members, itself among them from the start
    (internal/speakerlist/speakerlist.go UsableSpeakers). With memberlist off the candidates
    are the speaker's Node cache instead (speaker/layer2_controller.go speakersForAds), and a
    Service reconciled before that cache holds w1 is never announced: the Node's first arrival
    forces no resync (speaker/main.go SetNode, isNodeAvailableChanged). So the speaker runs as
    deployed. Its host network makes status.podIP and status.hostIP w1's address; the secret
    key file is the one the controller generates and the chart mounts (`secretkey`:
    internal/k8s/k8s.go MLSecretKeyName)."""
    (daemon_set,) = [o for o in only(metallb, "DaemonSet") if "speaker" in o["metadata"]["name"]]
    spec = daemon_set["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    (container,) = [c for c in spec["containers"] if c["name"] == "speaker"]
    env: dict[str, str] = {}
    for variable in container["env"]:
        field_path = variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field_path in ("status.podIP", "status.hostIP"):
            env[variable["name"]] = node_address
        elif "value" in variable:
            env[variable["name"]] = str(variable["value"])
    assert env.get("METALLB_ML_BIND_ADDR") == node_address, env
    secret_dir.mkdir(parents=True, exist_ok=True)
    (secret_dir / "secretkey").write_text("stubernetes-tests-memberlist-key")
    env["METALLB_ML_SECRET_KEY_PATH"] = str(secret_dir)
    return env


def announce(net: Lan, metallb: list[Manifest], logs: Path) -> None:
    """MetalLB's speaker on w1, until the client's ARP request for the address is answered.

    The speaker reads /sys/class/net/<interface> (internal/layer2/announcer.go
    updateInterfaces), and sysfs shows the network namespace of whoever mounted it: so the
    speaker gets a mount namespace of its own with sysfs mounted from w1's namespace, as
    `ip netns exec` does (iproute2 ip-netns(8)) and as w1's own /sys would be. Memberlist is on,
    as the chart deploys it (speaker_environment)."""
    # Nobody answers for the address before the speaker runs.
    net.arp_before_speaker = arp_reply(net.lan, "br0", net.expected_address)
    speaker = [str(require_tool("metallb", "speaker")), f"--namespace={METALLB_NAMESPACE}",
               f"--node-name={NODE}", f"--pod-name=speaker-{NODE}", "--port=0"]  # fmt: skip
    with_sysfs = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                  'mount -t sysfs sysfs /sys && exec "$@"', "sh", *speaker]  # fmt: skip
    began = time.monotonic()
    env = net.kubeconfig_env | speaker_environment(metallb, net.node_address, logs.parent / "ml")
    net.processes.append(start("metallb-speaker", net.node.wrap(with_sysfs), logs,
                               lambda: True, env=env))  # fmt: skip

    def answered() -> bool:
        net.arp_answer = arp_reply(net.lan, "br0", net.expected_address)
        return bool(net.arp_answer)

    wait_for("an ARP answer for the address", answered, 120, net.logs())
    net.figures["ARP answered (s after the speaker started)"] = time.monotonic() - began
    began = time.monotonic()

    def reached() -> bool:
        return bool(ask(net.lan, net.expected_address, "udp"))

    wait_for("a UDP answer from the address", reached, 60, net.logs())
    net.figures["UDP query answered (s after ARP)"] = time.monotonic() - began


@pytest.fixture(scope="module")
def lan(output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    for binary in ("ip", "ss", "sysctl", "arping", "iptables-save", "nsenter", "unshare"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is missing: scripts/test installs it (TEST_APT_PACKAGES)")
    work = tmp_path_factory.mktemp("lan-load-balancer")
    logs = work / "logs"
    with running_control_plane(output, work) as plane, ExitStack() as stack:
        rendered = apply_objects(plane, output, work)
        (service,) = only(rendered["household-dns"], "Service")
        net = wire(plane, output, service, logs, stack)
        net.processes.append(start_answerer(net.pod, "0.0.0.0", "household-dns", logs))
        net.processes.append(start_answerer(net.node, RESOLVED, "systemd-resolved", logs))
        assign_the_address(net, logs)
        start_kube_proxy(net, output, work)
        announce(net, rendered["metallb"], logs)
        yield net
        dead = [p for p in net.processes if not p.alive()]
        assert not dead, "exited: " + "\n".join(p.log_tail() for p in dead)


def test_the_controller_gives_the_address_the_program_asks_for(lan: Lan) -> None:
    annotations = lan.service["metadata"]["annotations"]
    assert annotations[METALLB_ADDRESS_ANNOTATION] == lan.expected_address
    assert [i.get("ip") for i in lan.ingress] == [lan.expected_address], lan.ingress


def test_kube_proxy_maps_the_address_to_the_pod(lan: Lan) -> None:
    # pkg/proxy/iptables/proxier.go "Capture load-balancer ingress": the address and port jump
    # to the Service's KUBE-EXT chain, whose endpoint chain DNATs to the pod.
    for protocol in ("udp", "tcp"):
        capture = f"-d {lan.expected_address}/32 -p {protocol}"
        lines = [x for x in lan.nat_rules.splitlines() if capture in x and "--dport 53" in x]
        assert lines and all("-j KUBE-EXT-" in x for x in lines), lan.nat_rules
    assert f"--to-destination {POD_IP}:53" in lan.nat_rules, lan.nat_rules


def test_only_the_speaker_answers_arp_with_the_nodes_mac(lan: Lan) -> None:
    assert lan.arp_before_speaker == ""
    assert lan.arp_answer == lan.node_mac
    # No interface of the node holds the address: the kernel does not answer for it.
    held = lan.node.run(["ip", "-4", "-o", "address", "show"]).stdout
    assert f" {lan.expected_address}/" not in held, held


def test_a_lan_client_reaches_the_pod_over_udp_and_tcp(lan: Lan) -> None:
    for transport in ("udp", "tcp"):
        assert ask(lan.lan, lan.expected_address, transport) == "household-dns", transport
    print("figures:", json.dumps({k: round(v, 2) for k, v in lan.figures.items()}))


def test_the_nodes_own_lookups_stay_with_its_resolver(lan: Lan) -> None:
    # kube-proxy's rules match the Service's addresses and node ports only, not the node's
    # port 53: systemd-resolved's stub keeps answering the node.
    for transport in ("udp", "tcp"):
        assert ask(lan.node, RESOLVED, transport) == "systemd-resolved", transport
    # The node itself reaches the pod through the address (kube-proxy's OUTPUT path).
    assert ask(lan.node, lan.expected_address, "udp") == "household-dns"
