"""The lab: the machines' side of a home lab, for the real Pulumi engine to deploy to.

``python -m engine.lab serve --work DIR ADDRESS...`` is one process in a network namespace of
its own (``start_lab`` starts it under ``unshare --net``); the namespace lives exactly as long
as it does. In it:

* the loopback device carries ADDRESS... (the machines' own addresses and the API endpoint's
  host): kubeadm refuses a loopback advertise address (tests/real/control_plane/netns.py), and so
  every address and port the program renders works unchanged, and nothing is reachable from
  outside;
* a machine without a static address gets one as from a DHCP server (``--lease
  MAC=ADDRESS/PREFIX``, engine.stacks.lease_addresses): a device of its own carries the lease, and
  the machine's root a default route through that device, as DHCP leaves a machine's
  /proc/net/route. kubeadm takes a controller's advertise address, when its config gives none,
  from that route (lease_route_file says how);
* a real Matchbox v0.11.0 serves its HTTP API at 127.0.0.1:8080 and its mutual-TLS gRPC API at
  127.0.0.1:8081, with certificates from ``matchbox_grpc.make_tls_material`` (DIR/tls);
* a boot service on the Unix socket DIR/lab.sock plays the machines. A machine's
  ``pxeCommand`` (``python3 tests/engine/pxe_boot.py $name $mac``) is its one-time network
  boot: the service asks Matchbox's HTTP API for the machine's iPXE script by MAC, as iPXE
  does (``/ipxe?mac=...``), takes the ``coreos.inst.ignition_url`` from its kernel arguments
  and fetches the Ignition there, as coreos-installer does; then the machine "installs" on its
  own, while ``pulumi up`` goes on:

  - the init controller lays out its Ignition's files (the PKI the engine's tls resources
    made), runs kubeadm's init phases that write files, and starts etcd, kube-apiserver,
    kube-controller-manager and kube-scheduler from kubeadm's static Pod manifests (what
    tests/real/control_plane does from a mocks run, here from what the engine put into Matchbox),
    then kubeadm's ``upload-config`` and ``bootstrap-token`` phases, its Node and the mirror
    Pods a kubelet would create, and kwok, which plays every kubelet;
  - every other machine waits for the cluster, runs the real ``kubeadm join phase preflight``
    with its own JoinConfiguration (token discovery: the bootstrap token the engine's
    Kubernetes provider created, the CA pinned by hash; a controller's shared CA files), as
    its setup service retries ``kubeadm join`` until it works, and then registers its Node
    with a new boot ID, once no Ready Node of its name is left (``kubeadm join`` refuses one);
* kwok serves exec into the mirror Pod ``etcd-<init controller>`` as the real ``etcdctl``
  against the real etcd (a ClusterExec), which the reinstall step of a controller uses to
  find and remove its etcd member;
* every Node says the kubelet release its machine's Ignition installs (its kubelet download),
  and a stand-in for each joined machine's upgrade service (engine.upgrade_service) answers
  the program's upgrade steps in the machine's upgrade ConfigMap; the ``upgrade-fault``
  request makes one machine's kubeadm upgrade fail until it is cleared.

Every process the lab starts is its child, in a process group of its own, and is stopped
when the lab is (SIGTERM), their pids listed in DIR/lab-children for whoever must clean up
after a lab that was killed. Each boot is a line of DIR/boots.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import signal
import socketserver
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from control_plane.cluster import COMPONENTS, CONTROLLER_MANAGER_PORT, FILE_PHASES, SCHEDULER_PORT
from control_plane.kubeadm import (
    HOST_CHECKS,
    KUBERNETES_DIR,
    config_args,
    kubeadm,
    machine_root,
)
from control_plane.kwok import LEASE_SECONDS, STAGES, node_object
from control_plane.program_output import MachineOutput, ignition_downloads, ignition_files
from control_plane.static_pods import StaticPod, Translation, read_static_pods
from real_process import RealProcess, start
from tool_cache import require_tool

from engine.launch import argv as module_argv
from engine.upgrade_service import UpgradeServices, ignition_kubelet_release
from stackconfig.model import normalize_mac

MATCHBOX_HTTP_PORT = 8080
MATCHBOX_RPC_PORT = 8081
# kwok's kubelet-like server (exec, logs) at the port a kubelet serves on, on the loopback:
# every Node's InternalIP is 127.0.0.1 (kwok --node-ip), which the API server dials.
KUBELET_PORT = 10250
LAB_FILE = "lab.json"
SOCKET = "lab.sock"
CHILDREN_FILE = "lab-children"
BOOTS_FILE = "boots.jsonl"
# How long a machine keeps trying to join before it gives up (its setup service retries with
# backoff; pulumi up's own waits are the stack's gates).
JOIN_TIMEOUT_SECONDS = 900
# The ports a joining controller's preflight finds taken here, in the init controller's
# namespace, and free on its own machine (kubernetes cmd/kubeadm/app/preflight/checks.go
# InitNodeChecks: the bind port, scheduler, controller-manager, etcd client and peer ports).
CONTROL_PLANE_PORTS = (6443, 10259, 10257, 2379, 2380)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# The network namespace of whoever started the lab: the lab refuses to serve in it.
HOST_NETNS_VARIABLE = "STUBERNETES_LAB_HOST_NETNS"
# The columns of the kernel's /proc/net/route (net/ipv4/fib_trie.c fib_route_seq_show).
ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
ROUTE_FLAGS = 0x0003  # RTF_UP | RTF_GATEWAY


@dataclass(frozen=True)
class Lease:
    """A machine's DHCP lease in the lab: its address, the device that carries it in the
    namespace, the router of the lab's subnet."""

    address: str
    device: str
    gateway: str


