"""A cluster founded at the previous minor from the program's own files, for the real `kubeadm
upgrade` tests (tests/real/test_kubeadm_upgrade_apply_real.py, _node_real.py), and what they
read back from the machine's root and the kubelet stand-in.

`founded_cluster` starts the init controller's control plane with kubeadm v1.35.8 (the tool
"kubernetes-previous") and the kubelet stand-in, then brings the machine where the upgrade
service finds it: kubeadm init's later phases that need no running kubelet (kubelet-start's
files, mark-control-plane, the addons: ignition/files/setup/phase-kubeadm runs `kubeadm init`,
then `init phase addon all`), its Node cordoned, as the program's upgrade step leaves it before
it asks (components/scripts/upgrade-machine: drain = cordon, then evict; nothing runs on the
Node but its static Pods, which a drain skips). What differs from the machine, and why:
- `--rootfs=<scratch root>`: kubeadm chroots there, so /etc/kubernetes is the machine's own
  path (control_plane.kubeadm);
- `--ignore-preflight-errors` of the three upgrade preflight checks that ask the node's OS and
  container runtime, which a scratch root has not (SystemVerification, ContainerRuntimeVersion,
  ImagePull: kubernetes `cmd/kubeadm/app/preflight/checks.go` RunUpgradeChecks,
  RunPullImagesCheck);
- `cp` in the root: kubeadm copies etcd's data directory with `cp -r` before it touches etcd
  (`cmd/kubeadm/app/util/copy_unix.go` CopyDir, called by `cmd/kubeadm/app/phases/upgrade/
  staticpods.go` performEtcdStaticPodUpgrade); Fedora CoreOS has coreutils' cp, the scratch
  root gets this host's with its libraries, and /dev/null, which Go's os/exec opens for the
  command's standard input.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from tool_cache import require_tool, tool_version

from control_plane.cluster import (
    COMPONENTS,
    PREVIOUS_RELEASE,
    ControlPlane,
    running_control_plane,
)
from control_plane.kubeadm import KubeadmRun, config_args, kubeadm
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm

# The tool whose kubeadm and control plane the cluster is upgraded to: the example's release.
UPGRADE_TOOL = "kubernetes"
RELEASE = tool_version(UPGRADE_TOOL)
BEFORE = tool_version(PREVIOUS_RELEASE)
# The etcd each kubeadm names for its own minor (kubernetes `cmd/kubeadm/app/constants/
# constants.go` SupportedEtcdVersion: 3.6.6-0 for 1.35 in v1.35.8, 3.6.8-0 for 1.36 in v1.36.3).
ETCD_BEFORE = "3.6.6-0"
ETCD_AFTER = "3.6.8-0"
# The upgrade preflight checks a scratch root cannot pass (see the module docstring).
UPGRADE_HOST_CHECKS = ("SystemVerification", "ContainerRuntimeVersion", "ImagePull")
IGNORE_HOST_CHECKS = f"--ignore-preflight-errors={','.join(UPGRADE_HOST_CHECKS)}"
KUBE_COMPONENTS = COMPONENTS[1:]
OBJECT_NAME = "written-before-the-upgrade"


@dataclass(frozen=True)
class Certificate:
    not_after: datetime.datetime
    serial: int


@dataclass
class Upgrade:
    plane: ControlPlane
    node: str
    run: KubeadmRun
    seconds: float
    started: float
    manifests_before: dict[str, dict[str, Any]]
    manifests_after: dict[str, dict[str, Any]]
    certificates_before: dict[str, Certificate]
    certificates_after: dict[str, Certificate]
    # kubeadm's runs on the same cluster before this one (a plan, a first controller's apply).
    earlier: list[KubeadmRun] = field(default_factory=list)


def certificates(root: Path) -> dict[str, Certificate]:
    """Every certificate under /etc/kubernetes/pki and the client certificate of each
    kubeconfig in /etc/kubernetes, by path relative to /etc/kubernetes."""
    kubernetes = root / "etc/kubernetes"
    found: dict[str, Certificate] = {}
    for path in sorted((kubernetes / "pki").rglob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        found[path.relative_to(kubernetes).as_posix()] = Certificate(
            cert.not_valid_after_utc, cert.serial_number
        )
    for path in sorted(kubernetes.glob("*.conf")):
        (user,) = yaml.safe_load(path.read_text())["users"]
        data = user["user"].get("client-certificate-data")
        if data:
            cert = x509.load_pem_x509_certificate(base64.b64decode(data))
            found[path.name] = Certificate(cert.not_valid_after_utc, cert.serial_number)
    return found


def manifests(root: Path) -> dict[str, dict[str, Any]]:
    directory = root / "etc/kubernetes/manifests"
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


def image(manifest: dict[str, Any]) -> str:
    (container,) = manifest["spec"]["containers"]
    return str(container["image"])


def selinux_level(manifest: dict[str, Any]) -> str | None:
    options = manifest["spec"].get("securityContext", {}).get("seLinuxOptions", {})
    level = options.get("level")
    return str(level) if level is not None else None


def install_host_binary(root: Path, name: str) -> None:
    """This host's `name` and the shared libraries it loads, at their paths inside `root`."""
    binary = Path(shutil.which(name) or f"/bin/{name}").resolve()
    libraries = re.findall(r"(/\S+) \(0x", subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True
    ).stdout)  # fmt: skip
    for source in [binary, *map(Path, libraries)]:
        for target in {root / str(source).lstrip("/"), root / "usr/bin" / source.name}:
            if source != binary and target.parent.name == "bin":
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.resolve(), target)


