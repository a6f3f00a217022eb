"""A real control plane from the files kubeadm writes for the init controller.

`start_control_plane` lays out the init controller's scratch root (its Ignition, the shared
PKI installed as the setup service does), runs kubeadm's init phases that write files, and
starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler from the static Pod
manifests (control_plane.static_pods), inside a network namespace whose loopback carries
the init controller's address and the API endpoint's (control_plane.netns). Every command
that talks to the cluster (kubectl, helm, kubeadm, the program's scripts) runs in that
namespace through `ControlPlane.wrap`. `ControlPlane.stop` ends every process and the
namespace; `RealProcess.log_tail` is what a failing test attaches.

With `kubelet=True` the components are not started one by one: the kubelet stand-in
(control_plane.kubelet_standin) runs the manifests as a kubelet would, posts their mirror Pods
and the Node, and restarts a component whose manifest changes (what `kubeadm upgrade apply`
needs); `ControlPlane.kubelet` is its handle.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from real_process import RealProcess, start
from tool_cache import require_tool, tool_bin, tool_version

from control_plane.kubeadm import MANIFESTS_DIR, KubeadmRun, config_args, kubeadm, machine_root
from control_plane.kubelet_standin import StandInConfig
from control_plane.netns import NetworkNamespace, start_network_namespace
from control_plane.program_output import ProgramOutput
from control_plane.static_pods import StaticPod, Translation, read_static_pods

# The init phases that only write files, in `kubeadm init`'s order
# (kubernetes `cmd/kubeadm/app/cmd/init.go` newCmdInit: preflight, certs, kubeconfig, etcd,
# control-plane, kubelet-start, ...). preflight checks this host, and kubelet-start needs a
# kubelet: neither runs here.
FILE_PHASES = (
    ("certs", "all"),
    ("kubeconfig", "all"),
    ("etcd", "local"),
    ("control-plane", "all"),
)
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The ports the components serve on, kubeadm's (kubernetes `cmd/kubeadm/app/constants`
# KubeControllerManagerPort 10257, KubeSchedulerPort 10259) where the manifest names none.
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
# The tool with the control plane and kubeadm of the previous minor (scripts/tools), on which
# the upgrade test founds its cluster.
PREVIOUS_RELEASE = "kubernetes-previous"
REAL_TESTS = Path(__file__).resolve().parents[1]


def kubectl_binary() -> Path:
    return require_tool("kubernetes", "kubectl")


def _url_host_port(url_list: str | None) -> tuple[str, int]:
    assert url_list, "no URL"
    host, _, port = url_list.split(",")[-1].partition("://")[2].rpartition(":")
    return host, int(port)


@dataclass
class ControlPlane:
    output: ProgramOutput
    root: Path
    work: Path
    namespace: NetworkNamespace
    ca_file: Path
    # The program's admin kubeconfig (its `kubeconfig` stack output), as written.
    program_kubeconfig: Path
    # What kubectl here uses: the program's, unless its certificate is not valid now (then
    # kubeadm's own admin.conf of the init controller; `operator_note` says why).
    admin_kubeconfig: Path
    operator_note: str = ""
    phases: list[KubeadmRun] = field(default_factory=list)
    processes: list[RealProcess] = field(default_factory=list)
    pods: dict[str, StaticPod] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    # The kubelet stand-in, when the plane was started with one.
    kubelet: KubeletStandIn | None = None
    # The tool (scripts/tools) whose kubeadm and control plane founded the cluster.
    release_tool: str = "kubernetes"

    @property
    def server(self) -> str:
        return f"https://{self.output.stack.cluster.api_endpoint}"

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return self.namespace.wrap(argv)

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input_text: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            str(kubectl_binary()),
            f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            "--request-timeout=30s",
            *args,
        ]
        done = subprocess.run(
            self.wrap(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def apply(self, objects: Sequence[dict[str, Any]], *extra: str) -> str:
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        return self.kubectl("apply", "-f", "-", *extra, input_text=json.dumps(document)).stdout

    def anonymous_kubeconfig(self) -> Path:
        """The cluster (server, CA) and no user: what a credential given on the command line
        (`--token`) completes."""
        path = self.work / "anonymous.kubeconfig"
        if not path.exists():
            cluster = {"server": self.server, "certificate-authority": str(self.ca_file)}
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": cluster}],
                "contexts": [{"name": "cluster", "context": {"cluster": "cluster"}}],
                "current-context": "cluster",
            }
            path.write_text(yaml.safe_dump(config))
        return path

    def init_phase(self, *phase: str) -> KubeadmRun:
        """An API-talking `kubeadm init phase` on the init controller's root, as `kubeadm init`
        runs it (its default --kubeconfig, /etc/kubernetes/admin.conf)."""
        run = kubeadm(
            ["init", "phase", *phase, *config_args()],
            rootfs=self.root,
            wrap=self.wrap,
            binary=require_tool(self.release_tool, "kubeadm"),
        )
        self.phases.append(run)
        return run

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.namespace.stop()

    def check_alive(self) -> None:
        dead = [p for p in self.processes if not p.alive()]
        assert not dead, "exited: " + "\n".join(p.log_tail() for p in dead)


@dataclass(frozen=True)
class KubeletStandIn:
    process: RealProcess
    config: StandInConfig

    def events(self) -> list[dict[str, Any]]:
        """What it did, in order (control_plane.kubelet_standin StandIn.event)."""
        if not self.config.events.exists():
            return []
        return [json.loads(line) for line in self.config.events.read_text().splitlines()]

    def log_tails(self, lines: int = 60) -> str:
        """Its own log and each component's."""
        tails = [self.process.log_tail(lines)]
        for log in sorted(self.config.logs.glob("*.log")):
            if log.stem in COMPONENTS:
                text = log.read_text(errors="replace").splitlines()[-lines:]
                tails.append(f"--- last lines of {log} ---\n" + "\n".join(text))
        return "\n".join(tails)