def lease_route_file(lease: Lease) -> str:
    """The machine's /proc/net/route as its DHCP client leaves it: a default route through its
    device. kubeadm, for a controller whose config has no advertise address, asks
    k8s.io/apimachinery pkg/util/net/interface.go ChooseHostInterface
    (cmd/kubeadm/app/util/config/common.go ChooseAPIServerBindAddress): with /proc/net/route
    there, the global unicast address of the device of a default route
    (chooseHostInterfaceFromRoute); without it (a bare scratch root), any up device's, other
    than the loopback (chooseIPFromHostInterfaces), and the lab's namespace has none of those
    until a lease's device is there: "no acceptable interface with global unicast address found
    on host". Addresses in the kernel's byte order (parseIP reverses the four bytes)."""
    gateway = bytes(reversed(ipaddress.IPv4Address(lease.gateway).packed)).hex().upper()
    # Iface, Destination (0.0.0.0: the default), Gateway, Flags, RefCnt, Use, Metric, Mask,
    # MTU, Window, IRTT.
    fields = [lease.device, "00000000", gateway, f"{ROUTE_FLAGS:04X}", "0", "0", "0"]
    row = "\t".join([*fields, "00000000", "0", "0", "0"])
    return f"{ROUTE_HEADER}\n{row}\n"


# --------------------------------------------------------------------------- small helpers


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def hexhyp(mac: str) -> str:
    """iPXE's ``${mac:hexhyp}``: the MAC's octets, lower case, joined by hyphens."""
    return mac.lower().replace(":", "-")