def install_dev_null(root: Path) -> None:
    """/dev/null in `root`, as a machine's devtmpfs has it: Go's os/exec opens it for the
    standard input of every command kubeadm runs (`cp` above)."""
    null = root / "dev/null"
    null.parent.mkdir(parents=True, exist_ok=True)
    if not null.exists():
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))


def wait_for(what: str, check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"not after {timeout} s: {what}")


def mirror_pods(plane: ControlPlane, node: str) -> dict[str, dict[str, Any]]:
    listed = plane.kubectl("-n", "kube-system", "get", "pods", "-o", "json", check=False)
    if listed.returncode != 0:
        return {}
    pods = json.loads(listed.stdout)["items"]
    return {
        p["metadata"]["name"].removesuffix(f"-{node}"): p
        for p in pods
        if p["metadata"].get("annotations", {}).get("kubernetes.io/config.mirror")
    }


def cluster_configuration(plane: ControlPlane) -> dict[str, Any]:
    """The ClusterConfiguration kubeadm keeps in the cluster (kube-system/kubeadm-config), which
    `upgrade apply` uploads and `upgrade node` reads."""
    configmap = json.loads(
        plane.kubectl(
            "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json"
        ).stdout
    )
    configuration: dict[str, Any] = yaml.safe_load(configmap["data"]["ClusterConfiguration"])
    return configuration


def _all_running(plane: ControlPlane, node: str) -> bool:
    pods = mirror_pods(plane, node)
    return sorted(pods) == sorted(COMPONENTS) and all(
        p["status"].get("phase") == "Running" for p in pods.values()
    )


def previous_minor_program(example_values: dict[str, Any]) -> ProgramOutput:
    """The program's output for the example at the previous minor's release (the tool
    "kubernetes-previous"), which `founded_cluster` founds its cluster from."""
    return render_program(for_built_kubeadm(example_values, PREVIOUS_RELEASE))


@contextmanager
def founded_cluster(output: ProgramOutput, work: Path) -> Iterator[ControlPlane]:
    """The init controller's control plane at the previous minor, as the upgrade service finds
    it (see the module); stopped on leaving, with the stand-in's logs printed."""
    node = output.init_controller.name
    with running_control_plane(output, work, kubelet=True, release_tool=PREVIOUS_RELEASE) as plane:
        try:
            root = plane.root
            wait_for(
                "the mirror Pods of every static Pod, Running", lambda: _all_running(plane, node)
            )
            # kubeadm init's phases after the control plane that need no kubelet running
            # (`cmd/kubeadm/app/cmd/init.go` newCmdInit): kubelet-start writes the kubelet's
            # files (/var/lib/kubelet/config.yaml, which an upgrade backs up), the upload,
            # mark-control-plane labels and taints the Node, and the addons.
            plane.phases.append(
                kubeadm(
                    ["init", "phase", "kubelet-start", *config_args()],
                    rootfs=root,
                    binary=require_tool(PREVIOUS_RELEASE, "kubeadm"),
                )
            )
            plane.init_phase("mark-control-plane")
            plane.init_phase("addon", "all")
            plane.kubectl("cordon", node)
            plane.kubectl("create", "configmap", OBJECT_NAME, "--from-literal=written=before")
            install_host_binary(root, "cp")
            install_dev_null(root)
            yield plane
        finally:
            if plane.kubelet is not None:
                print(plane.kubelet.log_tails(80))


