"""Recording stand-ins for the commands the setup service runs against the real system.

One program, installed in a simulated machine's PATH under each command's name: rpm,
rpm-ostree, kubeadm, kubectl, systemctl, reboot, crictl, curl, chcon and selinuxenabled.
Every call is appended to the machine's call log (one record a line) with the setup status
file as it reads at that moment.
Its outcome comes from the machine's fault plan (succeed, fail, hang, or kill the whole boot
before, inside or after its state change), and its effect is modelled on the real command:
rpm-ostree stages deployments that a clean reboot boots, kubeadm writes what it writes under
/etc/kubernetes and /var/lib/etcd (the simulated machine's, bind-mounted there) and changes the
fake cluster (nodes, etcd members, tokens) that kubectl reads. An invocation the model does
not know is logged as "unmodeled" and fails, so that the scripts cannot drift unnoticed.

A boot runs it a dozen times, so it starts fast: `python -I -S`, its module byte-compiled, and
no module that takes long to import (json, pathlib, typing, re); its state files are Python
literals (`repr`, read back by `eval` with no builtins).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    JSON = dict[str, Any]

STATUS_FILE = "/var/lib/stubernetes/status"
K8S = "/etc/kubernetes"
PKI = K8S + "/pki"
MANIFESTS = K8S + "/manifests"
ETCD_DATA = "/var/lib/etcd"
KUBELET_CONF = K8S + "/kubelet.conf"
BOOTSTRAP_CONF = K8S + "/bootstrap-kubelet.conf"
ADMIN_CONF = K8S + "/admin.conf"
ETCD_MANIFEST = MANIFESTS + "/etcd.yaml"
APISERVER_MANIFEST = MANIFESTS + "/kube-apiserver.yaml"
CONTROL_PLANE_MANIFESTS = (
    "kube-apiserver.yaml",
    "kube-controller-manager.yaml",
    "kube-scheduler.yaml",
)
# What kubeadm reuses when it finds it, and a control-plane join requires.
SHARED_CA = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)
LEAF_CERTS = (
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "front-proxy-client",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
)
KUBECONFIGS = ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf")
RESET_FILES = (*KUBECONFIGS, "kubelet.conf", "bootstrap-kubelet.conf")
STACK_TRACE_HINT = "To see the stack trace of this error execute with --v=5 or higher"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
UNIT_PACKAGES = {"kubelet.service": "kubelet", "crio.service": "cri-o"}


def read_text(path: str) -> str:
    with open(path) as file:
        return file.read()


def read_state(path: str) -> JSON:
    data: JSON = eval(read_text(path), {"__builtins__": {}})
    return data


def write_state(path: str, data: JSON) -> None:
    """Atomic, like every real state change it models: a kill never leaves half a file."""
    with open(path + ".tmp", "w") as file:
        file.write(repr(data) + "\n")
    os.replace(path + ".tmp", path)


def read_status() -> dict[str, str]:
    try:
        text = read_text(STATUS_FILE)
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)
    os.chmod(path, mode)


def exists(path: str) -> bool:
    return os.path.exists(path)


def is_nonempty_dir(path: str) -> bool:
    return os.path.isdir(path) and bool(os.listdir(path))


def clear_dir(path: str) -> None:
    import shutil

    if not os.path.isdir(path):
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


class Call:
    """One invocation: its place in the log, its fault, the machine and the cluster it changes."""

    def __init__(self, sim: str, name: str, args: list[str]) -> None:
        self.sim = sim
        self.name = name
        self.args = args
        self.key = call_key(name, args)
        self.machine = read_state(sim + "/machine.state")
        self.cluster = read_state(sim + "/cluster.state")
        counters = read_state(sim + "/counters.state")
        counters["calls"] += 1
        counters["keys"][self.key] = counters["keys"].get(self.key, 0) + 1
        write_state(sim + "/counters.state", counters)
        self.seq: int = counters["calls"]
        self.nth: int = counters["keys"][self.key]
        self.fault = self._fault(read_state(sim + "/plan.state"))
        self.steps_done: list[str] = []
        self.effect = "none"
        # The facts of the kubeadm config file this call was given (`--config`).
        self.config_facts: JSON = {}

    def _fault(self, plan: JSON) -> JSON:
        kill = plan.get("kill_call")
        if kill and kill["seq"] == self.seq:
            return dict(kill)
        queue = plan.get("faults", {}).get(self.key, [])
        if self.nth <= len(queue):
            fault: JSON = queue[self.nth - 1]
            return fault
        return {"do": "ok"}

    @property
    def facts(self) -> JSON:
        facts: JSON = {**self.machine["facts"], **self.config_facts}
        return facts

    def log(self, **fields: Any) -> None:
        record = {"seq": self.seq, "key": self.key, **fields}
        with open(self.sim + "/calls.log", "a") as log:
            log.write(repr(record) + "\n")

    def save(self) -> None:
        write_state(self.sim + "/machine.state", self.machine)
        write_state(self.sim + "/cluster.state", self.cluster)

    def step(self, name: str, last: bool = False) -> None:
        """A state change is complete (and saved); the fault plan may kill the boot right here."""
        self.save()
        self.steps_done.append(name)
        self.effect = "complete" if last else "partial"
        if self.fault.get("step") == name:
            if self.fault.get("do") == "kill-step":
                self.kill_boot(f"after step {name}")
            if self.fault.get("do") == "hang-step":
                self.log(end="hanging", where=f"after step {name}", effect=self.effect)
                time.sleep(3600)
            if self.fault.get("do") == "signal-step":
                self.die(f"after step {name}")

    def die(self, where: str) -> NoReturn:
        """This command alone is killed by a signal (the OOM killer's SIGKILL, say): the boot
        goes on, and whoever ran it sees status 128+N."""
        number = int(self.fault.get("signal", signal.SIGKILL))
        self.log(
            end="signal", where=where, rc=128 + number, effect=self.effect, steps=self.steps_done
        )
        os.kill(os.getpid(), number)
        raise SystemExit(128 + number)

    def kill_boot(self, where: str) -> NoReturn:
        self.log(end="killed", where=where, effect=self.effect, steps=self.steps_done)
        with open(self.sim + "/killed", "w") as marker:
            marker.write(f"call {self.seq} {self.key}: {where}\n")
        # The unit's command (the runner, its phases) is one process group; a command under
        # `timeout` is in timeout's. This one goes last.
        groups = [g for g in (exec_start_group(), os.getpgrp()) if g is not None]
        for pgid in dict.fromkeys(groups):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        raise SystemExit(137)

    def node_ready(self, node: JSON) -> bool:
        if node.get("kubelet") == "running":
            return True
        stopped = float(node.get("stopped_at", 0.0))
        return time.time() - stopped < float(self.cluster.get("grace_seconds", 0.0))

    def api_up(self) -> bool:
        return bool(self.cluster.get("initialized")) and self.cluster.get("api") == "up"


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def exec_start_group() -> int | None:
    """The process group of the unit's command: the ancestor that the boot wrapper started."""
    wrapper = int(os.environ["SIM_WRAPPER_PID"])
    pid = os.getpid()
    while pid > 1:
        parent = parent_pid(pid)
        if parent == wrapper:
            return os.getpgid(pid)
        pid = parent
    return None


def call_key(name: str, args: list[str]) -> str:
    words = [a for a in args if not a.startswith("-")]
    if name in ("kubeadm", "rpm-ostree", "crictl") and words:
        if name == "kubeadm" and words[:2] == ["init", "phase"]:
            return " ".join([name, *words[:3]])
        if name == "kubeadm" and words[:1] == ["certs"]:
            return " ".join([name, *words[:2]])
        return f"{name} {words[0]}"
    if name == "kubectl" and "get" in args:
        return " ".join([name, *args[args.index("get") : args.index("get") + 2]])
    if name == "systemctl" and words:
        return f"{name} {words[0]}"
    return name


def out(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def err(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- rpm, rpm-ostree


# Packages are name-version-release (NVR) strings. What the enabled repositories offer, as the
# stand-in models them: pkgs.k8s.io's and CRI-O's repositories of the cluster's minor (release
# 150500.1.1, as the openSUSE build service names them), Fedora's for the host tools.
KUBERNETES_PATCHES = 6
FEDORA_PACKAGES = {"conntrack-tools": ["1.4.8-2.fc42"]}


def available(call: Call) -> dict[str, list[str]]:
    """Each package's version-release strings, oldest first."""
    minor = call.facts["kubernetes_minor"]
    kubernetes = [f"{minor}.{patch}-150500.1.1" for patch in range(KUBERNETES_PATCHES)]
    return {
        "kubelet": kubernetes,
        "kubeadm": kubernetes,
        "kubectl": kubernetes,
        "kubernetes-cni": ["1.7.1-150500.1.1"],
        "cri-tools": [f"{minor}.0-150500.1.1"],
        "cri-o": [f"{minor}.{patch}-150500.1.1" for patch in range(3)],
        **FEDORA_PACKAGES,
    }


def nvr_name(nvr: str) -> str:
    return nvr.rsplit("-", 2)[0]


def matches(spec: str, nvr: str) -> bool:
    """rpm's and libdnf's reading of a package spec: NAME, NAME-VERSION or NAME-VERSION-RELEASE
    (rpm docs/man/rpm.8.scd, PACKAGE_NAME; libdnf's N, NEV and NEVR forms)."""
    name, version, _release = nvr.rsplit("-", 2)
    return spec in (name, f"{name}-{version}", nvr)


def resolve(call: Call, spec: str) -> list[str]:
    """The packages `rpm-ostree install SPEC` adds: the newest match, and kubelet's requirement
    on kubernetes-cni."""
    candidates = [f"{name}-{evr}" for name, evrs in available(call).items() for evr in evrs]
    found = [nvr for nvr in candidates if matches(spec, nvr)]
    if not found:
        return []
    newest = found[-1]
    cni = [f"kubernetes-cni-{available(call)['kubernetes-cni'][-1]}"]
    return [newest, *(cni if nvr_name(newest) == "kubelet" else [])]


def rpm(call: Call) -> int:
    args = call.args
    if args[:1] != ["-q"]:
        return unmodeled(call)
    quiet = "--quiet" in args
    specs = [a for a in args[1:] if not a.startswith("-")]
    booted = call.machine["deployments"]["booted"]["packages"]
    missing = [spec for spec in specs if not any(matches(spec, nvr) for nvr in booted)]
    if not quiet:
        out(*(nvr + ".x86_64" for spec in specs for nvr in booted if matches(spec, nvr)))
        out(*(f"package {spec} is not installed" for spec in missing))
    return len(missing)


def rpm_ostree(call: Call) -> int:
    deployments = call.machine["deployments"]
    staged = deployments["staged"]
    if call.args == ["status", "--pending-exit-77"]:
        out("State: idle", "Deployments:")
        if staged:
            out(f"  fedora-coreos {staged['id']} (staged)")
        out(f"● fedora-coreos {deployments['booted']['id']}")
        return 77 if staged else 0
    if call.args[:1] == ["install"]:
        flags = {a for a in call.args[1:] if a.startswith("-")}
        if flags - {"--idempotent", "--allow-inactive"}:
            return unmodeled(call)
        packages = [a for a in call.args[1:] if not a.startswith("-")]
        current = staged or deployments["booted"]
        requested = set(current["requested"])
        new = [p for p in packages if p not in requested]
        if not new:
            if "--idempotent" not in flags:
                err(f"error: Package/capability '{packages[0]}' is already requested")
                return 1
            out("No change.")
            return 0
        added = {spec: resolve(call, spec) for spec in new}
        not_found = [spec for spec, nvrs in added.items() if not nvrs]
        if not_found:
            err(f"error: Packages not found: {', '.join(not_found)}")
            return 1
        layered = sorted({nvr for nvrs in added.values() for nvr in nvrs})
        call.machine["next_deployment"] += 1
        deployments["staged"] = {
            "id": f"deployment-{call.machine['next_deployment']}",
            "requested": sorted(requested | set(new)),
            "packages": sorted(set(current["packages"]) | set(layered)),
        }
        call.step("stage", last=True)
        out("Staging deployment... done", "Added:", *(f"  {nvr}.x86_64" for nvr in layered))
        out('Changes queued for next boot. Run "systemctl reboot" to start a reboot')
        return 0
    return unmodeled(call)


# ----------------------------------------------------------------------------- systemctl, reboot


def request_reboot(call: Call) -> int:
    call.machine["reboot_requested"] = True
    with open(call.sim + "/reboot-requested", "w"):
        pass
    call.step("reboot-requested", last=True)
    return 0


def systemctl(call: Call) -> int:
    args = call.args
    if args == ["--no-block", "reboot"]:
        return request_reboot(call)
    words = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    units = call.machine["units"]
    if words[:1] == ["disable"] and not flags:
        for unit in words[1:]:
            if units.get(unit) == "enabled":
                err(f'Removed "/etc/systemd/system/multi-user.target.wants/{unit}".')
            units[unit] = "disabled"
        call.step("disable", last=True)
        return 0
    if words[:1] == ["enable"] and flags in ([], ["--now"]):
        booted = {nvr_name(nvr) for nvr in call.machine["deployments"]["booted"]["packages"]}
        for unit in words[1:]:
            package = UNIT_PACKAGES.get(unit)
            if package is None:
                return unmodeled(call)
            if package not in booted:
                err(f"Failed to enable unit: Unit file {unit} does not exist.")
                return 1
        for unit in words[1:]:
            if units.get(unit) != "enabled":
                err(
                    "Created symlink /etc/systemd/system/multi-user.target.wants/"
                    f"{unit} → /usr/lib/systemd/system/{unit}."
                )
            units[unit] = "enabled"
        if "--now" in flags and "kubelet.service" in words:
            call.machine["kubelet"]["running"] = True
        call.step("enable", last=True)
        return 0
    return unmodeled(call)


def reboot(call: Call) -> int:
    return request_reboot(call) if not call.args else unmodeled(call)


# -------------------------------------------------------------------------------------- kubectl


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def kubectl(call: Call) -> int:
    args = call.args
    kubeconfig = option(args, "--kubeconfig")
    output = option(args, "-o")
    words = [a for a in args if not a.startswith("-") and a not in (kubeconfig, output)]
    if words[:2] != ["get", "node"] or len(words) != 3 or output != "jsonpath={.metadata.labels}":
        return unmodeled(call)
    if kubeconfig is None or not exists(kubeconfig):
        err(f"error: stat {kubeconfig}: no such file or directory")
        return 1
    if call.fault.get("do") == "unreachable" or not call.api_up():
        endpoint = call.facts["endpoint"]
        err(
            f"The connection to the server {endpoint} was refused - "
            "did you specify the right host or port?"
        )
        return 1
    node = call.cluster["nodes"].get(words[2])
    if node is None:
        err(f'Error from server (NotFound): nodes "{words[2]}" not found')
        return 1
    # As `-o jsonpath` prints a map: compact JSON (label keys and values need no escaping).
    labels = node["labels"]
    out("{" + ",".join(f'"{k}":"{labels[k]}"' for k in sorted(labels)) + "}")
    return 0


# -------------------------------------------------------------------------------------- kubeadm


class KubeadmError(Exception):
    def __init__(self, phase: str, message: str) -> None:
        super().__init__(f"error execution phase {phase}: {message}")


def preflight_error(errors: list[str]) -> KubeadmError:
    return KubeadmError(
        "preflight",
        "[preflight] Some fatal errors occurred:\n"
        + "".join(f"\t{e}\n" for e in errors)
        + "[preflight] If you know what you are doing, you can make a check non-fatal with "
        "`--ignore-preflight-errors=...`",
    )


def unreachable(call: Call, phase: str, path: str) -> KubeadmError:
    endpoint = call.facts["endpoint"]
    return KubeadmError(
        phase,
        f'Get "https://{endpoint}{path}?timeout=10s": dial tcp {endpoint}: connect: '
        "connection refused",
    )


def kubelet_labels(call: Call) -> dict[str, str]:
    name = call.facts["node_name"]
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        **call.facts["node_labels"],
    }


def kubeconfig_text(call: Call, user: str) -> str:
    return (
        f"# stand-in kubeconfig: {user} at https://{call.facts['endpoint']}\n"
        f"# cluster CA {call.facts['ca_hash']}\n"
    )


def write_certs(call: Call, names: tuple[str, ...]) -> None:
    node = call.facts["node_name"]
    for name in names:
        for suffix, mode in ((".crt", 0o644), (".key", 0o600)):
            write_file(f"{PKI}/{name}{suffix}", f"stand-in {name}{suffix} of {node}\n", mode)


def write_manifests(names: tuple[str, ...]) -> None:
    for name in names:
        write_file(f"{MANIFESTS}/{name}", f"# stand-in static pod manifest {name}\n", 0o600)


def register_node(call: Call) -> None:
    """What the kubelet does once it has its credentials: create its Node, or adopt the old one.

    An existing Node keeps its labels: the kubelet only refreshes its default labels on it.
    """
    name = call.facts["node_name"]
    nodes = call.cluster["nodes"]
    labels = kubelet_labels(call)
    if name in nodes:
        old = nodes[name]
        defaults = {k: v for k, v in labels.items() if k not in call.facts["node_labels"]}
        old["labels"] = {**old["labels"], **defaults}
        old.update(kubelet="running", heartbeat_from=call.machine["incarnation"], adopted=True)
    else:
        nodes[name] = {
            "labels": labels,
            "taints": [],
            "kubelet": "running",
            "heartbeat_from": call.machine["incarnation"],
        }


def mark_control_plane(call: Call) -> None:
    node = call.cluster["nodes"][call.facts["node_name"]]
    node["labels"][CONTROL_PLANE_LABEL] = ""
    node["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    taint = {"effect": "NoSchedule", "key": CONTROL_PLANE_LABEL}
    node["taints"] = [taint, *(t for t in node["taints"] if t != taint)]


def peer_url(call: Call) -> str:
    return f"https://{call.facts['advertise_address']}:2380"


def local_etcd_incarnation() -> str | None:
    try:
        return read_text(ETCD_DATA + "/member/incarnation").strip()
    except FileNotFoundError:
        return None


def start_local_etcd(call: Call) -> None:
    # The level of the etcd pod: its patch's, or random MCS categories for each new sandbox.
    call.machine["etcd_level"] = call.facts["etcd_selinux_level"] or "random"
    write_file(ETCD_DATA + "/member/incarnation", call.machine["incarnation"] + "\n", 0o600)
    member = call.cluster["etcd"][peer_url(call)]
    member.update(name=call.facts["node_name"], started=True, data=call.machine["incarnation"])


def check_config(call: Call) -> None:
    path = option(call.args, "--config")
    configs = call.machine["facts"]["configs"]
    if path is None or path not in configs:
        raise KubeadmError("preflight", f"unable to read config from {path!r}")
    import hashlib

    with open(path, "rb") as config:
        digest = hashlib.sha256(config.read()).hexdigest()
    facts = configs[path]
    if digest != facts["sha256"]:
        raise KubeadmError("preflight", f"{path} is not the configuration Ignition wrote")
    call.config_facts = {
        "config_path": path,
        "kind": facts["kind"],
        "token": facts["token"],
        "endpoint": facts["endpoint"],
        "ca_cert_hashes": facts["pinned"],
        "control_plane": facts["control_plane"],
        "certificate_key": facts.get("certificate_key"),
    }


def discovery(call: Call) -> None:
    """`kubeadm join` preflight: fetch cluster-info with the token and check the CA pin."""
    if call.fault.get("do") == "unreachable" or not call.api_up():
        raise unreachable(
            call, "preflight", "/api/v1/namespaces/kube-public/configmaps/cluster-info"
        )
    token = call.facts["token"]
    cluster = call.cluster
    if (
        token not in cluster["tokens"]
        or "configmap/kube-public/cluster-info" not in cluster["objects"]
    ):
        raise KubeadmError(
            "preflight",
            "couldn't validate the identity of the API Server: could not find a JWS signature "
            f'in the cluster-info ConfigMap for token ID "{token.split(".")[0]}"',
        )
    if cluster["ca_hash"] not in call.facts["ca_cert_hashes"]:
        raise KubeadmError(
            "preflight",
            "couldn't validate the identity of the API Server: cluster CA found in cluster-info "
            f'ConfigMap is invalid: none of the public keys "{cluster["ca_hash"]}" are pinned',
        )


# -------------------------------------------------------------------------------------- SELinux

# The policy's labels (container-selinux container.fc, the base policy) of the paths modelled.
POLICY_LABELS = {K8S: "kubernetes_file_t", ETCD_DATA: "var_lib_t", "/var": "var_t"}
CONTAINER_FILE = "container_file_t"


def selinux_label(call: Call, path: str) -> tuple[str, str]:
    """A path's type and level: what chcon set on it or above it (what is made in a directory
    inherits its label), else the policy's label."""
    labels = call.machine["selinux"]["labels"]
    above = [p for p in labels if path == p or path.startswith(p.rstrip("/") + "/")]
    if above:
        label = labels[max(above, key=len)]
        return str(label["type"]), str(label["level"])
    policy = [p for p in POLICY_LABELS if path == p or path.startswith(p + "/")]
    return (POLICY_LABELS[max(policy, key=len)] if policy else "default_t"), "s0"


def control_plane_denials(call: Call) -> list[str]:
    """What SELinux denies the control-plane static pods (confined, container_t) on this
    machine: reading /etc/kubernetes (kubernetes_file_t, which no container domain may read),
    writing /var/lib/etcd; the audit records the journal would show."""
    if not call.machine["selinux"]["enabled"]:
        return []
    level = call.facts["etcd_selinux_level"] or "s0:c123,c456"
    denials = []
    for comm, path, perm in (("kube-apiserver", PKI, "read"), ("etcd", ETCD_DATA, "write")):
        kind, file_level = selinux_label(call, path)
        if kind != CONTAINER_FILE:
            denials.append(
                f'avc:  denied  {{ {perm} }} for comm="{comm}" name="{os.path.basename(path)}" '
                f"scontext=system_u:system_r:container_t:{level} "
                f"tcontext=system_u:object_r:{kind}:{file_level} tclass=dir permissive=0"
            )
    return denials


def selinuxenabled(call: Call) -> int:
    if call.args:
        return unmodeled(call)
    return 0 if call.machine["selinux"]["enabled"] else 1


def chcon(call: Call) -> int:
    """chcon [-R] [-u USER] [-r ROLE] [-t TYPE] [-l RANGE] FILE... (coreutils); the labels it
    sets are kept in the machine's state."""
    args = call.args
    recursive, fields, files = False, {}, []
    names = {"-u": "user", "-r": "role", "-t": "type", "-l": "level"}
    longs = {"--user": "-u", "--role": "-r", "--type": "-t", "--range": "-l"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-R", "--recursive"):
            recursive = True
        elif arg in names and i + 1 < len(args):
            fields[names[arg]] = args[i + 1]
            i += 1
        elif arg.split("=", 1)[0] in longs and "=" in arg:
            fields[names[longs[arg.split("=", 1)[0]]]] = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return unmodeled(call)
        else:
            files.append(arg)
        i += 1
    if not fields:
        if not files:
            err("chcon: missing operand")
            return 1
        user, role, kind, level = [*files.pop(0).split(":", 3), "", "", "", ""][:4]
        fields = {"user": user, "role": role, "type": kind, "level": level or "s0"}
    if not files:
        err("chcon: missing operand")
        return 1
    selinux = call.machine["selinux"]
    rc = 0
    for path in files:
        if not exists(path):
            err(f"chcon: cannot access '{path}': No such file or directory")
            rc = 1
            continue
        if not selinux["enabled"]:
            err(f"chcon: can't apply partial context to unlabeled file '{path}'")
            rc = 1
            continue
        kind, level = selinux_label(call, path)
        label = {"type": fields.get("type", kind), "level": fields.get("level", level)}
        if recursive:
            for below in [p for p in selinux["labels"] if p.startswith(path.rstrip("/") + "/")]:
                del selinux["labels"][below]
        selinux["labels"][path] = label
    call.step("chcon", last=True)
    return rc


def kubeadm_init(call: Call) -> None:
    facts = call.facts
    if facts["kind"] != "InitConfiguration":
        raise KubeadmError(
            "preflight", "no InitConfiguration or ClusterConfiguration kind was found"
        )
    errors = [
        f"[ERROR FileAvailable--etc-kubernetes-manifests-{m}]: {MANIFESTS}/{m} already exists"
        for m in (*CONTROL_PLANE_MANIFESTS, "etcd.yaml")
        if exists(f"{MANIFESTS}/{m}")
    ]
    if is_nonempty_dir(ETCD_DATA):
        errors.append(f"[ERROR DirAvailable--var-lib-etcd]: {ETCD_DATA} is not empty")
    if errors:
        raise preflight_error(errors)
    out("[init] Using Kubernetes version: v1.31.0", "[preflight] Running pre-flight checks")
    for name in SHARED_CA:
        if not exists(f"{PKI}/{name}"):
            # kubeadm makes a new CA where it finds none: a cluster no pinned hash trusts.
            write_file(f"{PKI}/{name}", f"stand-in {name} generated by kubeadm init\n", 0o600)
            call.machine["generated_ca"] = True
    write_certs(call, LEAF_CERTS)
    call.step("certs")
    for name in KUBECONFIGS:
        write_file(f"{K8S}/{name}", kubeconfig_text(call, f"kubernetes-{name}"), 0o600)
    write_file(KUBELET_CONF, kubeconfig_text(call, f"system:node:{facts['node_name']}"), 0o600)
    call.step("kubeconfig")
    write_manifests(("etcd.yaml", *CONTROL_PLANE_MANIFESTS))
    call.step("control-plane")
    denials = control_plane_denials(call)
    if denials:
        # The static pods crash-loop on what SELinux denies them; kubeadm waits, then gives up.
        err(*(f"audit: {denial}" for denial in denials))
        raise KubeadmError(
            "wait-control-plane",
            "failed while waiting for the control plane to start: kube-apiserver check failed "
            f"at https://{call.facts['advertise_address']}:6443/livez: connection refused",
        )
    # kubelet-start and wait-control-plane: a new etcd, so a new, empty cluster.
    call.machine["kubelet"].update(configured=True, running=True)
    cluster = call.cluster
    cluster.update(
        initialized=True,
        api="up",
        api_host=facts["node_name"],
        generation=int(cluster.get("generation", 0)) + 1,
        ca_hash=facts["ca_hash"],
        nodes={},
        etcd={peer_url(call): {"name": facts["node_name"], "started": False, "data": None}},
        tokens=[],
        objects=[],
    )
    start_local_etcd(call)
    register_node(call)
    call.step("wait-control-plane")
    cluster["objects"] += [
        "configmap/kube-system/kubeadm-config",
        "configmap/kube-system/kubelet-config",
    ]
    call.step("upload-config")
    mark_control_plane(call)
    call.step("mark-control-plane")
    init_phase_bootstrap_token(call)
    call.step("bootstrap-token")
    init_phase_kubelet_finalize(call)
    call.step("kubelet-finalize")
    init_phase_addon(call)
    call.step("addon", last=True)
    out("Your Kubernetes control-plane has initialized successfully!")


# With no bootstrapTokens in its config, kubeadm makes one random token that expires after 24 h
# (v1beta4 defaults.go); one constant stands for it here, so that runs compare.
KUBEADM_DEFAULT_TOKEN = "kubeadm-default-token-24h"


def init_phase_bootstrap_token(call: Call) -> None:
    cluster = call.cluster
    token = call.facts["token"] or KUBEADM_DEFAULT_TOKEN
    if token not in cluster["tokens"]:
        cluster["tokens"].append(token)
    for obj in ("configmap/kube-public/cluster-info", "rbac/kubeadm:bootstrap-signer-clusterinfo"):
        if obj not in cluster["objects"]:
            cluster["objects"].append(obj)


def init_phase_kubelet_finalize(call: Call) -> None:
    text = kubeconfig_text(call, f"system:node:{call.facts['node_name']}")
    write_file(
        KUBELET_CONF,
        text + "# client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n",
        0o600,
    )


def init_phase_addon(call: Call) -> None:
    for obj in ("deployment/kube-system/coredns", "daemonset/kube-system/kube-proxy"):
        if obj not in call.cluster["objects"]:
            call.cluster["objects"].append(obj)


INIT_PHASES: dict[str, Callable[[Call], None]] = {
    "bootstrap-token": init_phase_bootstrap_token,
    "kubelet-finalize": init_phase_kubelet_finalize,
    "addon": init_phase_addon,
    "mark-control-plane": mark_control_plane,
}


def kubeadm_init_phase(call: Call) -> None:
    words = [a for a in call.args if not a.startswith("-") and a != option(call.args, "--config")]
    phase = words[2] if len(words) > 2 else ""
    if phase not in INIT_PHASES or words[3:] not in ([], ["all"]):
        raise KubeadmError(phase, f"stand-in: unmodeled init phase {words[2:]}")
    if not exists(ADMIN_CONF):
        raise KubeadmError(phase, f"couldn't read kubeconfig file {ADMIN_CONF}: no such file")
    if call.fault.get("do") == "unreachable" or not call.api_up():
        raise unreachable(call, phase, "/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    INIT_PHASES[phase](call)
    call.step(phase, last=True)
    out(f"[{phase}] done")


CERTS_SECRET = "kube-system/kubeadm-certs"
KUBEADM_CERTS_ROLE = "role/kube-system/kubeadm:kubeadm-certs"
NONCE_BYTES = 12


def download_certs(call: Call) -> None:
    """`kubeadm join` control-plane-prepare's download-certs phase: with the bootstrap token, get
    the kubeadm-certs Secret, decrypt every entry with the certificate key and write the shared
    CA material under /etc/kubernetes/pki (kubernetes cmd/kubeadm/app/cmd/phases/join/
    controlplaneprepare.go runControlPlanePrepareDownloadCertsPhaseLocal; cmd/kubeadm/app/
    phases/copycerts/copycerts.go DownloadCerts, getSecret, getDataFromSecret,
    certOrKeyNameToSecretName; the AES-GCM of cmd/kubeadm/app/util/crypto/crypto.go
    DecryptBytes, the nonce first). Its errors are kubeadm's, wrapped as it wraps them."""
    phase = "control-plane-prepare/download-certs"
    out(
        '[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the '
        '"kube-system" Namespace'
    )
    try:
        key = bytes.fromhex(call.facts["certificate_key"])
    except ValueError:
        raise KubeadmError(
            phase, "error downloading certs: error decoding certificate key: invalid byte"
        ) from None
    token_id = call.facts["token"].split(".")[0]
    if KUBEADM_CERTS_ROLE not in call.cluster["objects"]:
        # Without kubeadm's Role and RoleBinding (copycerts.go createRBAC) a bootstrap token
        # may not read the Secret.
        raise KubeadmError(
            phase,
            'error downloading certs: error downloading the secret: secrets "kubeadm-certs" is '
            f'forbidden: User "system:bootstrap:{token_id}" cannot get resource "secrets" in '
            'API group "" in the namespace "kube-system"',
        )
    secret = call.cluster.get("secrets", {}).get(CERTS_SECRET)
    if secret is None:
        raise KubeadmError(
            phase,
            'error downloading certs: error downloading the secret: Secret "kubeadm-certs" was '
            'not found in the "kube-system" Namespace. This Secret might have expired. Please, '
            "run `kubeadm init phase upload-certs --upload-certs` on a control plane to "
            "generate a new one",
        )
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) not in (16, 24, 32):
        raise KubeadmError(
            phase,
            "error downloading certs: error decoding secret data with provided key: "
            f"crypto/aes: invalid key size {len(key)}",
        )
    plain = {}
    for entry, value in secret["data"].items():
        sealed = base64.b64decode(value)
        if len(sealed) < NONCE_BYTES:
            raise KubeadmError(
                phase,
                "error downloading certs: error decoding secret data with provided key: "
                "size of data is less than the nonce",
            )
        try:
            plain[entry] = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
        except InvalidTag:
            raise KubeadmError(
                phase,
                "error downloading certs: error decoding secret data with provided key: "
                "cipher: message authentication failed",
            ) from None
    for name in SHARED_CA:
        data = plain.get(name.replace("/", "-"))
        if data is None:
            raise KubeadmError(
                phase,
                "error downloading certs: the Secret does not include the required certificate "
                f"or key - name: {name}, path: {PKI}/{name}",
            )
        # keyutil.WriteKey (0600) for a private key, certutil.WriteCert (0644) otherwise.
        write_file(f"{PKI}/{name}", data.decode(), 0o600 if name.endswith(".key") else 0o644)
    call.step("control-plane-prepare/download-certs")


def kubeadm_join(call: Call) -> None:
    facts = call.facts
    control_plane = bool(facts["control_plane"])
    if facts["kind"] != "JoinConfiguration":
        raise KubeadmError("preflight", "no JoinConfiguration kind was found")
    out("[preflight] Running pre-flight checks")
    errors = []
    if is_nonempty_dir(MANIFESTS):
        errors.append(f"[ERROR DirAvailable--etc-kubernetes-manifests]: {MANIFESTS} is not empty")
    for path in (KUBELET_CONF, BOOTSTRAP_CONF):
        if exists(path):
            check = path.replace("/", "-").lstrip("-")
            errors.append(f"[ERROR FileAvailable--{check}]: {path} already exists")
    if not control_plane and exists(PKI + "/ca.crt"):
        errors.append(
            f"[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: {PKI}/ca.crt already exists"
        )
    if control_plane and is_nonempty_dir(ETCD_DATA):
        errors.append(f"[ERROR DirAvailable--var-lib-etcd]: {ETCD_DATA} is not empty")
    if errors:
        raise preflight_error(errors)
    discovery(call)
    if control_plane:
        if facts.get("certificate_key"):
            # With a certificate key, preflight does not look for the shared CA material
            # (kubernetes cmd/kubeadm/app/cmd/phases/join/preflight.go,
            # checkIfReadyForAdditionalControlPlane with hasCertificateKey):
            # control-plane-prepare's first phase downloads it.
            download_certs(call)
        missing = [f"{PKI}/{name}" for name in SHARED_CA if not exists(f"{PKI}/{name}")]
        if missing:
            raise KubeadmError(
                "preflight",
                "One or more conditions for hosting a new control plane instance is not "
                f"satisfied. [failure loading certificate for CA: couldn't load the certificate "
                f"file {missing[0]}: open {missing[0]}: no such file or directory]",
            )
        write_certs(call, LEAF_CERTS)
        for name in ("admin.conf", "controller-manager.conf", "scheduler.conf"):
            write_file(f"{K8S}/{name}", kubeconfig_text(call, f"kubernetes-{name}"), 0o600)
        write_manifests(CONTROL_PLANE_MANIFESTS)
        call.step("control-plane-prepare")
    # kubelet-start: the bootstrap kubeconfig and the CA first, then the check of the Node.
    write_file(BOOTSTRAP_CONF, kubeconfig_text(call, "bootstrap token"), 0o600)
    if not exists(PKI + "/ca.crt"):
        write_file(PKI + "/ca.crt", "stand-in ca.crt from cluster-info\n")
    call.step("kubelet-start/bootstrap-kubeconfig")
    name = facts["node_name"]
    node = call.cluster["nodes"].get(name)
    if node is not None and call.node_ready(node):
        raise KubeadmError(
            "kubelet-start",
            f'a Node with name "{name}" and status "Ready" already exists in the cluster. You '
            "must delete the existing Node or change the name of this new joining Node",
        )
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    write_file(KUBELET_CONF, kubeconfig_text(call, f"system:node:{name}"), 0o600)
    os.unlink(BOOTSTRAP_CONF)
    call.machine["kubelet"].update(configured=True, running=True)
    call.step("kubelet-start/tls-bootstrap")
    register_node(call)
    call.step("kubelet-start/register-node", last=not control_plane)
    if not control_plane:
        out("This node has joined the cluster")
        return
    # control-plane-join/etcd: add the member (kubeadm skips that when its peer URL is there
    # already), write the manifest, wait for the cluster to see the new member healthy.
    etcd = call.cluster["etcd"]
    etcd.setdefault(peer_url(call), {"name": "", "started": False, "data": None})
    call.step("control-plane-join/etcd-member-add")
    write_manifests(("etcd.yaml",))
    denials = control_plane_denials(call)
    if denials:
        err(*(f"audit: {denial}" for denial in denials))
        raise KubeadmError(
            "control-plane-join/etcd",
            "error creating local etcd static pod manifest file: timeout waiting for etcd "
            "cluster to be available",
        )
    member = etcd[peer_url(call)]
    stale = member["started"] and member["data"] != local_etcd_incarnation()
    if stale:
        # The member's raft log went with the old disk. The new etcd takes its place with an
        # empty one: it writes its WAL, then crash-loops on the leader's commit index.
        write_file(ETCD_DATA + "/member/wal/0000000000000000-0000000000000000.wal", "", 0o600)
    call.step("control-plane-join/etcd-manifest")
    if stale:
        raise KubeadmError(
            "control-plane-join/etcd",
            "error creating local etcd static pod manifest file: timeout waiting for etcd "
            "cluster to be available",
        )
    start_local_etcd(call)
    call.step("control-plane-join/etcd")
    mark_control_plane(call)
    call.step("control-plane-join/mark-control-plane", last=True)
    out("This node has joined the cluster and a new control plane instance was created")


def kubeadm_reset(call: Call) -> None:
    if call.args != ["reset", "--force"]:
        raise KubeadmError("reset", f"stand-in: unmodeled reset flags {call.args[1:]}")
    name = call.facts["node_name"]
    cluster = call.cluster
    node = cluster["nodes"].get(name)
    # kubeadm reset reads the cluster's configuration with admin.conf, and this node's API
    # endpoint from its kube-apiserver mirror pod; without both it cannot touch etcd.
    config_from_cluster = (
        exists(ADMIN_CONF) and exists(APISERVER_MANIFEST) and node is not None and call.api_up()
    )
    clean_etcd_data = exists(ETCD_MANIFEST) or config_from_cluster
    if config_from_cluster:
        etcd = cluster["etcd"]
        if cluster.get("api_host") == name and len(etcd) <= 1:
            # The only etcd member: removing its data removes the cluster.
            cluster.update(initialized=False, api="down", nodes={}, etcd={}, tokens=[], objects=[])
            node = None
        elif peer_url(call) in etcd:
            out(f"[reset] Removing member {peer_url(call)} from the etcd cluster")
            del etcd[peer_url(call)]
    else:
        err("W0000 [reset] Unable to fetch the kubeadm-config ConfigMap from cluster")
        if exists(ETCD_MANIFEST):
            err("W0000 [reset] Failed to remove etcd member, please remove it using etcdctl")
    out("[reset] Stopping the kubelet service")
    call.machine["kubelet"].update(configured=False, running=False)
    ours = node is not None and node.get("heartbeat_from") == call.machine["incarnation"]
    if node is not None and ours and node.get("kubelet") == "running":
        # This machine's kubelet stops; a Node another kubelet keeps Ready stays Ready.
        node.update(kubelet="stopped", stopped_at=time.time())
    if cluster.get("api_host") == name and exists(ETCD_MANIFEST):
        cluster["api"] = "down"
    clear_dir(MANIFESTS)
    for conf in RESET_FILES:
        if exists(f"{K8S}/{conf}"):
            os.unlink(f"{K8S}/{conf}")
    clear_dir(PKI)
    if os.path.isdir(PKI):
        os.rmdir(PKI)
    if clean_etcd_data:
        clear_dir(ETCD_DATA)
        call.machine["etcd_level"] = None
    else:
        out("[reset] No etcd config found. Assuming external etcd")
    call.step("reset", last=True)
    out("[reset] Deleted contents of: [/etc/kubernetes/manifests /etc/kubernetes/pki]")


def kubeadm(call: Call) -> int:
    words = [a for a in call.args if not a.startswith("-")]
    try:
        if words[:2] == ["init", "phase"]:
            check_config(call)
            kubeadm_init_phase(call)
        elif words[:1] == ["init"] and len(words) == 2:
            check_config(call)
            kubeadm_init(call)
        elif words[:1] == ["join"] and len(words) == 2:
            check_config(call)
            kubeadm_join(call)
        elif words[:1] == ["reset"]:
            kubeadm_reset(call)
        elif words[:1] == ["certs"]:
            kubeadm_certs(call)
        else:
            return unmodeled(call)
    except KubeadmError as error:
        # As kubeadm does: the error, then a hint, on stderr; exit status 1.
        err(str(error), STACK_TRACE_HINT)
        return 1
    return 0


# ------------------------------------------------------------------------------------------ main


def unmodeled(call: Call) -> int:
    call.log(end="unmodeled", argv=[call.name, *call.args])
    err(f"stand-in {call.name}: no model for {call.args}")
    return 2


# ------------------------------------------------------------------- kubeadm certs, crictl
#
# Modelled on kubernetes v1.36.3: `cmd/kubeadm/app/cmd/certs.go` (check-expiration builds an
# output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo, fetchCertificateExpirationInfo, and
# prints it with the printer `-o` names; `renew <name>` is renewCert) and
# `cmd/kubeadm/app/phases/certs/renewal/manager.go` (the certificates, sorted by name; a
# certificate is externally managed when its CA's key is absent, certs.go UsingExternalCA).
# A certificate's expiry is the machine state's `certificates[name]` (epoch seconds) when a test
# set one, else one year after its file was written (constants.CertificateValidityPeriod);
# a renewal makes it one year from now.

CERTIFICATE_VALIDITY_SECONDS = 365 * 24 * 3600
# name -> (file, CA base name, long name), from certsphase (certlist.go) and the manager's
# kubeconfig list.
KUBEADM_CERTS = {
    "admin.conf": (
        f"{K8S}/admin.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
    ),
    "apiserver": (f"{PKI}/apiserver.crt", "ca", "certificate for serving the Kubernetes API"),
    "apiserver-etcd-client": (
        f"{PKI}/apiserver-etcd-client.crt",
        "etcd/ca",
        "certificate the apiserver uses to access etcd",
    ),
    "apiserver-kubelet-client": (
        f"{PKI}/apiserver-kubelet-client.crt",
        "ca",
        "certificate for the API server to connect to kubelet",
    ),
    "controller-manager.conf": (
        f"{K8S}/controller-manager.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the controller manager to use",
    ),
    "etcd-healthcheck-client": (
        f"{PKI}/etcd/healthcheck-client.crt",
        "etcd/ca",
        "certificate for liveness probes to healthcheck etcd",
    ),
    "etcd-peer": (
        f"{PKI}/etcd/peer.crt",
        "etcd/ca",
        "certificate for etcd nodes to communicate with each other",
    ),
    "etcd-server": (f"{PKI}/etcd/server.crt", "etcd/ca", "certificate for serving etcd"),
    "front-proxy-client": (
        f"{PKI}/front-proxy-client.crt",
        "front-proxy-ca",
        "certificate for the front proxy client",
    ),
    "scheduler.conf": (
        f"{K8S}/scheduler.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the scheduler manager to use",
    ),
    "super-admin.conf": (
        f"{K8S}/super-admin.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the super-admin",
    ),
}
# The static pods' certificates, as `kubeadm upgrade` renews them for each component
# (cmd/kubeadm/app/phases/upgrade/staticpods.go renewCertsByComponent): what a container
# loaded when it started.
COMPONENT_CERTS = {
    "etcd": ("etcd-server", "etcd-peer", "etcd-healthcheck-client"),
    "kube-apiserver": (
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-client",
        "apiserver-etcd-client",
    ),
    "kube-controller-manager": ("controller-manager.conf",),
    "kube-scheduler": ("scheduler.conf",),
}
CA_NAMES = {"ca": "ca", "etcd/ca": "etcd-ca", "front-proxy-ca": "front-proxy-ca"}


def certificate_expiry(call: Call, name: str) -> float:
    expiry = call.machine.get("certificates", {}).get(name)
    if expiry is not None:
        return float(expiry)
    return os.stat(KUBEADM_CERTS[name][0]).st_mtime + CERTIFICATE_VALIDITY_SECONDS


def certificate_entry(name: str, expiry: float | None, external: bool, ca_name: str) -> JSON:
    """One certificate of CertificateExpirationInfo (apis/output/v1alpha3 types.go) as JSON
    has it: a missing one (expiry None) has a null date and no caName (omitempty)."""
    if expiry is None:
        return {
            "name": name,
            "expirationDate": None,
            "residualTime": 0,
            "externallyManaged": False,
            "missing": True,
        }
    return {
        "name": name,
        "expirationDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry)),
        "residualTime": int(expiry - time.time()),
        "externallyManaged": external,
        "caName": ca_name,
        "missing": False,
    }


def expiration_info(call: Call) -> JSON:
    """The CertificateExpirationInfo object that check-expiration prints."""
    certificates = []
    for name in sorted(KUBEADM_CERTS):
        path, ca, _long = KUBEADM_CERTS[name]
        present = exists(path)
        certificates.append(
            certificate_entry(
                name,
                certificate_expiry(call, name) if present else None,
                not exists(f"{PKI}/{ca}.key"),
                CA_NAMES[ca],
            )
        )
    return {
        "kind": "CertificateExpirationInfo",
        "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "certificates": certificates,
    }


def jsonpath_value(value: object) -> str:
    """How client-go's jsonpath prints a JSON value: strings bare, booleans and null as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise KubeadmError("check-expiration", f"stand-in: no model for printing {value!r}")


def jsonpath(template: str, data: JSON) -> str:
    """The part of client-go's jsonpath (k8s.io/client-go/util/jsonpath) that a template of
    `{range .LIST[*]}`, `{.FIELD}`, `{"literal"}` and `{end}` uses; anything else is refused."""
    tokens: list[tuple[str, str]] = []
    rest = template
    while rest:
        start = rest.find("{")
        if start != 0:
            text = rest if start < 0 else rest[:start]
            tokens.append(("text", text))
            rest = rest[len(text) :]
            continue
        end = rest.find("}")
        if end < 0:
            raise KubeadmError("check-expiration", f"unclosed action in {template!r}")
        tokens.append(("expr", rest[1:end]))
        rest = rest[end + 1 :]
    tree, position = jsonpath_tree(tokens, 0)
    if position != len(tokens):
        raise KubeadmError("check-expiration", "not in range, nothing to end")
    output: list[str] = []
    jsonpath_eval(tree, data, output)
    return "".join(output)


def jsonpath_tree(tokens: list[tuple[str, str]], position: int) -> tuple[list[Any], int]:
    """The nodes up to the `{end}` that closes the range they are in (or the template's end)."""
    nodes: list[Any] = []
    while position < len(tokens):
        kind, value = tokens[position]
        position += 1
        if (kind, value) == ("expr", "end"):
            return nodes, position - 1
        if kind == "expr" and value.startswith("range "):
            body, position = jsonpath_tree(tokens, position)
            if position >= len(tokens):
                raise KubeadmError("check-expiration", "unclosed range")
            position += 1
            nodes.append(("range", value, body))
        else:
            nodes.append((kind, value, []))
    return nodes, position


def jsonpath_eval(nodes: list[Any], item: JSON, output: list[str]) -> None:
    for kind, value, body in nodes:
        if kind == "text":
            output.append(value)
        elif value.startswith('"') and value.endswith('"'):
            output.append(value[1:-1].replace("\\t", "\t").replace("\\n", "\n"))
        elif kind == "range" and value.startswith("range .") and value.endswith("[*]"):
            items = item.get(value[len("range .") : -3])
            if not isinstance(items, list):
                raise KubeadmError("check-expiration", f"{value} is not found")
            for element in items:
                jsonpath_eval(body, element, output)
        elif value.startswith(".") and value[1:].isalnum():
            if value[1:] not in item:
                raise KubeadmError("check-expiration", f"{value[1:]} is not found")
            output.append(jsonpath_value(item[value[1:]]))
        else:
            raise KubeadmError("check-expiration", f"stand-in: no model for {{{value}}}")


def kubeadm_certs(call: Call) -> None:
    words = [a for a in call.args if not a.startswith("-")]
    output = option(call.args, "-o") or option(call.args, "--output")
    if words == ["certs", "check-expiration"] or (
        words[:2] == ["certs", "check-expiration"] and words[2:] == [output]
    ):
        if output is None or not output.startswith("jsonpath="):
            # The default table, and json/yaml, are not modelled: the script reads jsonpath.
            raise KubeadmError("check-expiration", f"stand-in: unmodeled output {output!r}")
        sys.stdout.write(jsonpath(output[len("jsonpath=") :], expiration_info(call)))
        sys.stdout.flush()
        call.step("check-expiration", last=True)
        return
    if words[:2] == ["certs", "renew"] and len(words) == 3 and len(call.args) == 3:
        name = words[2]
        if name not in KUBEADM_CERTS:
            raise KubeadmError("renew", f'unknown command "{name}" for "kubeadm certs renew"')
        path, ca, long_name = KUBEADM_CERTS[name]
        # Before renewCert: "Reading configuration from the cluster" (getInternalCfg).
        out(
            '[renew] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
            '"kube-system"...',
            "[renew] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' "
            "to re-upload it.",
            "",
        )
        if not exists(path):
            out(f"MISSING! {long_name}")
            return
        if not exists(f"{PKI}/{ca}.key"):
            out(f"Detected external {ca}, {long_name} can't be renewed")
            return
        expiry = time.time() + CERTIFICATE_VALIDITY_SECONDS
        call.machine.setdefault("certificates", {})[name] = expiry
        with open(path, "a") as file:
            file.write(f"# stand-in: renewed, expires {expiry:.0f}\n")
        call.step("renew", last=True)
        out(f"{long_name} renewed")
        return
    raise KubeadmError("certs", f"stand-in: unmodeled {call.args}")


def static_pods(call: Call) -> dict[str, JSON]:
    """The kubelet's view of the static pods by the time someone asks: a container for each
    manifest in /etc/kubernetes/manifests while the kubelet runs; one that was stopped has been
    restarted (restartPolicy Always) with whatever certificates are on disk now."""
    containers: dict[str, JSON] = call.machine.setdefault("containers", {})
    events: list[list[str]] = call.machine.setdefault("container_events", [])
    if not call.machine["kubelet"]["running"]:
        return {}
    running = {}
    for component, certs in COMPONENT_CERTS.items():
        if not exists(f"{MANIFESTS}/{component}.yaml"):
            continue
        container = containers.get(component)
        if container is None or container["state"] != "running":
            import hashlib

            starts = len(events) + 1
            seed = f"{call.machine['incarnation']}/{component}/{starts}"
            container = containers[component] = {
                "id": hashlib.sha256(seed.encode()).hexdigest(),
                "state": "running",
                "loaded": {
                    c: certificate_expiry(call, c) for c in certs if exists(KUBEADM_CERTS[c][0])
                },
            }
            events.append(["start", component, container["id"]])
        running[component] = container
    return running


def crictl(call: Call) -> int:
    args = call.args
    words = [a for a in args if not a.startswith("-")]
    if words[:1] == ["ps"]:
        pattern, state = option(args, "--name"), option(args, "--state")
        if "-q" not in args or state != "running" or pattern is None:
            return unmodeled(call)
        if len(words) != 1 + len([a for a in (pattern, state) if a in words]):
            return unmodeled(call)
        import re

        # crictl matches --name as a regular expression on the container's name.
        ids = [c["id"] for n, c in static_pods(call).items() if re.search(pattern, n)]
        call.step("ps", last=True)
        out(*ids)
        return 0
    if words[:1] == ["stop"]:
        timeout = option(args, "--timeout") or option(args, "-t")
        ids = [w for w in words[1:] if w != timeout]
        if len(ids) != 1:
            return unmodeled(call)
        running = static_pods(call)
        found = [n for n, c in running.items() if c["id"] == ids[0]]
        if not found:
            err(f'rpc error: code = NotFound desc = could not find container "{ids[0]}"')
            return 1
        call.machine["containers"][found[0]]["state"] = "exited"
        call.machine["container_events"].append(["stop", found[0], ids[0]])
        call.step("stop", last=True)
        out(ids[0])
        return 0
    return unmodeled(call)


def peer_answers(call: Call, endpoint: str) -> bool:
    """Whether another controller's own API server runs at host:port: its etcd member is there
    and started, and its kubelet runs."""
    host = endpoint.rpartition(":")[0]
    member = call.cluster["etcd"].get(f"https://{host}:2380")
    if not call.cluster.get("initialized") or not member or not member["started"]:
        return False
    node = call.cluster["nodes"].get(member["name"])
    return (
        member["name"] != call.facts["node_name"]
        and node is not None
        and node.get("kubelet") == "running"
    )


def curl(call: Call) -> int:
    """`curl --cacert CA https://<host:port>/version`: who answers at the API endpoint, or at
    a peer controller's own address."""
    url = call.args[-1]
    endpoint = url.removeprefix("https://").removesuffix("/version")
    peers = call.facts["peer_endpoints"]
    if url != f"https://{endpoint}/version" or "--cacert" not in call.args:
        return unmodeled(call)
    cluster = call.cluster
    if endpoint == call.facts["endpoint"]:
        answers = (
            cluster.get("initialized")
            and cluster.get("api") == "up"
            # This machine was just wiped: its own API server does not run.
            and cluster.get("api_host") != call.facts["node_name"]
        )
    elif endpoint in peers:
        answers = peer_answers(call, endpoint)
    else:
        return unmodeled(call)
    if not answers:
        err(f"curl: (7) Failed to connect to {endpoint}: Connection refused")
        return 7
    if cluster.get("ca_hash") != call.facts["ca_hash"]:
        err("curl: (60) SSL certificate problem: unable to get local issuer certificate")
        return 60
    out('{"major": "1", "minor": "31", "gitVersion": "v1.31.14"}')
    return 0


HANDLERS: dict[str, Callable[[Call], int]] = {
    "rpm": rpm,
    "rpm-ostree": rpm_ostree,
    "systemctl": systemctl,
    "reboot": reboot,
    "kubectl": kubectl,
    "kubeadm": kubeadm,
    "crictl": crictl,
    "curl": curl,
    "chcon": chcon,
    "selinuxenabled": selinuxenabled,
}


def main() -> int:
    name = os.path.basename(sys.argv[0])
    sim = os.environ["SIM_DIR"]
    call = Call(sim, name, sys.argv[1:])
    deployments = call.machine["deployments"]
    call.log(
        argv=[name, *call.args],
        time=time.time(),
        boot=call.machine["boots"],
        do=call.fault.get("do", "ok"),
        status=read_status(),
        booted=deployments["booted"]["id"],
        staged=(deployments["staged"] or {}).get("id"),
    )
    action = call.fault.get("do", "ok")
    if action == "kill":
        call.kill_boot("before its state change")
    if action == "hang":
        # Past any timeout the scripts set: `timeout` or the end of the boot ends it.
        call.log(end="hanging", where="before its state change", effect="none")
        time.sleep(3600)
    if action == "signal":
        call.die("before its state change")
    if action == "fail":
        err(*call.fault.get("stderr", [f"stand-in {name}: failing as planned"]))
        rc = int(call.fault.get("rc", 1))
        call.log(end="exit", rc=rc, effect="none")
        return rc
    rc = HANDLERS[name](call)
    if action == "kill-after":
        call.kill_boot("after its state change")
    call.log(end="exit", rc=rc, effect=call.effect, steps=call.steps_done)
    return rc


if __name__ == "__main__":
    sys.exit(main())
