"""A simulated Fedora CoreOS machine: its disk as the REAL Ignition wrote it, and its boots.

The composition of the simulated host's parts: the machine is a directory; `root/` is what the
real Ignition binary wrote from the project's config (fetching kubeadm, kubectl, kubelet and the
CNI plugins' archive from Matchbox, sim_downloads.py), `sim/` the state of everything else:
the machine's units, runtime and kubelet (machine.state), the cluster (cluster.state,
sim_cluster.py), the fault plan (plan.state) and the call log of the stand-ins (calls.log).

One boot, as Fedora CoreOS boots (a stand-in for systemd's boot, sim_systemd.py):
  * power-on: nothing runs yet; on the first boot the presets decide which units are enabled;
    the runtime starts (containerd.service, enabled by Ignition: standin_runtime.py), then the
    kubelet where it can (enabled, its binary in place, configured by kubeadm, with
    credentials and a runtime), bringing this machine's API server up if it serves the cluster;
  * the setup unit: its enablement, `WantedBy=` and `ConditionPathExists=` decide whether it
    runs; its `ExecStart=` lines then run as systemd runs them (sim_exec.py), the stand-ins
    first in PATH and kubeadm, kubectl and kubelet where Ignition wrote them;
  * the boot ends when the unit's commands have ended (the machine then idles), when one asked
    for a reboot, or when a kill (a power cut) struck.
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cryptography
from ignition_root import apply_ignition
from sim_cluster import kubelet_default_labels
from sim_exec import BOUND_PATHS, TRACE_BASH, run_exec_start
from sim_kubeadm_config import kubeadm_facts
from sim_systemd import (
    DEFAULT_TARGET,
    UnitFile,
    executable,
    first_boot_enablement,
    read_unit,
)
from standin_runtime import CONTAINERD, power_off, runtime, start_containerd

JSON = dict[str, Any]

SETUP_UNIT = "stubernetes-setup.service"
KUBELET_UNIT = "kubelet.service"
# The units whose enablement the machine keeps (presets on first boot, then systemctl).
TRACKED_UNITS = (SETUP_UNIT, CONTAINERD, "docker.service", KUBELET_UNIT)
STANDIN_SOURCE = Path(__file__).with_name("node_standin.py")
CRYPTOGRAPHY_PATH = Path(cryptography.__file__).resolve().parent.parent
# What the Fedora CoreOS image gives the scripts that cannot run here, and the real tools run
# through the recorder. (kubeadm, kubectl and kubelet are the machine's own, from Ignition.)
STANDINS = ("systemctl", "reboot", "curl", "chcon", "selinuxenabled", "sha256sum", "tar")
BOOT_TIMEOUT_SECONDS = 60.0


def standin_program() -> bytes:
    """The program every stand-in runs (node_standin.py under the name it is run by)."""
    return (
        f"#!{sys.executable} -IS\n"
        "import sys\n"
        f"sys.path.insert(0, {str(STANDIN_SOURCE.parent)!r})\n"
        # Last, so that it costs nothing unless a stand-in imports what only it has: the
        # AES-GCM of kubeadm's download-certs (the cryptography package).
        f"sys.path.append({str(CRYPTOGRAPHY_PATH)!r})\n"
        "from node_standin import main\n"
        "sys.exit(main())\n"
    ).encode()


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
    end: str | None = None  # "exit", "killed", "signal", "unmodeled"; None: cut short outside
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


def read_state(path: Path) -> JSON:
    """The simulation's state files are Python literals, which the stand-ins read fast."""
    data: JSON = ast.literal_eval(path.read_text())
    return data


def write_state(path: Path, data: JSON) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(repr(data) + "\n")
    tmp.replace(path)


