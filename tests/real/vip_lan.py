"""Three controllers on one LAN, for the API endpoint's virtual IP to move between them.

Each controller is a network namespace of its own (control_plane.netns) whose `eth0` is one
end of a veth pair; the other ends hang on one bridge in a fourth namespace, the LAN, which
also carries a client address. Nothing touches the host's network. The addresses are
TEST-NET-1 (192.0.2.0/24, RFC 5737: for documentation, never routed).

On each controller run the real counterparts: an etcd member of one three-member cluster
(plain HTTP between members: the test is about quorum, not etcd's TLS), a kube-apiserver over
its own member (TLS from a CA made here; RBAC, so /readyz is read as the anonymous user the
health check is), and Debian's keepalived with the keepalived.conf and health check that
ignition/vip.py writes on a controller (only the check's paths differ: the CA file and the
script's place on this machine).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from control_plane.netns import NetworkNamespace, start_network_namespace
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from real_process import RealProcess, start
from tool_cache import require_tool

from ignition.assets import FILES
from ignition.vip import keepalived_conf, readyz_url
from stackconfig.vip import Vip

SUBNET = ipaddress.IPv4Network("192.0.2.0/24")
VIP_ADDRESS = "192.0.2.10"
CLIENT_ADDRESS = "192.0.2.2"
NAMES = ("c1", "c2", "c3")
API_PORT = 6443
ROUTER_ID = 51
INTERFACE = "eth0"


def node_address(index: int) -> str:
    return f"192.0.2.{11 + index}"


@dataclass
class Controller:
    name: str
    address: str
    namespace: NetworkNamespace
    port: str  # its veth end on the LAN's bridge
    etcd: RealProcess | None = None
    apiserver: RealProcess | None = None
    keepalived: RealProcess | None = None
    apiserver_argv: list[str] = field(default_factory=list)

    def holds_vip(self) -> bool:
        shown = self.namespace.run(["ip", "-4", "-o", "address", "show", "dev", INTERFACE])
        return f" {VIP_ADDRESS}/32 " in shown.stdout


@dataclass
class Lan:
    work: Path
    lan: NetworkNamespace
    controllers: list[Controller]
    ca_file: Path
    processes: list[RealProcess] = field(default_factory=list)

    def holders(self) -> list[str]:
        return [c.name for c in self.controllers if c.holds_vip()]

    def controller(self, name: str) -> Controller:
        return next(c for c in self.controllers if c.name == name)

    def client_readyz(self, timeout: float = 1.0) -> bool:
        """The client on the LAN asks the VIP's /readyz, as a kubelet or kubectl would."""
        probe = [
            "curl",
            "--silent",
            "--max-time",
            str(timeout),
            "--cacert",
            str(self.ca_file),
            f"https://{VIP_ADDRESS}:{API_PORT}/readyz",
        ]
        return self.lan.run(probe, timeout=timeout + 5).stdout.strip() == "ok"

    def wait_for(self, what: str, condition: Callable[[], bool], seconds: float) -> float:
        """Poll `condition` until it holds; the seconds it took (raises past `seconds`)."""
        began = time.monotonic()
        while not condition():
            if time.monotonic() - began > seconds:
                raise AssertionError(f"not within {seconds} s: {what}\n{self.logs()}")
            time.sleep(0.1)
        return time.monotonic() - began

    def kill_apiserver(self, name: str) -> None:
        process = self.controller(name).apiserver
        assert process is not None
        os.killpg(process.process.pid, signal.SIGKILL)
        process.process.wait(10)

    def restart_apiserver(self, name: str) -> None:
        controller = self.controller(name)
        controller.apiserver = _start_apiserver(self, controller)

    def cut_off(self, name: str) -> None:
        """Take the controller's port off the bridge: its link stays up (keepalived sees no
        interface fault), but nothing reaches it or leaves it."""
        done = self.lan.run(["ip", "link", "set", self.controller(name).port, "nomaster"])
        assert done.returncode == 0, done.stderr

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        """kubectl on the LAN, through the VIP, as the cluster's admin."""
        argv = [str(require_tool("kubernetes", "kubectl")), f"--kubeconfig={self.kubeconfig}",
                "--request-timeout=20s", *args]  # fmt: skip
        done = subprocess.run(
            self.lan.wrap(argv), input=input_text, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    @property
    def kubeconfig(self) -> Path:
        path = self.work / "admin.kubeconfig"
        if not path.exists():
            pki = self.ca_file.parent
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "lan", "cluster": {
                    "server": f"https://{VIP_ADDRESS}:{API_PORT}",
                    "certificate-authority": str(self.ca_file)}}],
                "users": [{"name": "admin", "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key")}}],
                "contexts": [{"name": "lan", "context": {"cluster": "lan", "user": "admin"}}],
                "current-context": "lan",
            }  # fmt: skip
            path.write_text(json.dumps(config))
        return path

    def etcdctl(self, name: str, *args: str) -> str:
        argv = [str(require_tool("etcd", "etcdctl")), "--endpoints=http://127.0.0.1:2379", *args]
        done = self.controller(name).namespace.run(argv, timeout=60)
        assert done.returncode == 0, f"etcdctl {' '.join(args)} on {name}: {done.stderr}"
        return done.stdout

    def lose_every_controller(self) -> None:
        """Every controller's keepalived, API server and etcd stopped, its etcd data gone."""
        for controller in self.controllers:
            for process in (controller.keepalived, controller.apiserver, controller.etcd):
                if process is not None:
                    process.stop()
            shutil.rmtree(self.data_dir(controller.name))

    def data_dir(self, name: str) -> Path:
        return self.work / name / "etcd"

    def start_etcd(self, name: str, members: Sequence[str], state: str) -> None:
        controller = self.controller(name)
        argv = _etcd_argv(controller, self.data_dir(name), members, state)
        controller.etcd = start(
            f"etcd-{name}-again",
            controller.namespace.wrap(argv),
            self.work / "logs",
            lambda: controller.namespace.port_open("127.0.0.1", 2379),
            timeout_seconds=60,
            env=_no_proxy(),
        )
        self.processes.append(controller.etcd)

    def start_control_plane(self, name: str) -> None:
        """The controller's API server (over its etcd) and keepalived."""
        controller = self.controller(name)
        controller.apiserver = _start_apiserver(self, controller)
        controller.keepalived = _start_keepalived(self, controller, again=True)

    def logs(self) -> str:
        return "\n".join(p.log_tail(30) for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for controller in self.controllers:
            controller.namespace.stop()
        self.lan.stop()


def _run(namespace: NetworkNamespace, *argv: str) -> None:
    done = namespace.run(list(argv))
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")


def _wire(work: Path) -> tuple[NetworkNamespace, list[Controller]]:
    logs = work / "logs"
    lan = start_network_namespace([], logs / "lan")
    controllers: list[Controller] = []
    try:
        _run(lan, "ip", "link", "add", "br0", "type", "bridge")
        _run(lan, "ip", "address", "add", f"{CLIENT_ADDRESS}/{SUBNET.prefixlen}", "dev", "br0")
        _run(lan, "ip", "link", "set", "br0", "up")
        for index, name in enumerate(NAMES):
            namespace = start_network_namespace([], logs / name)
            controller = Controller(name, node_address(index), namespace, f"port-{name}")
            controllers.append(controller)
            pid = str(namespace.holder.process.pid)
            _run(lan, "ip", "link", "add", controller.port, "type", "veth", "peer", "name",
                 INTERFACE, "netns", pid)  # fmt: skip
            _run(lan, "ip", "link", "set", controller.port, "master", "br0", "up")
            _run(namespace, "ip", "address", "add", f"{controller.address}/24", "dev", INTERFACE)
            _run(namespace, "ip", "link", "set", INTERFACE, "up")
    except BaseException:
        for controller in controllers:
            controller.namespace.stop()
        lan.stop()
        raise
    return lan, controllers


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pki(pki: Path) -> None:
    """A CA, one serving certificate for every API server (their addresses, the VIP and
    loopback) and the service-account key pair."""
    pki.mkdir(parents=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    addresses = [VIP_ADDRESS, "127.0.0.1", *(node_address(i) for i in range(len(NAMES)))]
    sans = [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([*sans, x509.DNSName("kubernetes")]), False)
        .sign(ca_key, hashes.SHA256())
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "lan-admin"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(admin_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (pki / "admin.crt").write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    (pki / "admin.key").write_bytes(_pem_key(admin_key))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.key").write_bytes(_pem_key(key))
    (pki / "sa.key").write_bytes(_pem_key(sa_key))
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def peer_url(name: str) -> str:
    return f"http://{node_address(NAMES.index(name))}:2380"


def _etcd_argv(
    controller: Controller, data_dir: Path, members: Sequence[str] = NAMES, state: str = "new"
) -> list[str]:
    cluster = ",".join(f"{n}={peer_url(n)}" for n in members)
    address = controller.address
    return [
        str(require_tool("etcd", "etcd")),
        f"--name={controller.name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://127.0.0.1:2379,http://{address}:2379",
        f"--advertise-client-urls=http://{address}:2379",
        f"--listen-peer-urls=http://{address}:2380",
        f"--initial-advertise-peer-urls=http://{address}:2380",
        f"--initial-cluster={cluster}",
        f"--initial-cluster-state={state}",
        "--initial-cluster-token=vip-lan",
    ]


def _apiserver_argv(controller: Controller, pki: Path, cert_dir: Path) -> list[str]:
    return [
        str(require_tool("kubernetes", "kube-apiserver")),
        "--etcd-servers=http://127.0.0.1:2379",
        "--bind-address=0.0.0.0",
        f"--secure-port={API_PORT}",
        f"--advertise-address={controller.address}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--authorization-mode=Node,RBAC",
        f"--cert-dir={cert_dir}",
    ]


def _local_readyz(lan: Lan, controller: Controller) -> bool:
    probe = ["curl", "--silent", "--max-time", "2", "--cacert", str(lan.ca_file)]
    done = controller.namespace.run([*probe, readyz_url(API_PORT)], timeout=10)
    return done.stdout.strip() == "ok"


def _start_apiserver(lan: Lan, controller: Controller) -> RealProcess:
    process = start(
        f"kube-apiserver-{controller.name}",
        controller.namespace.wrap(controller.apiserver_argv),
        lan.work / "logs",
        lambda: _local_readyz(lan, controller),
        timeout_seconds=240,
        env=_no_proxy(),
    )
    lan.processes.append(process)
    return process


def _no_proxy() -> dict[str, str]:
    return {key: "" for key in os.environ if key.lower().endswith("_proxy")}


def keepalived_argv(conf: Path, run_dir: Path) -> list[str]:
    """Debian's keepalived in the foreground, VRRP only, its pid files its own (the three
    share this machine's mount namespace)."""
    return [
        "keepalived",
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--vrrp",
        f"--use-file={conf}",
        f"--pid={run_dir / 'keepalived.pid'}",
        f"--vrrp_pid={run_dir / 'vrrp.pid'}",
    ]


def _start_keepalived(lan: Lan, controller: Controller, again: bool = False) -> RealProcess:
    vip = Vip(address=ipaddress.IPv4Address(VIP_ADDRESS), interface=INTERFACE,
              router_id=ROUTER_ID)  # fmt: skip
    check_script = Path(str(FILES / "vip" / "check-apiserver"))
    run_dir = lan.work / controller.name / "keepalived"
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "keepalived.conf"
    check = f"{check_script} {lan.ca_file} {readyz_url(API_PORT)}"
    conf.write_text(keepalived_conf(vip, check))
    process = start(
        f"keepalived-{controller.name}{'-again' if again else ''}",
        controller.namespace.wrap(keepalived_argv(conf, run_dir)),
        lan.work / "logs",
        lambda: True,
        env=_no_proxy(),
    )
    lan.processes.append(process)
    return process


def start_lan(work: Path) -> Lan:
    """The LAN, its three controllers' etcd members, API servers and keepalived; stop it with
    `Lan.stop` (done here too when something does not come up)."""
    lan_ns, controllers = _wire(work)
    pki = work / "pki"
    _write_pki(pki)
    lan = Lan(work, lan_ns, controllers, pki / "ca.crt")
    logs = work / "logs"
    try:
        for controller in controllers:
            # Members wait for each other: each is ready once it listens for clients.
            argv = controller.namespace.wrap(_etcd_argv(controller, lan.data_dir(controller.name)))
            controller.etcd = start(
                f"etcd-{controller.name}",
                argv,
                logs,
                lambda c=controller: c.namespace.port_open("127.0.0.1", 2379),  # type: ignore[misc]
                timeout_seconds=60,
                env=_no_proxy(),
            )
            lan.processes.append(controller.etcd)
        for controller in controllers:
            controller.apiserver_argv = _apiserver_argv(
                controller, pki, work / controller.name / "apiserver-certs"
            )
            controller.apiserver = _start_apiserver(lan, controller)
        for controller in controllers:
            controller.keepalived = _start_keepalived(lan, controller)
    except BaseException:
        lan.stop()
        raise
    return lan


def holders_over(lan: Lan, seconds: float, names: Sequence[str]) -> set[tuple[str, ...]]:
    """The sets of holders seen among `names`, polled for `seconds`."""
    seen: set[tuple[str, ...]] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(tuple(h for h in lan.holders() if h in names))
        time.sleep(0.3)
    return seen
