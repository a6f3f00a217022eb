"""A simulated Fedora CoreOS machine that boots the stubernetes setup service as systemd would.

The machine is a directory: `root/` is what the REAL Ignition binary wrote from the project's
config (`apply_ignition`), `sim/` is the state of everything else: the machine's deployments and
unit enablement (machine.state), the fake cluster (cluster.state), the fault plan (plan.state) and
the stand-ins' call log (calls.log).

One boot:
  * power-on: a staged rpm-ostree deployment becomes the booted one after a clean shutdown and is
    lost after a crash, as ostree-finalize-staged does; presets apply on the first boot; the
    kubelet starts where it has credentials (and brings this machine's API server up, if it is
    the cluster's only one);
  * the unit file is parsed, its enablement and `ConditionPathExists=` checked, and its
    `ExecStart=` lines run in order, as root with systemd's PATH, in a private mount namespace
    where the scratch root's directories are bind-mounted over /etc/stubernetes,
    /etc/kubernetes, /etc/zincati, /var/lib/stubernetes, /var/lib/etcd,
    /usr/local/lib/stubernetes and /usr/local/bin (over throwaway overlays of /etc, /var/lib and
    /usr/local/lib, so the mount points need not exist on the host; whatever the scripts write
    anywhere else lands in those overlays and is reported);
  * the commands that touch the real system are stand-ins first in PATH (node_standin.py);
  * a reboot request ends the boot; so does a kill, which models a crash (power cut); so does the
    end of the unit's commands (the machine then idles until the next power cycle).

Kills are injected before any command the runner and its phases execute (a DEBUG trap, loaded
through BASH_ENV, numbers the commands of each script's main shell and kills the process group
at a given one: TRACE_BASH), or inside a stand-in (before, after, or between the steps of its
state change). `reference_run` records an undisturbed run, with a digest of the persistent
state before each command, so that the crash suite can kill once per distinct state.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cryptography
import yaml
from ignition_root import apply_ignition

from ignition.kubeadm_certs import NAMESPACE, RBAC_NAME, SECRET_NAME, kubeadm_certs_secret
from ignition.material import ClusterMaterial, ca_cert_hash

JSON = dict[str, Any]

SETUP_UNIT = "stubernetes-setup.service"
UNIT_DIR = "etc/systemd/system"
PRESET_DIR = "etc/systemd/system-preset"
DEFAULT_TARGET = "multi-user.target"
STANDIN_SOURCE = Path(__file__).with_name("node_standin.py")
CRYPTOGRAPHY_PATH = Path(cryptography.__file__).resolve().parent.parent
STANDINS = (
    "rpm",
    "rpm-ostree",
    "kubeadm",
    "kubectl",
    "systemctl",
    "reboot",
    "crictl",
    "curl",
    "chcon",
    "selinuxenabled",
)
# systemd's PATH for system services, after the stand-ins.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
# The real paths the scripts use, served from the scratch root.
BOUND_PATHS = (
    "/etc/stubernetes",
    "/etc/kubernetes",
    "/etc/zincati",
    "/var/lib/stubernetes",
    "/var/lib/etcd",
    "/var/openebs/local",
    "/usr/local/lib/stubernetes",
    "/usr/local/bin",
)
# Host directories overlaid (in the namespace only) so that missing mount points can be made;
# a parent before the directories under it. A bound path is made in its deepest overlay.
OVERLAID = {
    "/etc": "etc",
    "/var": "var",
    "/var/lib": "var-lib",
    "/usr/local/lib": "usr-local-lib",
}
KUBEADM_CONFIG = "/etc/stubernetes/kubeadm.yaml"
KUBEADM_JOIN_CONFIG = "/etc/stubernetes/kubeadm-join.yaml"
KUBEADM_PATCHES = "/etc/stubernetes/kubeadm-patches"
# The base image's packages (name-version-release), a few of them.
FCOS_PACKAGES = (
    "bash-5.2.37-1.fc42",
    "coreutils-9.6-2.fc42",
    "rpm-ostree-2025.8-1.fc42",
    "systemd-257.7-1.fc42",
    "zincati-0.0.30-1.fc42",
)
BOOT_TIMEOUT_SECONDS = 60.0

TRACE_BASH = r"""# Loaded through BASH_ENV by every script of a simulated boot.
# A kill point is "I.S": command S of the main shell of the I-th script started (counted across
# boots; scripts start one after another, while within a script subshells and pipelines run
# beside the main shell, which is why only the main shell's commands are counted, in a variable
# of its own). The DEBUG trap kills the process group before the command at point SIM_KILL_AT.
__sim_invocation=0
if [[ -r $SIM_DIR/invocations ]]; then read -r __sim_invocation <"$SIM_DIR/invocations" || :; fi
__sim_invocation=$((__sim_invocation + 1))
printf '%s\n' "$__sim_invocation" >"$SIM_DIR/invocations"
__sim_step=0
__sim_on_debug() {
	[[ $BASHPID == "$$" ]] || return 0
	__sim_step=$((__sim_step + 1))
	local point=$__sim_invocation.$__sim_step
	if [[ -n ${SIM_TRACE:-} ]]; then
		# With a digest of the persistent state the command is about to meet: a kill before
		# it leaves exactly that state behind.
		local digest
		digest=$(tar -C "$SIM_DIR/.." -c --sort=name --mtime=@0 --owner=0 --group=0 \
			--numeric-owner --exclude=phase.log ./root ./sim/machine.state \
			./sim/cluster.state | md5sum)
		printf '%s\t%s\t%s\t%s\n' "$point" "${digest%% *}" \
			"${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]:-?}" "${BASH_COMMAND//$'\n'/ }" \
			>>"$SIM_DIR/trace"
	fi
	if [[ $point == "${SIM_KILL_AT:-}" ]]; then
		printf 'command %s: %s\n' "$point" "${BASH_COMMAND//$'\n'/ }" >"$SIM_DIR/killed"
		kill -KILL 0
	fi
	return 0
}
set -o functrace
trap __sim_on_debug DEBUG
"""


# ------------------------------------------------------------------------------------- the unit


@dataclass(frozen=True)
class Condition:
    path: str
    negate: bool
    trigger: bool

    def holds(self, root: Path) -> bool:
        return (root / self.path.lstrip("/")).exists() != self.negate

    def __str__(self) -> str:
        prefix = ("|" if self.trigger else "") + ("!" if self.negate else "")
        return f"ConditionPathExists={prefix}{self.path}"


@dataclass(frozen=True)
class UnitFile:
    service_type: str
    exec_start: tuple[tuple[str, tuple[str, ...]], ...]
    conditions: tuple[Condition, ...]
    wanted_by: tuple[str, ...]
    timeout_start: float | None

    def unmet_condition(self, root: Path) -> Condition | None:
        """systemd: every plain condition must hold, and one of the triggering ones if any."""
        plain = [c for c in self.conditions if not c.trigger]
        for condition in plain:
            if not condition.holds(root):
                return condition
        triggers = [c for c in self.conditions if c.trigger]
        if triggers and not any(c.holds(root) for c in triggers):
            return triggers[0]
        return None


class UnitError(ValueError):
    pass


def _seconds(value: str) -> float | None:
    if value == "infinity":
        return None
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def parse_unit(text: str) -> UnitFile:
    """The parts of a service unit this simulation honours; anything else it would have to
    honour to be faithful (other conditions, other service types, exec prefixes) is refused."""
    section = ""
    lines: list[tuple[str, str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UnitError(f"not a key=value line: {line!r}")
        lines.append((section, key.strip(), value.strip()))
    service_type = "simple"
    exec_start: list[tuple[str, tuple[str, ...]]] = []
    conditions: list[Condition] = []
    wanted_by: list[str] = []
    timeout_start: float | None = 90.0
    for section, key, value in lines:
        if key.startswith(("Condition", "Assert")):
            if key != "ConditionPathExists":
                raise UnitError(f"the simulation does not evaluate {key}=")
            if not value:
                conditions.clear()
                continue
            trigger = value.startswith("|")
            value = value.lstrip("|")
            negate = value.startswith("!")
            conditions.append(Condition(value.lstrip("!"), negate, trigger))
        elif (section, key) == ("Service", "Type"):
            service_type = value
        elif (section, key) == ("Service", "ExecStart"):
            if not value:
                exec_start.clear()
                continue
            prefix = ""
            while value[:1] in ("-", "@", ":", "+", "!"):
                prefix += value[0]
                value = value[1:]
            if prefix.strip("-"):
                raise UnitError(f"ExecStart prefix {prefix!r} is not simulated")
            exec_start.append((prefix, tuple(shlex.split(value))))
        elif (section, key) in (("Service", "TimeoutStartSec"), ("Service", "TimeoutSec")):
            timeout_start = _seconds(value)
        elif (section, key) == ("Install", "WantedBy"):
            wanted_by += value.split()
    if service_type != "oneshot":
        raise UnitError(f"Type={service_type}: only oneshot services are simulated")
    if not exec_start:
        raise UnitError("no ExecStart=")
    return UnitFile(
        service_type, tuple(exec_start), tuple(conditions), tuple(wanted_by), timeout_start
    )


def preset_policy(root: Path, unit: str) -> str:
    """`enable` or `disable` from the first matching line of the presets, in file name order.

    Fedora CoreOS ends its presets with `disable *`; so does this, where nothing matches."""
    import fnmatch

    directory = root / PRESET_DIR
    for preset in sorted(directory.glob("*.preset")) if directory.is_dir() else []:
        for line in preset.read_text().splitlines():
            words = line.split()
            if (
                len(words) >= 2
                and words[0] in ("enable", "disable")
                and fnmatch.fnmatch(unit, words[1])
            ):
                return words[0]
    return "disable"


# ---------------------------------------------------------------------------- the fake cluster


def kubelet_default_labels(name: str) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }


CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "",
    "node.kubernetes.io/exclude-from-external-load-balancers": "",
}
CONTROL_PLANE_TAINT = {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}
INIT_OBJECTS = [
    "configmap/kube-system/kubeadm-config",
    "configmap/kube-system/kubelet-config",
    "configmap/kube-public/cluster-info",
    "rbac/kubeadm:bootstrap-signer-clusterinfo",
    "deployment/kube-system/coredns",
    "daemonset/kube-system/kube-proxy",
]


def empty_cluster() -> JSON:
    """No cluster yet: what the init controller meets.

    `grace_seconds`: how long a Node stays Ready after its kubelet stopped (the node lifecycle
    controller's grace period, 40 s in a real cluster; none unless a test sets one)."""
    return {
        "initialized": False,
        "api": "down",
        "api_host": None,
        "generation": 0,
        "ca_hash": None,
        "nodes": {},
        "etcd": {},
        "tokens": [],
        "objects": [],
        "grace_seconds": 0.0,
    }


def running_cluster(
    ca_hash: str,
    tokens: list[str],
    controllers: dict[str, str],
    api_host: str,
) -> JSON:
    """A cluster that an init controller (elsewhere) made: controllers by name -> address,
    each a Ready control-plane node and a started etcd member; `tokens` are valid."""
    cluster = empty_cluster()
    cluster.update(initialized=True, api="up", api_host=api_host, generation=1, ca_hash=ca_hash)
    for name, address in controllers.items():
        cluster["nodes"][name] = {
            "labels": {**kubelet_default_labels(name), **CONTROL_PLANE_LABELS},
            "taints": [CONTROL_PLANE_TAINT],
            "kubelet": "running",
            "heartbeat_from": f"{name}-elsewhere",
        }
        cluster["etcd"][f"https://{address}:2380"] = {
            "name": name,
            "started": True,
            "data": f"{name}-elsewhere",
        }
    cluster["tokens"] = list(tokens)
    cluster["objects"] = list(INIT_OBJECTS)
    return cluster


KUBEADM_CERTS_RBAC = (
    f"role/{NAMESPACE}/{RBAC_NAME}",
    f"rolebinding/{NAMESPACE}/{RBAC_NAME}",
)


def upload_kubeadm_certs(
    cluster: JSON, material: ClusterMaterial, hex_key: str, token: str, machine: str
) -> None:
    """What the program's upload step for `machine`'s join does to the cluster
    (components/scripts/upload-control-plane-certs): the kubeadm-certs Secret exactly as the
    program makes it (ignition/kubeadm_certs.py), owned by the machine's token Secret, in place
    of any earlier one; kubeadm's Role and RoleBinding that let a bootstrap token get it."""
    secret = kubeadm_certs_secret(material, hex_key, token.split(".")[0], machine)
    cluster["objects"] = [
        *cluster["objects"],
        *(o for o in KUBEADM_CERTS_RBAC if o not in cluster["objects"]),
    ]
    cluster.setdefault("secrets", {})[f"{NAMESPACE}/{SECRET_NAME}"] = {
        "owner": secret["metadata"]["ownerReferences"][0]["name"],
        "data": dict(secret["data"]),
    }


# ------------------------------------------------------------------------------------- results


@dataclass
class CallRecord:
    """One stand-in call: what was asked, what the plan said, what happened."""

    seq: int
    key: str
    argv: list[str]
    time: float
    boot: int
    do: str
    status: dict[str, str]
    booted: str
    staged: str | None
    end: str | None = None  # "exit", "killed", "unmodeled"; None: cut short from outside
    rc: int | None = None
    effect: str = "none"  # "none", "partial", "complete"
    steps: list[str] = field(default_factory=list)
    where: str | None = None


@dataclass
class Boot:
    number: int
    ran: bool
    skipped: str | None = None
    exit_code: int | None = None
    killed: str | None = None
    hung: bool = False
    reboot_requested: bool = False
    outside_writes: list[str] = field(default_factory=list)
    journal: str = ""
    scripts: tuple[int, int] = (0, 0)  # script invocation counter before and after the boot
    calls: tuple[int, int] = (0, 0)  # stand-in call counter before and after the boot

    def __str__(self) -> str:
        if not self.ran:
            return f"boot {self.number}: unit skipped ({self.skipped})"
        how = (
            f"killed at {self.killed}"
            if self.killed
            else "hung"
            if self.hung
            else f"exit {self.exit_code}"
        )
        reboot = ", reboot requested" if self.reboot_requested else ""
        return f"boot {self.number}: {how}{reboot}"


# ------------------------------------------------------------------------------------ the machine


def _config_facts(root: Path, path: str) -> JSON:
    """What the stand-in kubeadm needs of one config file: its kind, digest and discovery."""
    raw = (root / path.lstrip("/")).read_bytes()
    documents = [d for d in yaml.safe_load_all(raw) if d]
    first = documents[0]
    facts: JSON = {"kind": first["kind"], "sha256": hashlib.sha256(raw).hexdigest()}
    if first["kind"] == "InitConfiguration":
        cluster = next(d for d in documents if d["kind"] == "ClusterConfiguration")
        # No token of the machine's own: kubeadm makes a random one (see the stand-in).
        tokens = [t["token"] for t in first.get("bootstrapTokens", []) if "token" in t]
        facts.update(
            token=tokens[0] if tokens else None,
            endpoint=cluster["controlPlaneEndpoint"],
            control_plane=True,
            endpoint_local=first.get("localAPIEndpoint", {}),
            pinned=None,
            certificate_key=None,
        )
    else:
        bootstrap = first["discovery"]["bootstrapToken"]
        facts.update(
            token=bootstrap["token"],
            endpoint=bootstrap["apiServerEndpoint"],
            control_plane="controlPlane" in first,
            endpoint_local=(first.get("controlPlane") or {}).get("localAPIEndpoint", {}),
            pinned=list(bootstrap["caCertHashes"]),
            # A controller that joins with kubeadm's certificate key (v1beta4
            # JoinControlPlane.certificateKey) downloads the CA material from kubeadm-certs.
            certificate_key=(first.get("controlPlane") or {}).get("certificateKey"),
        )
    facts["patches"] = (first.get("patches") or {}).get("directory")
    return facts


def _setup_env(root: Path) -> dict[str, str]:
    env = {}
    for line in (root / "etc/stubernetes/setup.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = " ".join(shlex.split(value))
    return env


def kubeadm_facts(root: Path) -> JSON:
    """What the stand-ins need to know of kubeadm's configs (they run without PyYAML):
    kubeadm.yaml's facts at the top, and every config file's under `configs`."""
    configs = {
        path: _config_facts(root, path)
        for path in (KUBEADM_CONFIG, KUBEADM_JOIN_CONFIG)
        if (root / path.lstrip("/")).exists()
    }
    main = configs[KUBEADM_CONFIG]
    documents = [d for d in yaml.safe_load_all((root / KUBEADM_CONFIG.lstrip("/")).read_bytes())]
    registration = documents[0]["nodeRegistration"]
    labels: dict[str, str] = {}
    for arg in registration.get("kubeletExtraArgs", []):
        if arg["name"] == "node-labels":
            labels.update(pair.split("=", 1) for pair in arg["value"].split(","))
    ca_file = root / "etc/stubernetes/pki/ca.crt"
    own_ca_hash = ca_cert_hash(ca_file.read_text()) if ca_file.exists() else None
    for facts in configs.values():
        if facts["pinned"] is None:
            facts["pinned"] = [own_ca_hash]
    etcd_patch = root / KUBEADM_PATCHES.lstrip("/") / "etcd+strategic.yaml"
    etcd_level = None
    if main["patches"] == KUBEADM_PATCHES and etcd_patch.exists():
        patch = yaml.safe_load(etcd_patch.read_text())
        etcd_level = patch["spec"]["securityContext"]["seLinuxOptions"]["level"]
    env = _setup_env(root)
    return {
        "config_path": KUBEADM_CONFIG,
        "config_sha256": main["sha256"],
        "configs": configs,
        "kind": main["kind"],
        "node_name": registration["name"],
        "node_labels": labels,
        "token": main["token"],
        "endpoint": main["endpoint"],
        "ca_cert_hashes": main["pinned"],
        "ca_hash": own_ca_hash,
        "control_plane": main["control_plane"],
        "certificate_key": main["certificate_key"],
        "advertise_address": main["endpoint_local"].get("advertiseAddress", registration["name"]),
        "peer_endpoints": env.get("PEER_API_ENDPOINTS", "").split(),
        "kubernetes_minor": env["KUBERNETES_MINOR"],
        "etcd_selinux_level": etcd_level,
    }


class SimMachine:
    """One simulated machine: a scratch root the real Ignition wrote, and its simulated world."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.root = directory / "root"
        self.sim = directory / "sim"
        self.crash_discards_staged = True

    # --------------------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, directory: Path, config: bytes, cluster: JSON) -> SimMachine:
        machine = cls(directory)
        machine.sim.mkdir(parents=True)
        write_state(machine.sim / "cluster.state", cluster)
        write_state(machine.sim / "counters.state", {"calls": 0, "keys": {}})
        write_state(machine.sim / "plan.state", {})
        (machine.sim / "calls.log").write_text("")
        (machine.sim / "invocations").write_text("0\n")
        machine._install_standins()
        machine.install(config)
        return machine

    def _install_standins(self) -> None:
        bin_dir = self.sim / "bin"
        bin_dir.mkdir()
        program = bin_dir / "standin"
        program.write_text(
            f"#!{sys.executable} -IS\n"
            "import sys\n"
            f"sys.path.insert(0, {str(STANDIN_SOURCE.parent)!r})\n"
            # Last, so that it costs nothing unless a stand-in imports what only it has: the
            # AES-GCM of kubeadm's download-certs (the cryptography package).
            f"sys.path.append({str(CRYPTOGRAPHY_PATH)!r})\n"
            "from node_standin import main\n"
            "sys.exit(main())\n"
        )
        program.chmod(0o755)
        for name in STANDINS:
            (bin_dir / name).symlink_to("standin")
        (self.sim / "trace.bash").write_text(TRACE_BASH)

    def install(self, config: bytes) -> None:
        """A fresh install from the same or another Ignition config: the disk is wiped (the
        simulated world beyond this machine, the cluster, is kept)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir()
        workdir = self.sim / "ignition"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir()
        apply_ignition(config, self.root, workdir)
        shutil.rmtree(workdir)
        for path in BOUND_PATHS:
            (self.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        previous = self.state() if (self.sim / "machine.state").exists() else None
        facts = kubeadm_facts(self.root)
        installs = previous["installs"] + 1 if previous else 1
        write_state(
            self.sim / "machine.state",
            {
                "name": facts["node_name"],
                "installs": installs,
                "incarnation": f"{facts['node_name']}-install-{installs}",
                "facts": facts,
                "deployments": {
                    "booted": {
                        "id": "deployment-0",
                        "packages": list(FCOS_PACKAGES),
                        "requested": [],
                    },
                    "staged": None,
                },
                "next_deployment": 0,
                "units": {},
                "presets_applied": False,
                "kubelet": {"configured": False, "running": False},
                # Fedora CoreOS enforces SELinux. `labels`: what chcon set (path -> type and
                # level, applying below the path too); the policy's labels everywhere else.
                "selinux": {"enabled": True, "labels": {}},
                # The SELinux level this machine's etcd runs at once kubeadm started it.
                "etcd_level": None,
                "reboot_requested": False,
                "last_shutdown": None,
                "boots": previous["boots"] if previous else 0,
                "staged_discarded": 0,
            },
        )

    def remove(self) -> None:
        shutil.rmtree(self.directory)

    def clone(self, directory: Path) -> SimMachine:
        shutil.copytree(self.directory, directory, symlinks=True)
        twin = SimMachine(directory)
        twin.crash_discards_staged = self.crash_discards_staged
        return twin

    # ------------------------------------------------------------------------------- state

    def state(self) -> JSON:
        return read_state(self.sim / "machine.state")

    def cluster(self) -> JSON:
        return read_state(self.sim / "cluster.state")

    def update_state(self, change: Callable[[JSON], object]) -> None:
        state = self.state()
        change(state)
        write_state(self.sim / "machine.state", state)

    def update_cluster(self, change: Callable[[JSON], object]) -> None:
        cluster = self.cluster()
        change(cluster)
        write_state(self.sim / "cluster.state", cluster)

    def set_plan(self, plan: JSON) -> None:
        write_state(self.sim / "plan.state", plan)

    def status(self) -> dict[str, str]:
        path = self.root / "var/lib/stubernetes/status"
        if not path.exists():
            return {}
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def unit_enabled(self, unit: str = SETUP_UNIT) -> bool:
        return bool(self.state()["units"].get(unit) == "enabled")

    def invocations(self) -> int:
        """How many scripts have started, over all boots."""
        return int((self.sim / "invocations").read_text().strip() or 0)

    def call_count(self) -> int:
        return int(read_state(self.sim / "counters.state")["calls"])

    def calls(self) -> list[CallRecord]:
        records: dict[int, CallRecord] = {}
        for line in (self.sim / "calls.log").read_text().splitlines():
            entry = ast.literal_eval(line)
            seq = entry["seq"]
            if "argv" in entry and "end" not in entry:
                records[seq] = CallRecord(
                    seq=seq,
                    key=entry["key"],
                    argv=entry["argv"],
                    time=entry["time"],
                    boot=entry["boot"],
                    do=entry["do"],
                    status=entry["status"],
                    booted=entry["booted"],
                    staged=entry["staged"],
                )
            else:
                record = records[seq]
                record.end = entry["end"]
                record.rc = entry.get("rc")
                record.effect = entry.get("effect", record.effect)
                record.steps = entry.get("steps", record.steps)
                record.where = entry.get("where")
        return [records[seq] for seq in sorted(records)]

    def trace(self) -> list[str]:
        path = self.sim / "trace"
        return path.read_text().splitlines() if path.exists() else []

    # -------------------------------------------------------------------------------- boot

    def boot(self, timeout: float = BOOT_TIMEOUT_SECONDS, trace: bool = False) -> Boot:
        """Power on, let systemd decide about the unit, run it; the boot ends when the unit's
        commands have ended (the machine then idles), a reboot was requested, or a kill hit."""
        state = self.state()
        state["boots"] += 1
        deployments = state["deployments"]
        if deployments["staged"] is not None:
            if state["last_shutdown"] == "crash" and self.crash_discards_staged:
                deployments["staged"] = None
                state["staged_discarded"] += 1
            else:
                deployments["booted"], deployments["staged"] = deployments["staged"], None
        state["reboot_requested"] = False
        (self.sim / "reboot-requested").unlink(missing_ok=True)
        if not state["presets_applied"]:
            for name in (SETUP_UNIT,):
                state["units"].setdefault(name, f"{preset_policy(self.root, name)}d")
            state["presets_applied"] = True
        write_state(self.sim / "machine.state", state)
        self._start_kubelet()
        number = int(state["boots"])
        unit = parse_unit(self.file(f"/{UNIT_DIR}/{SETUP_UNIT}").read_text())
        if not self.unit_enabled():
            return Boot(number, ran=False, skipped="unit disabled")
        if DEFAULT_TARGET not in unit.wanted_by:
            return Boot(number, ran=False, skipped=f"enabled, but not wanted by {DEFAULT_TARGET}")
        unmet = unit.unmet_condition(self.root)
        if unmet is not None:
            return Boot(number, ran=False, skipped=f"{unmet} failed")
        return self._run_unit(number, unit, timeout, trace)

    def restart_unit(self, timeout: float = BOOT_TIMEOUT_SECONDS) -> Boot:
        """`systemctl restart stubernetes-setup` in the same boot, as an operator might."""
        unit = parse_unit(self.file(f"/{UNIT_DIR}/{SETUP_UNIT}").read_text())
        number = int(self.state()["boots"])
        unmet = unit.unmet_condition(self.root)
        if unmet is not None:
            return Boot(number, ran=False, skipped=f"{unmet} failed")
        return self._run_unit(number, unit, timeout, trace=False)

    def start_unit(self, name: str, timeout: float = BOOT_TIMEOUT_SECONDS) -> Boot:
        """`systemctl start NAME` in the current boot, as a timer starts its service: its
        conditions are checked and its commands run; a unit a timer starts needs no enabling."""
        unit = parse_unit(self.file(f"/{UNIT_DIR}/{name}").read_text())
        number = int(self.state()["boots"])
        unmet = unit.unmet_condition(self.root)
        if unmet is not None:
            return Boot(number, ran=False, skipped=f"{unmet} failed")
        return self._run_unit(number, unit, timeout, trace=False)

    def set_certificate_expiry(self, expiry: dict[str, float]) -> None:
        """Certificate renewal scenarios: when kubeadm's certificates expire (name as
        `kubeadm certs check-expiration` lists it -> epoch seconds); the stand-in kubeadm
        reports these, and a renewal replaces them (node_standin.py KUBEADM_CERTS)."""
        self.update_state(lambda state: state.setdefault("certificates", {}).update(expiry))

    def boot_until_settled(self, max_boots: int = 8) -> list[Boot]:
        """Boot until a boot where the unit does not run at all, or `max_boots`."""
        boots = []
        for _ in range(max_boots):
            boot = self.boot()
            boots.append(boot)
            if not boot.ran:
                break
        return boots

    def _start_kubelet(self) -> None:
        """At boot, the kubelet runs where kubeadm configured it and left it credentials; it
        heartbeats (or registers) its Node, and runs the static pods of a control plane."""
        state = self.state()
        facts = state["facts"]
        name = facts["node_name"]
        runs = (
            state["units"].get("kubelet.service") == "enabled"
            and any(p.startswith("kubelet-") for p in state["deployments"]["booted"]["packages"])
            and state["kubelet"]["configured"]
            and self.file("/etc/kubernetes/kubelet.conf").exists()
        )
        state["kubelet"]["running"] = runs
        write_state(self.sim / "machine.state", state)
        cluster = self.cluster()
        # The static pods start in new pod sandboxes: CRI-O gives each new sandbox random MCS
        # categories unless the pod asks for a level, and etcd's files carry the categories of
        # the etcd that wrote them, so an etcd without a fixed level cannot read its own data.
        etcd_readable = not state["selinux"]["enabled"] or state["etcd_level"] != "random"
        if runs and not etcd_readable:
            for member in cluster["etcd"].values():
                if member["data"] == state["incarnation"]:
                    member["started"] = False
        if cluster.get("api_host") == name:
            serving = (
                runs
                and etcd_readable
                and self.file("/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
                and self.file("/etc/kubernetes/manifests/etcd.yaml").exists()
                and self.file("/var/lib/etcd/member").exists()
            )
            cluster["api"] = "up" if serving else "down"
        if runs and cluster["initialized"] and cluster["api"] == "up":
            node = cluster["nodes"].get(name)
            if node is None:
                labels = {**kubelet_default_labels(name), **facts["node_labels"]}
                node = cluster["nodes"][name] = {"labels": labels, "taints": []}
            node.update(kubelet="running", heartbeat_from=state["incarnation"])
        write_state(self.sim / "cluster.state", cluster)

    def _boot_script(self, unit: UnitFile) -> str:
        ovl = self.sim / "ovl"
        mkdirs = []
        fstab = []
        for host, name in OVERLAID.items():
            upper, work = ovl / "upper" / name, ovl / "work" / name
            mkdirs += [upper, work]
            for bound in BOUND_PATHS:
                if overlay_of(bound) == host and not Path(bound).exists():
                    mkdirs.append(upper / bound[len(host) + 1 :])
            options = f"lowerdir={host},upperdir={upper},workdir={work}"
            fstab.append(f"stubernetes-sim {host} overlay {options} 0 0")
        fstab += [f"{self.root / bound.lstrip('/')} {bound} none bind 0 0" for bound in BOUND_PATHS]
        (self.sim / "fstab").write_text("\n".join(fstab) + "\n")
        lines = [
            "set -e",
            # Overlays (their upper layers on a tmpfs of this namespace) over the host's
            # directories, so that the mount points can be made without touching the host; then
            # the scratch root's directories over the real paths. One `mount -a` does it all.
            f"mount -t tmpfs stubernetes-sim {shlex.quote(str(ovl))}",
            "mkdir -p " + " ".join(shlex.quote(str(d)) for d in mkdirs),
            'mount -a -T "$SIM_DIR/fstab"',
        ]
        lines += [
            "cd /",
            "export SIM_WRAPPER_PID=$$ BASH_ENV=$SIM_DIR/trace.bash",
            # Job control: each command gets its own process group, which a kill takes down
            # without taking this wrapper, which then reports what was written outside.
            "set -m +e",
            "rc=0",
        ]
        for prefix, argv in unit.exec_start:
            command = " ".join(shlex.quote(a) for a in argv)
            lines += [
                "if [[ $rc == 0 && ! -e $SIM_DIR/reboot-requested ]]; then",
                f"\t{command} </dev/null",
                f"\trc=$?{'; rc=0' if '-' in prefix else ''}",
                "fi",
            ]
        lines += [
            f"(cd {shlex.quote(str(ovl / 'upper'))} && find . -mindepth 2) "
            '>"$SIM_DIR/upper-listing" 2>&1',
            "exit $rc",
        ]
        return "\n".join(lines) + "\n"

    def _run_unit(self, number: int, unit: UnitFile, timeout: float, trace: bool) -> Boot:
        (self.sim / "ovl").mkdir(exist_ok=True)
        (self.sim / "killed").unlink(missing_ok=True)
        (self.sim / "upper-listing").unlink(missing_ok=True)
        plan = read_state(self.sim / "plan.state")
        env = {
            "PATH": f"{self.sim / 'bin'}:{SYSTEM_PATH}",
            "LANG": "C.UTF-8",
            "SIM_DIR": str(self.sim),
        }
        if plan.get("kill_at"):
            env["SIM_KILL_AT"] = str(plan["kill_at"])
        if trace:
            env["SIM_TRACE"] = "1"
        journal_dir = self.sim / "journal"
        journal_dir.mkdir(exist_ok=True)
        journal_file = journal_dir / f"boot-{number}.log"
        scripts_before, calls_before = self.invocations(), self.call_count()
        if unit.timeout_start is not None:
            timeout = min(timeout, unit.timeout_start)
        with journal_file.open("a") as journal:
            process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "/bin/bash",
                    "-c",
                    self._boot_script(unit),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=journal,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            # A blocking wait (Popen.wait with a timeout polls, up to 50 ms late), and a timer
            # that ends a boot that hangs.
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                kill_session(process.pid)

            timer = threading.Timer(timeout, expire)
            timer.start()
            returncode = process.wait()
            timer.cancel()
            timer.join()
            hung = expired.is_set()
            kill_session(process.pid)
        killed_file = self.sim / "killed"
        killed = killed_file.read_text().strip() if killed_file.exists() else None
        state = self.state()
        state["last_shutdown"] = "crash" if killed or hung else "clean"
        write_state(self.sim / "machine.state", state)
        listing_file = self.sim / "upper-listing"
        listing = listing_file.read_text().split() if listing_file.exists() else []
        allowed = set()
        for bound in BOUND_PATHS:
            host = overlay_of(bound)
            if host is None:
                continue
            relative = Path(bound[len(host) + 1 :])
            # The mount point and the directories made to hold it.
            allowed |= {f"./{OVERLAID[host]}/{p}" for p in (relative, *relative.parents[:-1])}
        return Boot(
            number,
            ran=True,
            exit_code=None if hung or killed else returncode,
            killed=killed,
            hung=hung,
            reboot_requested=bool(state["reboot_requested"]),
            outside_writes=sorted(set(listing) - allowed),
            journal=journal_file.read_text(),
            scripts=(scripts_before, self.invocations()),
            calls=(calls_before, self.call_count()),
        )


# ------------------------------------------------------------------------------------- helpers


def overlay_of(bound: str) -> str | None:
    """The deepest overlaid host directory above a bound path: where its mount point is made
    (None: the mount point is the host's own, which exists)."""
    return max((host for host in OVERLAID if bound.startswith(host + "/")), key=len, default=None)


def read_state(path: Path) -> JSON:
    """The simulation's state files are Python literals, which the stand-ins read fast."""
    data: JSON = ast.literal_eval(path.read_text())
    return data


def write_state(path: Path, data: JSON) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(repr(data) + "\n")
    os.replace(tmp, path)


def session_members(sid: int) -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, session. Zombies are dead already.
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            yield int(entry.name)


def kill_session(sid: int) -> None:
    """What the end of a boot does to whatever the boot started, wherever its process group."""
    for _ in range(50):
        members = list(session_members(sid))
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    raise RuntimeError(f"processes of session {sid} survive SIGKILL")


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file and directory under `root` (relative path -> mode and content digest)."""
    result = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative in skip:
            continue
        mode = oct(path.lstat().st_mode & 0o7777)
        if path.is_symlink():
            result[relative] = f"link {os.readlink(path)}"
        elif path.is_dir():
            result[relative] = f"dir {mode}"
        else:
            result[relative] = f"{mode} {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    return result


# --------------------------------------------------------------------------------- crash suite


@dataclass(frozen=True)
class TracedStep:
    point: str  # "invocation.step"
    digest: str
    where: str
    command: str

    @property
    def invocation(self) -> int:
        return int(self.point.split(".")[0])


@dataclass
class Reference:
    """An undisturbed run, with the state before each boot kept to start kill runs from."""

    boots: list[Boot]
    snapshots: list[SimMachine]  # the machine before each boot that ran the unit
    steps: list[TracedStep]
    calls: list[CallRecord]
    final: JSON

    def snapshot_for_step(self, step: TracedStep) -> SimMachine:
        for boot, snapshot in zip(self.boots, self.snapshots, strict=False):
            if boot.scripts[0] < step.invocation <= boot.scripts[1]:
                return snapshot
        raise ValueError(f"no boot ran command {step.point}")

    def snapshot_for_call(self, seq: int) -> SimMachine:
        for boot, snapshot in zip(self.boots, self.snapshots, strict=False):
            if boot.calls[0] < seq <= boot.calls[1]:
                return snapshot
        raise ValueError(f"no boot made call {seq}")


@dataclass(frozen=True)
class KillPoint:
    label: str
    plan: JSON
    snapshot: SimMachine


def reference_run(template: SimMachine, workdir: Path, max_boots: int = 8) -> Reference:
    machine = template.clone(workdir / "reference")
    boots: list[Boot] = []
    snapshots: list[SimMachine] = []
    for number in range(max_boots):
        snapshot = machine.clone(workdir / f"before-boot-{number + 1}")
        boot = machine.boot(trace=True)
        boots.append(boot)
        if not boot.ran:
            break
        snapshots.append(snapshot)
    steps = []
    for line in machine.trace():
        point, digest, where, command = line.split("\t", 3)
        steps.append(TracedStep(point, digest, where, command))
    return Reference(boots, snapshots, steps, machine.calls(), final_state(machine))


def step_kill_points(reference: Reference, every: bool = False) -> tuple[list[KillPoint], int]:
    """A kill before each command the scripts run; all of them, or one for each distinct state
    they leave behind (a run is determined by the state it starts from, so a kill before
    either of two commands that meet the same persistent state is the same kill).
    Returns the points to run and the number of commands."""
    seen: set[str] = set()
    points = []
    for step in reference.steps:
        if not every and step.digest in seen:
            continue
        seen.add(step.digest)
        points.append(
            KillPoint(
                f"SIGKILL before command {step.point} ({step.where}: {step.command})",
                {"kill_at": step.point},
                reference.snapshot_for_step(step),
            )
        )
    return points, len(reference.steps)


def call_kill_points(reference: Reference) -> list[KillPoint]:
    """A kill inside each stand-in call: before its state change, between the steps of it
    (kubeadm's phases), and after it (before the command returns)."""
    points = []
    for call in reference.calls:
        snapshot = reference.snapshot_for_call(call.seq)
        kills: list[tuple[str, JSON]] = [("before its state change", {"do": "kill"})]
        kills += [
            (f"after step {step}", {"do": "kill-step", "step": step}) for step in call.steps[:-1]
        ]
        kills.append(("after its state change", {"do": "kill-after"}))
        for where, fault in kills:
            points.append(
                KillPoint(
                    f"kill in call {call.seq} ({' '.join(call.argv)}) {where}",
                    {"kill_call": {"seq": call.seq, **fault}},
                    snapshot,
                )
            )
    return points


def final_state(machine: SimMachine) -> JSON:
    """What must be the same however the run went: files, status, units, the cluster."""
    state = machine.state()
    cluster = machine.cluster()
    return {
        "files": tree_digest(
            machine.root,
            skip=("var/lib/stubernetes/status", "var/lib/stubernetes/phase.log"),
        ),
        "status": {k: v for k, v in machine.status().items() if k not in ("updated", "last_error")},
        "units": state["units"],
        "packages": state["deployments"]["booted"]["packages"],
        "staged": state["deployments"]["staged"],
        "kubelet": state["kubelet"],
        "selinux": state["selinux"],
        "etcd_level": state["etcd_level"],
        "cluster": {
            "initialized": cluster["initialized"],
            "api": cluster["api"],
            "nodes": {
                name: {k: v for k, v in node.items() if k not in ("stopped_at", "adopted")}
                for name, node in cluster["nodes"].items()
            },
            "etcd": cluster["etcd"],
            "tokens": sorted(cluster["tokens"]),
            "objects": sorted(cluster["objects"]),
        },
    }


def invariant_violations(machine: SimMachine, boots: list[Boot], settled: bool = True) -> list[str]:
    """What must hold of every run, whatever was killed where; `settled`: and setup is over."""
    problems = []
    calls = machine.calls()
    joined = None
    for call in calls:
        if call.key in ("kubeadm init", "kubeadm join"):
            if joined is not None:
                problems.append(f"call {call.seq}: {call.key} after call {joined} completed it")
            if call.effect == "complete":
                joined = call.seq
        if call.key == "rpm-ostree install" and call.staged is not None:
            problems.append(f"call {call.seq}: layering requested again over {call.staged}")
        if call.end == "unmodeled":
            problems.append(f"call {call.seq}: unmodeled {call.argv}")
    layered = sum(1 for c in calls if c.key == "rpm-ostree install" and c.effect == "complete")
    discarded = int(machine.state()["staged_discarded"])
    if layered > 1 + discarded:
        problems.append(f"{layered} layering requests for {discarded} lost staged deployments")
    for boot in boots:
        if boot.outside_writes:
            problems.append(
                f"boot {boot.number} wrote outside the bound paths: {boot.outside_writes}"
            )
        if boot.hung:
            problems.append(f"boot {boot.number} hung")
    if settled and boots and boots[-1].ran:
        problems.append(f"still running setup after {len(boots)} boots: {boots[-1]}")
    return problems