class SimMachine:
    """One simulated machine: a disk the real Ignition wrote, and its simulated world."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.root = directory / "root"
        self.sim = directory / "sim"

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
        bin_dir = machine.sim / "bin"
        bin_dir.mkdir()
        (bin_dir / "standin").write_bytes(standin_program())
        (bin_dir / "standin").chmod(0o755)
        for name in STANDINS:
            (bin_dir / name).symlink_to("standin")
        (machine.sim / "trace.bash").write_text(TRACE_BASH)
        machine.install(config)
        return machine

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
        state: JSON = {
            "name": facts["node_name"],
            "installs": installs,
            "incarnation": f"{facts['node_name']}-install-{installs}",
            "facts": facts,
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
        }
        runtime(state)
        write_state(self.sim / "machine.state", state)

    def remove(self) -> None:
        shutil.rmtree(self.directory)

    def clone(self, directory: Path) -> SimMachine:
        shutil.copytree(self.directory, directory, symlinks=True)
        return SimMachine(directory)

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

    def fail_runtime_starts(self, count: int) -> None:
        """The next `count` start jobs of containerd.service fail (at power-on or by
        `systemctl start`), as a runtime that exits before it is ready."""
        self.update_state(lambda state: runtime(state).update(fail_starts=count))

    def set_certificate_expiry(self, expiry: dict[str, float]) -> None:
        """Certificate renewal scenarios: when kubeadm's certificates expire (name as
        `kubeadm certs check-expiration` lists it -> epoch seconds); the stand-in kubeadm
        reports these, and a renewal replaces them (standin_kubeadm_certs.py)."""
        self.update_state(lambda state: state.setdefault("certificates", {}).update(expiry))

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
        state["reboot_requested"] = False
        (self.sim / "reboot-requested").unlink(missing_ok=True)
        if not state["presets_applied"]:
            state["units"].update(first_boot_enablement(self.root, TRACKED_UNITS))
            state["presets_applied"] = True
        power_off(state)
        if state["units"].get(CONTAINERD) == "enabled":
            start_containerd(state, str(self.root), "power-on")
        write_state(self.sim / "machine.state", state)
        self._start_kubelet()
        number = int(state["boots"])
        unit = read_unit(self.root, SETUP_UNIT).runnable()
        if not self.unit_enabled():
            return Boot(number, ran=False, skipped="unit disabled")
        if DEFAULT_TARGET not in unit.wanted_by:
            return Boot(number, ran=False, skipped=f"enabled, but not wanted by {DEFAULT_TARGET}")
        return self._start(number, unit, timeout, trace)

    def restart_unit(self, timeout: float = BOOT_TIMEOUT_SECONDS) -> Boot:
        """`systemctl restart stubernetes-setup` in the same boot, as an operator might."""
        return self.start_unit(SETUP_UNIT, timeout)

    def start_unit(self, name: str, timeout: float = BOOT_TIMEOUT_SECONDS) -> Boot:
        """`systemctl start NAME` in the current boot, as a timer starts its service: its
        conditions are checked and its commands run; a unit a timer starts needs no enabling."""
        unit = read_unit(self.root, name).runnable()
        return self._start(int(self.state()["boots"]), unit, timeout, trace=False)

    def boot_until_settled(self, max_boots: int = 8) -> list[Boot]:
        """Boot until a boot where the unit does not run at all, or `max_boots`."""
        boots = []
        for _ in range(max_boots):
            boot = self.boot()
            boots.append(boot)
            if not boot.ran:
                break
        return boots

    def _start(self, number: int, unit: UnitFile, timeout: float, trace: bool) -> Boot:
        unmet = unit.unmet_condition(self.root)
        if unmet is not None:
            return Boot(number, ran=False, skipped=f"{unmet} failed")
        journal_dir = self.sim / "journal"
        journal_dir.mkdir(exist_ok=True)
        journal = journal_dir / f"boot-{number}.log"
        scripts_before, calls_before = self.invocations(), self.call_count()
        kill_at = read_state(self.sim / "plan.state").get("kill_at")
        ran = run_exec_start(self.sim, self.root, unit, journal, timeout, str(kill_at or ""), trace)
        state = self.state()
        state["last_shutdown"] = "crash" if ran.killed or ran.hung else "clean"
        write_state(self.sim / "machine.state", state)
        return Boot(
            number,
            ran=True,
            exit_code=ran.returncode,
            killed=ran.killed,
            hung=ran.hung,
            reboot_requested=bool(state["reboot_requested"]),
            outside_writes=ran.outside_writes,
            journal=journal.read_text(),
            scripts=(scripts_before, self.invocations()),
            calls=(calls_before, self.call_count()),
        )

    def _start_kubelet(self) -> None:
        """At boot, the kubelet runs where it is enabled, its binary is in place, kubeadm
        configured it and left it credentials, and the runtime runs (without it the kubelet
        exits and systemd restarts it, RestartSec=10: its later start in the same boot, once
        something starts containerd, is not modelled). It heartbeats (or registers) its Node,
        and runs the static pods of a control plane."""
        state = self.state()
        facts = state["facts"]
        name = facts["node_name"]
        runs = (
            state["units"].get(KUBELET_UNIT) == "enabled"
            and executable(self.root, read_unit(self.root, KUBELET_UNIT))
            and runtime(state)["running"]
            and state["kubelet"]["configured"]
            and self.file("/etc/kubernetes/kubelet.conf").exists()
        )
        state["kubelet"]["running"] = runs
        write_state(self.sim / "machine.state", state)
        cluster = read_state(self.sim / "cluster.state")
        # The static pods start in new pod sandboxes: containerd gives each new sandbox its own
        # MCS categories unless the pod asks for a level (standin_selinux.py), and etcd's files
        # carry the categories of the etcd that wrote them, so an etcd without a fixed level
        # cannot read its own data.
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