def standin_binaries() -> dict[str, dict[str, str]]:
    """Image tag -> component -> binary: the tool "kubernetes"'s release, and the previous
    minor's when its control plane is built (scripts/tools kubernetes-previous)."""
    binaries = {
        tool_version("kubernetes"): {
            name: str(require_tool("kubernetes", name)) for name in COMPONENTS[1:]
        }
    }
    previous = {name: tool_bin(PREVIOUS_RELEASE, name) for name in COMPONENTS[1:]}
    if all(previous.values()):
        binaries[tool_version(PREVIOUS_RELEASE)] = {k: str(v) for k, v in previous.items()}
    return binaries


def start_kubelet_standin(
    output: ProgramOutput,
    root: Path,
    namespace: NetworkNamespace,
    logs: Path,
    ready: Callable[[], bool],
    kubelet_version: str,
) -> KubeletStandIn:
    """The kubelet stand-in for the init controller, started in its network namespace; returns
    once `ready()` (every component answers)."""
    init = output.stack.init_controller
    assert init.address is not None, "the init controller needs an address of its own"
    config = StandInConfig(
        root=root,
        manifests=root / MANIFESTS_DIR.lstrip("/"),
        node=init.name,
        node_address=str(init.address.ip),
        kubeconfig=root / "etc/kubernetes/kubelet.conf",
        logs=logs,
        events=logs / "kubelet-standin.events.jsonl",
        binaries=standin_binaries(),
        etcd_binary=str(require_tool("etcd", "etcd")),
        # The kubelet a machine of the stack runs before any upgrade.
        kubelet_version=kubelet_version,
    )
    config_file = logs / "kubelet-standin.json"
    config_file.write_text(config.to_json())
    argv = [sys.executable, "-m", "control_plane.kubelet_standin", str(config_file)]
    env = {**_no_proxy(), "PYTHONPATH": str(REAL_TESTS), "PYTHONUNBUFFERED": "1"}
    process = start(
        "kubelet-standin", namespace.wrap(argv), logs, ready, timeout_seconds=240, env=env
    )
    return KubeletStandIn(process, config)


def namespace_addresses(output: ProgramOutput) -> set[str]:
    """The init controller's own address and the API endpoint's host."""
    addresses = {output.stack.cluster.api_host}
    init = output.stack.init_controller
    if init.address is not None:
        addresses.add(str(init.address.ip))
    return addresses