def new_kubeadm(plane: ControlPlane, args: Sequence[str], timeout: float = 300) -> KubeadmRun:
    """The new release's kubeadm on the machine's root, in the cluster's network namespace."""
    return kubeadm(
        list(args),
        rootfs=plane.root,
        wrap=plane.wrap,
        binary=require_tool(UPGRADE_TOOL, "kubeadm"),
        timeout=timeout,
        check=False,
    )


def upgrade_with(
    plane: ControlPlane, args: Sequence[str], earlier: Sequence[KubeadmRun] = ()
) -> Upgrade:
    """The new kubeadm's `args` (an upgrade) on the init controller, timed, with the machine's
    manifests and certificates before and after it."""
    node = plane.output.init_controller.name
    root = plane.root
    manifests_before, certificates_before = manifests(root), certificates(root)
    started = time.time()
    begun = time.monotonic()
    run = new_kubeadm(plane, args, timeout=1200)
    seconds = time.monotonic() - begun
    record = Upgrade(
        plane, node, run, seconds, started, manifests_before, manifests(root),
        certificates_before, certificates(root), list(earlier),
    )  # fmt: skip
    _report(record)
    return record


def _restarts(upgrade: Upgrade) -> dict[str, list[str]]:
    """Per component, each stop, start and ready during the upgrade, in seconds from its start."""
    assert upgrade.plane.kubelet is not None
    lines: dict[str, list[str]] = {name: [] for name in COMPONENTS}
    for event in upgrade.plane.kubelet.events():
        offset = event["time"] - upgrade.started
        if event["time"] < upgrade.started or event["pod"] not in lines:
            continue
        if event["event"] == "stopped":
            begun = offset - event["seconds"]
            lines[event["pod"]].append(f"stop {begun:.1f}-{offset:.1f} s")
        elif event["event"] == "exited":
            lines[event["pod"]].append(f"exited ({event['exit']}) {offset:.1f} s")
        elif event["event"] in {"started", "ready"}:
            tag = event["image"].rpartition(":")[2]
            lines[event["pod"]].append(f"{event['event']} {tag} {offset:.1f} s")
    return lines


def _report(upgrade: Upgrade) -> None:
    """What the upgrade did, on the test's output (pytest -s, or with a failure)."""
    run = upgrade.run
    print(f"kubeadm {' '.join(run.args[:3])}: exit {run.returncode} in {upgrade.seconds:.1f} s")
    print(run.stdout)
    print(run.stderr)
    for name, lines in _restarts(upgrade).items():
        print(f"{name:24} {'; '.join(lines)}")
    for name, after in upgrade.certificates_after.items():
        before = upgrade.certificates_before.get(name)
        print(f"{name:36} notAfter {before.not_after if before else '-'} -> {after.not_after}")


def restart_problems(upgrade: Upgrade) -> list[str]:
    """Why the components were not restarted once each on the new release ([] if they were).

    Before its manifest changes, an old controller manager or scheduler may exit on its own
    while the API server restarts: it cannot renew its leader lease and exits (OnStoppedLeading
    calls klog.FlushAndExit in kubernetes v1.36.3 cmd/kube-controller-manager/app/
    controllermanager.go and cmd/kube-scheduler/app/server.go), and the kubelet starts it again
    on the image its manifest still names; each such start must follow an exit of the Pod."""
    assert upgrade.plane.kubelet is not None
    events = [e for e in upgrade.plane.kubelet.events() if e["time"] >= upgrade.started]
    problems: list[str] = []
    for name in COMPONENTS:
        own = [e for e in events if e["pod"] == name and e["event"] in ("started", "exited")]
        old_tag, new_tag = (ETCD_BEFORE, ETCD_AFTER) if name == "etcd" else (BEFORE, RELEASE)
        tags = [e["image"].rpartition(":")[2] if e["event"] == "started" else None for e in own]
        if new_tag not in tags:
            problems.append(f"{name}: never started on {new_tag}: {own}")
            continue
        change = tags.index(new_tag)
        for i in range(change):
            if tags[i] is not None and (tags[i] != old_tag or i == 0 or tags[i - 1] is not None):
                problems.append(f"{name}: started before its change without an exit: {own}")
        if any(tag not in (None, new_tag) for tag in tags[change:]):
            problems.append(f"{name}: started on another image after {new_tag}: {own}")
    pods = mirror_pods(upgrade.plane, upgrade.node)
    for name in KUBE_COMPONENTS:
        if not image(pods[name]).endswith(f":{RELEASE}") or pods[name]["status"]["phase"] != (
            "Running"
        ):
            problems.append(f"{name}: its mirror Pod is not Running on {RELEASE}")
    return problems