def port_open(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _no_proxy() -> dict[str, str]:
    return {key: "" for key in os.environ if key.lower().endswith("_proxy")}


@dataclass(frozen=True)
class PxeBoot:
    """What a machine got from Matchbox's HTTP API when it network-booted."""

    ipxe: str
    kernel_args: list[str]
    ignition_url: str
    ignition: bytes


def pxe_boot(http: str, mac: str, system_uuid: str) -> PxeBoot:
    """As iPXE and the live installer do: the machine's iPXE script by MAC (Matchbox
    ``/ipxe``, ``matchbox/http/ipxe.go``), then the Ignition at the script's
    ``coreos.inst.ignition_url`` with iPXE's ``${uuid}`` and ``${mac:hexhyp}`` expanded."""
    query = urllib.parse.urlencode({"uuid": system_uuid, "mac": hexhyp(mac)})
    status, body = _http_get(f"{http}/ipxe?{query}")
    if status != 200:
        raise RuntimeError(f"GET {http}/ipxe?{query}: {status} {body.decode(errors='replace')}")
    script = body.decode()
    kernel = next((line for line in script.splitlines() if line.startswith("kernel ")), "")
    args = kernel.split()[2:]
    urls = [a.partition("=")[2] for a in args if a.startswith("coreos.inst.ignition_url=")]
    if len(urls) != 1:
        raise RuntimeError(f"no coreos.inst.ignition_url in the iPXE script:\n{script}")
    url = urls[0].replace("${uuid}", system_uuid).replace("${mac:hexhyp}", hexhyp(mac))
    status, ignition = _http_get(url)
    if status != 200:
        raise RuntimeError(f"GET {url}: {status} {ignition.decode(errors='replace')}")
    return PxeBoot(script, args, url, ignition)


def machine_from_ignition(name: str, ignition: bytes) -> MachineOutput:
    """The machine as its Ignition makes it: its files, and from its kubeadm config its role
    (a JoinConfiguration with ``controlPlane``, or an InitConfiguration: a controller)."""
    config = json.loads(ignition)
    files = ignition_files(config)
    probe = MachineOutput(name, "worker", False, config, files)
    documents = probe.kubeadm_documents()
    init = "InitConfiguration" in documents
    join = documents.get("JoinConfiguration", {})
    role = "controller" if init or "controlPlane" in join else "worker"
    return MachineOutput(name, role, init, config, files)


# --------------------------------------------------------------------------- the control plane


@dataclass
class ControlPlane:
    machine: str
    root: Path
    processes: list[RealProcess] = field(default_factory=list)
    pods: dict[str, StaticPod] = field(default_factory=dict)

    @property
    def admin_conf(self) -> Path:
        return self.root / KUBERNETES_DIR.lstrip("/") / "admin.conf"

    def alive(self) -> bool:
        return bool(self.processes) and all(p.alive() for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _url_host_port(urls: str | None) -> tuple[str, int]:
    assert urls, "no URL"
    host, _, port = urls.split(",")[-1].partition("://")[2].rpartition(":")
    return host, int(port)


def _readyz(server: str, ca_file: Path) -> bool:
    probe = ["curl", "--silent", "--fail", "--max-time", "5", "--cacert", str(ca_file)]
    done = subprocess.run(
        [*probe, f"{server}/readyz"], capture_output=True, text=True, timeout=15, check=False
    )
    return done.stdout.strip() == "ok"


def start_control_plane(
    machine: MachineOutput, root: Path, logs: Path, say: Callable[[str], None]
) -> ControlPlane:
    """kubeadm's file phases in the machine's root, then its static Pods as processes."""
    machine_root(machine, root)
    plane = ControlPlane(machine.name, root)
    try:
        for phase in FILE_PHASES:
            kubeadm(["init", "phase", *phase, *config_args()], rootfs=root)
        say(f"{machine.name}: kubeadm init phases {', '.join(p[0] for p in FILE_PHASES)} done")
        plane.pods = pods = read_static_pods(root)
        translation = Translation(root)
        binaries = {
            "etcd": require_tool("etcd", "etcd"),
            **{name: require_tool("kubernetes", name) for name in COMPONENTS[1:]},
        }
        ca_file = root / KUBERNETES_DIR.lstrip("/") / "pki" / "ca.crt"
        etcd_host, etcd_port = _url_host_port(pods["etcd"].flag("listen-client-urls"))
        api_host = pods["kube-apiserver"].flag("advertise-address") or "127.0.0.1"
        api_port = int(pods["kube-apiserver"].flag("secure-port") or 6443)
        manager_port = int(
            pods["kube-controller-manager"].flag("secure-port") or CONTROLLER_MANAGER_PORT
        )
        scheduler_port = int(pods["kube-scheduler"].flag("secure-port") or SCHEDULER_PORT)
        readiness: dict[str, Callable[[], bool]] = {
            "etcd": lambda: port_open(etcd_host, etcd_port),
            "kube-apiserver": lambda: _readyz(f"https://{api_host}:{api_port}", ca_file),
            "kube-controller-manager": lambda: port_open("127.0.0.1", manager_port),
            "kube-scheduler": lambda: port_open("127.0.0.1", scheduler_port),
        }
        for name in COMPONENTS:
            argv = translation.argv(pods[name], binaries[name])
            plane.processes.append(
                start(name, argv, logs, readiness[name], timeout_seconds=180, env=_no_proxy())
            )
            say(f"{machine.name}: {name} running")
        # The API-talking phases of `kubeadm init` that the cluster's joins need: the
        # kubeadm-config and kubelet-config ConfigMaps (and the binding of admin.conf's
        # kubeadm:cluster-admins group, which the program's admin kubeconfig is in), then
        # cluster-info and the RBAC for bootstrap tokens
        # (kubernetes cmd/kubeadm/app/cmd/phases/init/uploadconfig.go, bootstraptoken.go).
        api_phases: tuple[list[str], ...] = (["upload-config", "all"], ["bootstrap-token"])
        for api_phase in api_phases:
            kubeadm(["init", "phase", *api_phase, *config_args()], rootfs=root)
        say(f"{machine.name}: kubeadm init phases upload-config, bootstrap-token done")
    except BaseException:
        plane.stop()
        raise
    return plane


def mirror_pods(plane: ControlPlane, node: str) -> list[dict[str, Any]]:
    """The mirror Pods a kubelet creates for its static Pods (kubernetes
    pkg/kubelet/pod/mirror_client.go CreateMirrorPod: the manifest, the mirror annotation, an
    owner reference to its Node, bound to it), named ``<name>-<node>``."""
    pods = []
    for name, pod in sorted(plane.pods.items()):
        manifest = json.loads(json.dumps(pod.manifest))
        metadata = manifest.setdefault("metadata", {})
        metadata["name"] = f"{name}-{node}"
        metadata["namespace"] = "kube-system"
        digest = hashlib.md5(json.dumps(pod.manifest, sort_keys=True).encode()).hexdigest()
        metadata.setdefault("annotations", {})[MIRROR_ANNOTATION] = digest
        manifest["spec"]["nodeName"] = node
        manifest.pop("status", None)
        pods.append(manifest)
    return pods


# --------------------------------------------------------------------------- the lab


class Lab:
    """The lab's state; its methods run in the serving process, inside the namespace."""

    def __init__(self, work: Path) -> None:
        self.work = work
        # The DHCP server's leases, by normalized MAC.
        self.leases: dict[str, Lease] = {}
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.machines_dir = work / "machines"
        self.children: list[RealProcess] = []
        self.matchbox: RealProcess | None = None
        self.plane: ControlPlane | None = None
        self.kwok: RealProcess | None = None
        self.lock = threading.RLock()
        self.boot_threads: dict[str, threading.Thread] = {}
        self.state: dict[str, str] = {}
        self.boot_counts: dict[str, int] = {}
        self.stopping = threading.Event()
        self.tls_dir = work / "tls"
        # Every joined machine's upgrade service (engine.upgrade_service), once kwok runs.
        self.upgrades = UpgradeServices(
            self.kubectl, self.joined, self.record, self.machine_log, self.stopping
        )

    # -- bookkeeping ------------------------------------------------------------------
    def _track(self, process: RealProcess) -> RealProcess:
        with self.lock:
            self.children.append(process)
            pids = [str(p.process.pid) for p in self.children if p.alive()]
        (self.work / CHILDREN_FILE).write_text("\n".join(pids) + "\n")
        return process

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock, (self.work / BOOTS_FILE).open("a") as out:
            out.write(json.dumps({"at": _now(), **entry}, sort_keys=True) + "\n")

    def machine_log(self, name: str) -> Callable[[str], None]:
        path = self.logs / f"machine-{name}.log"

        def say(line: str) -> None:
            with path.open("a") as out:
                out.write(f"{_now()} {line}\n")

        return say

    # -- the DHCP server --------------------------------------------------------------
    def add_leases(self, leases: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """``leases``: MAC -> ADDRESS/PREFIX (engine.stacks.lease_addresses), each kept as it
        was given the first time (a MAC given another address is refused). A new one goes on a
        device of its own, a veth pair (this kernel has no dummy devices) with both ends up,
        the address alone (/32) so that no route of the lab's changes; its router is the
        subnet's first host, which lease_addresses never leases. Returns every lease."""
        with self.lock:
            for mac, spec in sorted((normalize_mac(m), s) for m, s in leases.items()):
                lease = ipaddress.IPv4Interface(spec)
                known = self.leases.get(mac)
                if known is not None:
                    if known.address != str(lease.ip):
                        raise RuntimeError(
                            f"{mac} has the lease {known.address} in this lab, not {lease.ip}:"
                            " stop the lab first (action stop)"
                        )
                    continue
                device = f"lease{len(self.leases)}"
                _ip(
                    ["link", "add", device, "type", "veth", "peer", "name", f"{device}-lan"],
                    ["link", "set", device, "up"],
                    ["link", "set", f"{device}-lan", "up"],
                    ["address", "add", f"{lease.ip}/32", "dev", device],
                )
                router = str(lease.network.network_address + 1)
                self.leases[mac] = Lease(str(lease.ip), device, router)
            return {
                mac: {"address": lease.address, "device": lease.device, "router": lease.gateway}
                for mac, lease in sorted(self.leases.items())
            }

    # -- the services -----------------------------------------------------------------
    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{MATCHBOX_HTTP_PORT}"

    def start_matchbox(self) -> None:
        """The real Matchbox (matchbox_grpc.start_matchbox's flags), at fixed ports: the
        namespace's ports are all free, and the stack names them."""
        import matchbox_grpc

        tls = (
            matchbox_grpc.make_tls_material(self.tls_dir)
            if not (self.tls_dir / "ca.crt").exists()
            else _tls_files(self.tls_dir)
        )
        data = self.work / "matchbox" / "data"
        assets = self.work / "matchbox" / "assets"
        # Matchbox's file store lists a directory it has not written yet as an error.
        for directory in (data / "profiles", data / "groups", data / "ignition", assets):
            directory.mkdir(parents=True, exist_ok=True)
        argv = [
            str(require_tool("matchbox", "matchbox")),
            "-address",
            f"127.0.0.1:{MATCHBOX_HTTP_PORT}",
            "-rpc-address",
            f"127.0.0.1:{MATCHBOX_RPC_PORT}",
            "-cert-file",
            str(tls.server_cert),
            "-key-file",
            str(tls.server_key),
            "-ca-file",
            str(tls.ca_cert),
            "-data-path",
            str(data),
            "-assets-path",
            str(assets),
            "-log-level",
            "debug",
        ]
        env = {k: "" for k in os.environ if k.startswith("MATCHBOX_")}

        def ready() -> bool:
            status = 0
            with contextlib.suppress(OSError):
                status, body = _http_get(f"{self.http}/", timeout=2)
                return (
                    status == 200
                    and body == b"matchbox\n"
                    and port_open("127.0.0.1", MATCHBOX_RPC_PORT)
                )
            return False

        self.matchbox = self._track(start("matchbox", argv, self.logs, ready, 30, env=env))

    def matchbox_client(self) -> Any:
        import matchbox_grpc

        stubs = matchbox_grpc.generate_stubs(self.work / "stubs")
        return matchbox_grpc.MatchboxClient(
            f"127.0.0.1:{MATCHBOX_RPC_PORT}", _tls_files(self.tls_dir), stubs
        )

    def dump_matchbox(self, macs: Sequence[str] = ()) -> dict[str, Any]:
        """Every profile, group and Ignition config, read back through the gRPC API; what the
        HTTP API serves each group's MAC and each of ``macs``; and the data path's files, byte
        for byte."""
        with self.matchbox_client() as client:
            profiles = sorted(client.profile_list(), key=lambda p: str(p.get("id")))
            groups = sorted(client.group_list(), key=lambda g: str(g.get("id")))
            ignition = {}
            for profile in profiles:
                ignition_id = profile.get("ignition_id")
                if ignition_id:
                    ignition[ignition_id] = client.ignition_get(ignition_id).decode()
        served = {}
        group_macs = [(g.get("selector") or {}).get("mac") for g in groups]
        for mac in {*(m for m in group_macs if m), *macs}:
            status, body = _http_get(f"{self.http}/ignition?mac={hexhyp(mac)}")
            served[mac] = {"status": status, "body": body.decode(errors="replace")}
        data = self.work / "matchbox" / "data"
        files = {
            str(p.relative_to(data)): {
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                "mtime_ns": p.stat().st_mtime_ns,
                "inode": p.stat().st_ino,
            }
            for p in sorted(data.rglob("*"))
            if p.is_file()
        }
        return {
            "profiles": profiles,
            "groups": groups,
            "ignition": ignition,
            "served": served,
            "files": files,
        }

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        plane = self.plane
        if plane is None:
            raise RuntimeError("no control plane runs")
        argv = [
            str(require_tool("kubernetes", "kubectl")),
            f"--kubeconfig={plane.admin_conf}",
            "--request-timeout=30s",
            *args,
        ]
        done = subprocess.run(
            argv, input=input_text, capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def start_kwok(self, plane: ControlPlane) -> None:
        """kwok with the fast stages, every Node's InternalIP the loopback, its server at the
        kubelet port, and exec into ``etcd-<init controller>`` as the real etcdctl on the init
        controller's files (the etcd container's hostPath mounts)."""
        exec_bin = self.work / "exec-bin"
        exec_bin.mkdir(exist_ok=True)
        wrapper = exec_bin / "etcdctl"
        kubernetes = plane.root / KUBERNETES_DIR.lstrip("/")
        wrapper.write_text(
            "#!/bin/bash\n"
            "# etcdctl as run inside the etcd container of the init controller: its\n"
            "# /etc/kubernetes is that machine's (the container's hostPath mounts).\n"
            f"exec {require_tool('etcd', 'etcdctl')} "
            f'"${{@//\\/etc\\/kubernetes\\//{kubernetes}/}}"\n'
        )
        wrapper.chmod(0o755)
        execs = self.work / "kwok-exec.yaml"
        execs.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": "ClusterExec",
                    "metadata": {"name": "etcd"},
                    "spec": {
                        "selector": {
                            "matchNamespaces": ["kube-system"],
                            "matchNames": [f"etcd-{plane.machine}"],
                        },
                        "execs": [{"local": {"workDir": str(plane.root)}}],
                    },
                }
            )
        )
        argv = [
            str(require_tool("kwok", "kwok")),
            f"--kubeconfig={plane.admin_conf}",
            "--manage-all-nodes=true",
            f"--config={STAGES}",
            f"--config={execs}",
            f"--node-lease-duration-seconds={LEASE_SECONDS}",
            f"--server-address=127.0.0.1:{KUBELET_PORT}",
            "--node-ip=127.0.0.1",
            f"--node-port={KUBELET_PORT}",
        ]
        env = {**_no_proxy(), "PATH": f"{exec_bin}:{os.environ.get('PATH', '')}"}
        self.kwok = self._track(
            start(
                "kwok",
                argv,
                self.logs,
                lambda: port_open("127.0.0.1", KUBELET_PORT),
                timeout_seconds=60,
                env=env,
            )
        )

    def joined(self) -> list[str]:
        with self.lock:
            return sorted(name for name, state in self.state.items() if state == "joined")

    def upgrade_fault(self, machine: str, error: str | None) -> dict[str, str]:
        """The machine's kubeadm upgrades fail with ``error`` (its last line), until
        cleared (``error`` None); returns every fault set."""
        return self.upgrades.set_fault(machine, error)

    # -- a machine's boot -------------------------------------------------------------
    def boot(self, name: str, mac: str, reply: Callable[[str], None]) -> None:
        """The machine's network boot: its iPXE script and Ignition from Matchbox now, the rest
        of its install in the background."""
        with self.lock:
            number = self.boot_counts.get(name, 0) + 1
            self.boot_counts[name] = number
            running = self.boot_threads.get(name)
        if running is not None and running.is_alive():
            reply(f"{name}: an earlier boot is still installing; this one replaces it")
        system_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        lease = self.leases.get(normalize_mac(mac))
        if lease is not None:
            reply(f"{name}: DHCP lease {lease.address} (lab device {lease.device})")
        fetched = pxe_boot(self.http, mac, system_uuid)
        machine = machine_from_ignition(name, fetched.ignition)
        digest = hashlib.sha256(fetched.ignition).hexdigest()
        boot_id = f"{name}-boot-{number}-{secrets.token_hex(4)}"
        kind = "init controller" if machine.init else machine.role
        reply(
            f"{name}: network boot {number} ({kind}): iPXE script for {hexhyp(mac)} from"
            f" Matchbox, Ignition {len(fetched.ignition):,} B from {fetched.ignition_url}"
        )
        self.record(
            {
                "event": "pxe",
                "machine": name,
                "mac": mac,
                "boot": number,
                "boot_id": boot_id,
                "role": machine.role,
                "init": machine.init,
                "ignition_sha256": digest,
                "ignition_url": fetched.ignition_url,
                "lease": lease.address if lease is not None else None,
            }
        )
        with self.lock:
            self.state[name] = f"installing (boot {number})"
        thread = threading.Thread(
            target=self._install,
            args=(name, number, boot_id, machine, lease),
            name=f"boot-{name}-{number}",
            daemon=True,
        )
        with self.lock:
            self.boot_threads[name] = thread
        thread.start()
        reply(f"{name}: installing itself from that Ignition; it joins the cluster on its own")

    def _install(
        self, name: str, number: int, boot_id: str, machine: MachineOutput, lease: Lease | None
    ) -> None:
        say = self.machine_log(name)
        root = self.machines_dir / name / f"boot-{number}" / "root"
        try:
            if lease is not None:
                route = root / "proc" / "net" / "route"
                route.parent.mkdir(parents=True, exist_ok=True)
                route.write_text(lease_route_file(lease))
                say(f"DHCP: {lease.address} on {lease.device}, default route via {lease.gateway}")
            if machine.init:
                with self.lock:
                    plane = self.plane
                if plane is None or not plane.alive():
                    say("kubeadm init: no control plane yet, founding the cluster")
                    plane = start_control_plane(machine, root, self.logs, say)
                    for process in plane.processes:
                        self._track(process)
                    with self.lock:
                        self.plane = plane
                    self.register(machine, boot_id, say)
                    self.kubectl(
                        "create",
                        "-f",
                        "-",
                        input_text=json.dumps(
                            {"apiVersion": "v1", "kind": "List", "items": mirror_pods(plane, name)}
                        ),
                    )
                    say(f"mirror Pods of {', '.join(sorted(plane.pods))} created")
                    if self.kwok is None or not self.kwok.alive():
                        self.start_kwok(plane)
                        say("kwok plays the kubelets")
                    if not self.upgrades.thread.is_alive():
                        self.upgrades.start()
                        say("the machines' upgrade services run (engine.upgrade_service)")
                else:
                    say("a control plane runs already: this boot rejoins it")
                    self.register(machine, boot_id, say)
            else:
                self.join(machine, root, boot_id, say)
            outcome = "joined"
        except Exception as error:  # the machine failed: its log and the record say why
            outcome = f"failed: {error}"
            say(f"FAILED: {error}\n{traceback.format_exc()}")
        with self.lock:
            self.state[name] = outcome
        self.record({"event": "installed", "machine": name, "boot": number, "outcome": outcome})

    def _wait_for_cluster(self, deadline: float) -> ControlPlane:
        while True:
            with self.lock:
                plane = self.plane
            if plane is not None and plane.alive():
                return plane
            if time.monotonic() > deadline or self.stopping.is_set():
                raise RuntimeError("no cluster came up to join")
            time.sleep(1)

    def join(
        self, machine: MachineOutput, root: Path, boot_id: str, say: Callable[[str], None]
    ) -> None:
        deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
        self._wait_for_cluster(deadline)
        machine_root(machine, root)
        # The kubelet's port is kwok's here (it plays every kubelet).
        ignored = [*HOST_CHECKS, f"Port-{KUBELET_PORT}"]
        if machine.role == "controller":
            ignored += [f"Port-{port}" for port in CONTROL_PLANE_PORTS]
        args = [
            "join",
            "phase",
            "preflight",
            *config_args(),
            f"--ignore-preflight-errors={','.join(ignored)}",
        ]
        attempt = 0
        while True:
            attempt += 1
            # kubeadm's token discovery retries by itself (every 5 s, up to the
            # JoinConfiguration's discovery timeout, 5 min by default).
            run = kubeadm(args, rootfs=root, check=False, timeout=400)
            if run.returncode == 0:
                break
            say(f"kubeadm join phase preflight, attempt {attempt}: {run.report()}")
            if time.monotonic() > deadline or self.stopping.is_set():
                raise RuntimeError(f"kubeadm join preflight failed: {run.stderr[-400:]}")
            time.sleep(5)
        say("kubeadm join: discovery trusts the cluster (token and pinned CA), preflight passed")
        join = machine.kubeadm_documents().get("JoinConfiguration", {})
        if (join.get("controlPlane") or {}).get("certificateKey"):
            # A controller that joins with kubeadm's certificate key downloads the shared CA
            # material from the kubeadm-certs Secret and decrypts it with that key
            # (kubernetes cmd/kubeadm/app/cmd/phases/join/controlplaneprepare.go
            # newDownloadCertsSubphase -> phases/copycerts DownloadCerts).
            run = kubeadm(
                ["join", "phase", "control-plane-prepare", "download-certs", *config_args()],
                rootfs=root,
                check=False,
                timeout=200,
            )
            if run.returncode != 0:
                raise RuntimeError(f"kubeadm download-certs failed: {run.report()}")
            pki = root / KUBERNETES_DIR.lstrip("/") / "pki"
            got = sorted(str(p.relative_to(pki)) for p in pki.rglob("*") if p.is_file())
            say(f"kubeadm join: downloaded and decrypted the control-plane certificates: {got}")
        while True:
            ready = self.kubectl(
                "get",
                "node",
                machine.name,
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
                check=False,
            )
            if ready.returncode != 0 or ready.stdout.strip() != "True":
                break
            if time.monotonic() > deadline or self.stopping.is_set():
                raise RuntimeError(
                    f"a Ready Node {machine.name} exists: kubeadm join refuses to replace it"
                )
            say(f"a Ready Node {machine.name} exists: kubeadm join refuses; retrying")
            time.sleep(3)
        self.register(machine, boot_id, say)

    def register(self, machine: MachineOutput, boot_id: str, say: Callable[[str], None]) -> None:
        """The Node its kubelet registers, with this boot's ID (kwok keeps it Ready) and the
        release of the kubelet its Ignition installs."""
        downloads = {p: d.source for p, d in ignition_downloads(machine.ignition).items()}
        release = ignition_kubelet_release(downloads)
        node = node_object(machine, boot_id, f"v{release}" if release else None)
        created = self.kubectl("create", "-f", "-", input_text=json.dumps(node), check=False)
        if created.returncode != 0:
            if "AlreadyExists" not in created.stderr:
                raise RuntimeError(f"registering Node {machine.name}: {created.stderr}")
            patch = {"status": {"nodeInfo": node["status"]["nodeInfo"]}}
            self.kubectl(
                "patch",
                "node",
                machine.name,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps(patch),
            )
        say(f"Node {machine.name} registered, boot {boot_id}")

    # -- status and shutdown ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "machines": dict(self.state),
                "boots": dict(self.boot_counts),
                "installing": sorted(n for n, t in self.boot_threads.items() if t.is_alive()),
                "control_plane": self.plane is not None and self.plane.alive(),
                "admin_conf": str(self.plane.admin_conf) if self.plane else None,
                "leases": {mac: lease.address for mac, lease in sorted(self.leases.items())},
            }

    def stop(self) -> None:
        self.stopping.set()
        for thread in list(self.boot_threads.values()):
            thread.join(timeout=30)
        with self.lock:
            children = list(self.children)
        for process in reversed(children):
            process.stop()