def start_control_plane(
    output: ProgramOutput,
    work: Path,
    prepare: Callable[[Path], None] | None = None,
    kubelet: bool = False,
    release_tool: str = "kubernetes",
) -> ControlPlane:
    """The init controller's control plane, started from kubeadm's output; stop it with
    `ControlPlane.stop` (done here too when a component does not come up). `prepare` gets the
    machine's root once kubeadm has written its files, before anything starts (a restore of
    etcd's data directory, as a reinstalled controller's does before its etcd starts).
    `kubelet`: the kubelet stand-in runs the components (see the module). `release_tool`: the
    tool (scripts/tools) whose kubeadm writes the files and whose control plane runs; the stack
    must name its release (control_plane.stacks for_release)."""
    init = output.init_controller
    root = machine_root(init, work / f"{init.name}-root")
    ca_file = work / "ca.crt"
    ca_file.write_bytes(init.shared_pki()["ca.crt"].contents)
    admin = work / "program-admin.kubeconfig"
    admin.write_text(output.admin_kubeconfig)
    admin.chmod(0o600)
    logs = work / "logs"
    namespace = start_network_namespace(namespace_addresses(output), logs)
    plane = ControlPlane(
        output, root, work, namespace, ca_file, admin, admin, release_tool=release_tool
    )
    kubeadm_binary = require_tool(release_tool, "kubeadm")
    try:
        for phase in FILE_PHASES:
            plane.phases.append(
                kubeadm(
                    ["init", "phase", *phase, *config_args()], rootfs=root, binary=kubeadm_binary
                )
            )
        if prepare is not None:
            prepare(root)
        plane.pods = pods = read_static_pods(root)
        translation = Translation(root)
        binaries = {
            "etcd": require_tool("etcd", "etcd"),
            **{name: require_tool(release_tool, name) for name in COMPONENTS[1:]},
        }
        etcd_host, etcd_port = _url_host_port(pods["etcd"].flag("listen-client-urls"))
        api_host = pods["kube-apiserver"].flag("advertise-address") or "127.0.0.1"
        api_port = int(pods["kube-apiserver"].flag("secure-port") or 6443)
        readiness = {
            "etcd": lambda: namespace.port_open(etcd_host, etcd_port),
            "kube-apiserver": lambda: _readyz(namespace, f"https://{api_host}:{api_port}", ca_file),
            "kube-controller-manager": lambda: namespace.port_open(
                "127.0.0.1",
                int(pods["kube-controller-manager"].flag("secure-port") or CONTROLLER_MANAGER_PORT),
            ),
            "kube-scheduler": lambda: namespace.port_open(
                "127.0.0.1", int(pods["kube-scheduler"].flag("secure-port") or SCHEDULER_PORT)
            ),
        }
        for name in COMPONENTS:
            plane.argv[name] = translation.argv(pods[name], binaries[name])
        if kubelet:
            # It starts them all at once, as a kubelet does; ready once every one answers.
            # Its Node says the kubelet of the founding release, as a machine's before any
            # upgrade (the tool "kubelet" is the tool "kubernetes"'s release).
            plane.kubelet = start_kubelet_standin(
                output,
                root,
                namespace,
                logs,
                lambda: all(readiness[n]() for n in COMPONENTS),
                kubelet_version=tool_version(release_tool),
            )
            plane.processes.append(plane.kubelet.process)
        else:
            for name in COMPONENTS:
                plane.processes.append(
                    start(
                        name,
                        namespace.wrap(plane.argv[name]),
                        logs,
                        readiness[name],
                        timeout_seconds=180,
                        env=_no_proxy(),
                    )
                )
        # The first phase of `kubeadm init` that talks to the API server; its client binds
        # admin.conf's group kubeadm:cluster-admins to cluster-admin on the way
        # (`cmd/kubeadm/app/cmd/init.go` initData.Client ->
        # `cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go` EnsureAdminClusterRoleBinding).
        plane.init_phase("upload-config", "all")
        problem = certificate_problem(output.admin_kubeconfig)
        if problem:
            plane.operator_note = f"the program's admin kubeconfig: {problem}"
            plane.admin_kubeconfig = root / "etc/kubernetes/admin.conf"
    except BaseException:
        plane.stop()
        raise
    return plane


@contextmanager
def running_control_plane(
    output: ProgramOutput, work: Path, kubelet: bool = False, release_tool: str = "kubernetes"
) -> Iterator[ControlPlane]:
    """`start_control_plane` for a `with` block: stopped on leaving it, when every process it
    started must have ended."""
    plane = start_control_plane(output, work, kubelet=kubelet, release_tool=release_tool)
    started = [*plane.processes, plane.namespace.holder]
    try:
        yield plane
    finally:
        plane.stop()
        assert not any(p.alive() for p in started)


def certificate_problem(kubeconfig: str, now: datetime.datetime | None = None) -> str:
    """Why the client certificate of a kubeconfig's user cannot authenticate now ("" if it can:
    it is inside its validity period)."""
    (user,) = yaml.safe_load(kubeconfig)["users"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))
    now = now or datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        when = "%Y-%m-%d %H:%M"
        return (
            f"its certificate ({cert.subject.rfc4514_string()}) is valid from "
            f"{cert.not_valid_before_utc:{when}} to {cert.not_valid_after_utc:{when}} UTC,"
            f" and it is {now:{when}} UTC"
        )
    return ""


def _readyz(namespace: NetworkNamespace, server: str, ca_file: Path) -> bool:
    """The API server's /readyz answers ok (anonymous may read it: the system:public-info-viewer
    ClusterRole, kubernetes `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`)."""
    probe = ["curl", "--silent", "--fail", "--max-time", "5", "--cacert", str(ca_file)]
    return namespace.run([*probe, f"{server}/readyz"], timeout=15).stdout.strip() == "ok"


def _no_proxy() -> dict[str, str]:
    """No proxy settings: every component talks inside the namespace only."""
    return {key: "" for key in os.environ if key.lower().endswith("_proxy")}