def _tls_files(directory: Path) -> Any:
    import matchbox_grpc

    return matchbox_grpc.TLSFiles(
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
    )


# --------------------------------------------------------------------------- the boot service


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        lab = self.server.lab

        def reply(line: str) -> None:
            self.wfile.write(json.dumps({"line": line}).encode() + b"\n")
            self.wfile.flush()

        def done(ok: bool, result: Any = None, error: str = "") -> None:
            message = {"done": True, "ok": ok, "result": result, "error": error}
            self.wfile.write(json.dumps(message).encode() + b"\n")
            self.wfile.flush()

        try:
            request = json.loads(self.rfile.readline())
            op = request.get("op")
            if op == "boot":
                lab.boot(str(request["machine"]), str(request["mac"]), reply)
                done(True)
            elif op == "matchbox":
                done(True, lab.dump_matchbox(list(request.get("macs", ()))))
            elif op == "status":
                done(True, lab.status())
            elif op == "lease":
                done(True, lab.add_leases(dict(request.get("leases") or {})))
            elif op == "upgrade-fault":
                error = request.get("error")
                done(True, lab.upgrade_fault(str(request["machine"]), error and str(error)))
            elif op == "ping":
                done(True, os.getpid())
            elif op == "stop":
                done(True)
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                done(False, error=f"unknown op {op!r}")
        except Exception as error:
            done(False, error=f"{error}\n{traceback.format_exc()}")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    lab: Lab


def _ip(*commands: list[str]) -> None:
    for command in commands:
        done = subprocess.run(["ip", *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(command)}: {done.stderr}")


def _set_up_loopback(addresses: Sequence[str]) -> None:
    _ip(["link", "set", "lo", "up"])
    _ip(*(["address", "add", f"{a}/32", "dev", "lo"] for a in sorted(set(addresses))))


def serve(work: Path, addresses: Sequence[str], leases: Mapping[str, str] | None = None) -> None:
    """The lab's process (inside its own network namespace): until SIGTERM or ``stop``."""
    if os.readlink("/proc/self/ns/net") == os.environ.get(HOST_NETNS_VARIABLE):
        raise SystemExit("the lab runs in a network namespace of its own: use start_lab")
    work.mkdir(parents=True, exist_ok=True)
    _set_up_loopback([a for a in addresses if a != "127.0.0.1"])
    lab = Lab(work)
    lab.add_leases(leases or {})
    socket_path = work / SOCKET
    socket_path.unlink(missing_ok=True)
    server = _Server(str(socket_path), _Handler)
    server.lab = lab

    def terminate(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        lab.start_matchbox()
        info = {
            "pid": os.getpid(),
            "netns": f"/proc/{os.getpid()}/ns/net",
            "socket": str(socket_path),
            "addresses": sorted(set(addresses)),
            "matchbox": {
                "http": lab.http,
                "rpc": f"127.0.0.1:{MATCHBOX_RPC_PORT}",
                "tls": str(lab.tls_dir),
                "data": str(work / "matchbox" / "data"),
            },
            "started": _now(),
        }
        (work / LAB_FILE).write_text(json.dumps(info, indent=2) + "\n")
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        lab.stop()
        socket_path.unlink(missing_ok=True)
        (work / LAB_FILE).unlink(missing_ok=True)
        (work / CHILDREN_FILE).unlink(missing_ok=True)


# --------------------------------------------------------------------------- the host's side


@dataclass
class LabHandle:
    """The lab seen from outside its namespace."""

    work: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    @property
    def info(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.work / LAB_FILE).read_text())
        return loaded

    @property
    def socket(self) -> Path:
        return self.work / SOCKET

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the lab's network namespace (the mount namespace stays ours)."""
        return ["nsenter", f"--net={self.netns}", "--", *argv]

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"engine.lab" in cmdline

    def request(self, op: str, on_line: Callable[[str], None] | None = None, **args: Any) -> Any:
        return lab_request(self.socket, op, on_line, **args)

    def matchbox(self, macs: Sequence[str] = ()) -> dict[str, Any]:
        """The lab's Matchbox (dump_matchbox), with what it serves each of ``macs`` besides."""
        result: dict[str, Any] = self.request("matchbox", macs=list(macs))
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("status")
        return result

    def lease(self, leases: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """The DHCP leases the lab gives, ``leases`` (MAC -> ADDRESS/PREFIX) among them."""
        result: dict[str, dict[str, str]] = self.request("lease", leases=dict(leases))
        return result

    def upgrade_fault(self, machine: str, error: str | None) -> dict[str, str]:
        """Make the machine's kubeadm upgrade fail with ``error`` (the last line kubeadm
        prints) until cleared with None (engine.upgrade_service); every fault set."""
        result: dict[str, str] = self.request("upgrade-fault", machine=machine, error=error)
        return result

    def kubectl(
        self, *args: str, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        admin = self.status().get("admin_conf")
        if not admin:
            raise RuntimeError("the lab has no control plane")
        argv = [str(require_tool("kubernetes", "kubectl")), f"--kubeconfig={admin}", *args]
        done = subprocess.run(
            self.wrap(argv), input=input_text, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def boots(self) -> list[dict[str, Any]]:
        path = self.work / BOOTS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_tails(self, lines: int = 60) -> str:
        out = []
        for log in sorted(self.work.joinpath("logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- last lines of {log} ---\n" + "\n".join(text))
        return "\n".join(out)

    def children_alive(self) -> list[int]:
        path = self.work / CHILDREN_FILE
        if not path.exists():
            return []
        pids = [int(p) for p in path.read_text().split()]
        return [p for p in pids if Path(f"/proc/{p}").exists()]

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM to the lab, which stops what it started; whatever it left (a lab that was
        killed) is ended by its recorded pid."""
        leftovers = [p for p in self.children_alive()]
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                if self.process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(0.5)
                else:
                    time.sleep(0.5)
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        for pid in leftovers:
            if Path(f"/proc/{pid}").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def lab_request(
    socket_path: Path, op: str, on_line: Callable[[str], None] | None = None, **args: Any
) -> Any:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(600)
        connection.connect(str(socket_path))
        connection.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
        with connection.makefile("rb") as answers:
            for raw in answers:
                message = json.loads(raw)
                if "line" in message:
                    if on_line is not None:
                        on_line(str(message["line"]))
                    continue
                if not message.get("ok"):
                    raise RuntimeError(f"lab {op}: {message.get('error')}")
                return message.get("result")
    raise RuntimeError(f"lab {op}: no answer")


def _tests_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def start_lab(
    work: Path,
    addresses: Sequence[str],
    timeout: float = 60,
    leases: Mapping[str, str] | None = None,
) -> LabHandle:
    """Start the lab under ``unshare --net`` and wait until it serves. ``leases``: the DHCP
    leases of the machines without a static address, MAC -> ADDRESS/PREFIX
    (engine.stacks.lease_addresses)."""
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    (work / LAB_FILE).unlink(missing_ok=True)
    env = {**os.environ, HOST_NETNS_VARIABLE: os.readlink("/proc/self/ns/net")}
    with (logs / "lab.log").open("ab") as log:
        process = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--",
                *module_argv(
                    "engine.lab",
                    "serve",
                    "--work",
                    str(work),
                    *(f"--lease={mac}={spec}" for mac, spec in sorted((leases or {}).items())),
                    *addresses,
                ),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=_repo(),
        )
    handle = LabHandle(work, process.pid, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = (logs / "lab.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the lab exited {process.returncode}:\n{tail}")
        if (work / LAB_FILE).exists():
            try:
                if handle.request("ping") == process.pid:
                    return handle
            except (OSError, RuntimeError, json.JSONDecodeError):
                pass
        if time.monotonic() > deadline:
            handle.stop()
            raise RuntimeError(f"the lab did not come up within {timeout} s\n{handle.log_tails()}")
        time.sleep(0.2)


def running_lab(work: Path) -> LabHandle | None:
    """The lab kept in ``work`` by an earlier command, if it still runs."""
    try:
        info = json.loads((work / LAB_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    handle = LabHandle(work, int(info["pid"]))
    return handle if handle.alive() else None


def _repo() -> Path:
    return _tests_dir().parent


@contextlib.contextmanager
def lab_running(work: Path, addresses: Sequence[str]) -> Iterator[LabHandle]:
    handle = start_lab(work, addresses)
    try:
        yield handle
    finally:
        handle.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.lab")
    sub = parser.add_subparsers(dest="command", required=True)
    serving = sub.add_parser("serve", help="run the lab (inside unshare --net)")
    serving.add_argument("--work", type=Path, required=True)
    serving.add_argument(
        "--lease", action="append", default=[], help="MAC=ADDRESS/PREFIX, a machine's DHCP lease"
    )
    serving.add_argument("addresses", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "serve":
        leases = {mac: spec for mac, _, spec in (lease.partition("=") for lease in args.lease)}
        serve(args.work, args.addresses, leases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
