"""The real `kubeadm upgrade apply` of the next release on the program's own control plane.

The stack is the example's at the release of the built kubeadm (control_plane.stacks
for_built_kubeadm, v1.36.3). The init controller's control plane starts from kubeadm's init
phases with the kubelet stand-in (control_plane.kubelet_standin) running its static Pods and
posting their mirror Pods and its Node, which `kubeadm upgrade apply` reads. The machine is
then as the upgrade service finds it: kubeadm init's later phases that need no kubelet have run
(kubelet-start's files, mark-control-plane, the addons: ignition/files/setup/phase-kubeadm runs
`kubeadm init` and then `init phase addon all`), and its Node is cordoned, as the program's
upgrade step leaves it before it asks (components/scripts/upgrade-machine drain_node: drain =
cordon, then evict; nothing here runs on the Node but its static Pods, which a drain skips).

Then kubeadm v1.36.4 (the tool "kubernetes-upgrade") runs `kubeadm upgrade apply v1.36.4
--yes --patches /etc/stubernetes/kubeadm-patches`, ignition/files/upgrade/stubernetes-upgrade's
command line on a controller, with kubeadm's defaults the service keeps
(--certificate-renewal=true, --etcd-upgrade=true: kubernetes
`cmd/kubeadm/app/cmd/upgrade/apply.go` newCmdApply, `cmd/kubeadm/app/cmd/upgrade/common.go`
addApplyPlanFlags). What differs from the machine, and why:
- `--rootfs=<scratch root>`: kubeadm chroots there, so /etc/kubernetes is the machine's own
  path (control_plane.kubeadm);
- `--ignore-preflight-errors` of the three upgrade preflight checks that ask the node's OS and
  container runtime, which a scratch root has not (SystemVerification, ContainerRuntimeVersion,
  ImagePull: `cmd/kubeadm/app/preflight/checks.go` RunUpgradeChecks, RunPullImagesCheck);
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.cluster import COMPONENTS, ControlPlane, running_control_plane
from control_plane.kubeadm import KubeadmRun, config_args, kubeadm
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm
from cryptography import x509
from tool_cache import require_tool, tool_bin, tool_version

from ignition.kubeadm import ETCD_SELINUX_LEVEL, KUBEADM_PATCHES

pytestmark = pytest.mark.real

UPGRADE_TOOL = "kubernetes-upgrade"
RELEASE = tool_version(UPGRADE_TOOL)
BEFORE = tool_version("kubernetes")
# The upgrade preflight checks a scratch root cannot pass (see the module docstring).
UPGRADE_HOST_CHECKS = ("SystemVerification", "ContainerRuntimeVersion", "ImagePull")
KUBE_COMPONENTS = COMPONENTS[1:]
# What `kubeadm upgrade apply` renews with --certificate-renewal (its default): each
# component's certificates as it upgrades it (`cmd/kubeadm/app/phases/upgrade/staticpods.go`
# renewCertsByComponent: etcd's server, peer and healthcheck client; the API server's serving
# cert, its kubelet client, front-proxy client and etcd client; the kubeconfigs of the
# controller manager and scheduler), then admin.conf and super-admin.conf (StaticPodControlPlane).
RENEWED = {
    "pki/etcd/server.crt",
    "pki/etcd/peer.crt",
    "pki/etcd/healthcheck-client.crt",
    "pki/apiserver.crt",
    "pki/apiserver-kubelet-client.crt",
    "pki/front-proxy-client.crt",
    "pki/apiserver-etcd-client.crt",
    "controller-manager.conf",
    "scheduler.conf",
    "admin.conf",
    "super-admin.conf",
}
DRAIN_CHECK = "components/scripts/membership.sh drain_node"
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


def _certificates(root: Path) -> dict[str, Certificate]:
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


def _manifests(root: Path) -> dict[str, dict[str, Any]]:
    directory = root / "etc/kubernetes/manifests"
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


def _image(manifest: dict[str, Any]) -> str:
    (container,) = manifest["spec"]["containers"]
    return str(container["image"])


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


def _wait(what: str, check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"not after {timeout} s: {what}")


def _mirror_pods(plane: ControlPlane, node: str) -> dict[str, dict[str, Any]]:
    listed = plane.kubectl("-n", "kube-system", "get", "pods", "-o", "json", check=False)
    if listed.returncode != 0:
        return {}
    pods = json.loads(listed.stdout)["items"]
    return {
        p["metadata"]["name"].removesuffix(f"-{node}"): p
        for p in pods
        if p["metadata"].get("annotations", {}).get("kubernetes.io/config.mirror")
    }


def _all_running(plane: ControlPlane, node: str) -> bool:
    pods = _mirror_pods(plane, node)
    return sorted(pods) == sorted(COMPONENTS) and all(
        p["status"].get("phase") == "Running" for p in pods.values()
    )


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(for_built_kubeadm(example_values))


@pytest.fixture(scope="module")
def upgrade(output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgrade]:
    kubeadm_new = tool_bin(UPGRADE_TOOL, "kubeadm")
    if kubeadm_new is None:
        require_tool(UPGRADE_TOOL, "kubeadm")
    assert kubeadm_new is not None
    require_tool("kubernetes-upgrade-control-plane", "kube-apiserver")
    node = output.init_controller.name
    work = tmp_path_factory.mktemp("kubeadm-upgrade-apply")
    with running_control_plane(output, work, kubelet=True) as plane:
        try:
            root = plane.root
            _wait("the mirror Pods of every static Pod, Running", lambda: _all_running(plane, node))
            # kubeadm init's phases after the control plane that need no kubelet running
            # (`cmd/kubeadm/app/cmd/init.go` newCmdInit): kubelet-start writes the kubelet's
            # files (/var/lib/kubelet/config.yaml, which upgrade apply backs up), the upload,
            # mark-control-plane labels and taints the Node, and the addons.
            plane.phases.append(
                kubeadm(["init", "phase", "kubelet-start", *config_args()], rootfs=root)
            )
            plane.init_phase("mark-control-plane")
            plane.init_phase("addon", "all")
            plane.kubectl("cordon", node)
            plane.kubectl("create", "configmap", OBJECT_NAME, "--from-literal=written=before")
            install_host_binary(root, "cp")
            install_dev_null(root)
            manifests_before = _manifests(root)
            certificates_before = _certificates(root)
            started = time.time()
            begun = time.monotonic()
            run = kubeadm(
                [
                    "upgrade", "apply", RELEASE, "--yes", "--patches", KUBEADM_PATCHES,
                    f"--ignore-preflight-errors={','.join(UPGRADE_HOST_CHECKS)}",
                ],
                rootfs=root,
                wrap=plane.wrap,
                binary=kubeadm_new,
                timeout=1200,
                check=False,
            )  # fmt: skip
            seconds = time.monotonic() - begun
            record = Upgrade(
                plane, node, run, seconds, started, manifests_before, _manifests(root),
                certificates_before, _certificates(root),
            )  # fmt: skip
            _report(record)
            yield record
        finally:
            if plane.kubelet is not None:
                print(plane.kubelet.log_tails(80))


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
    print(f"kubeadm upgrade apply {RELEASE}: exit {run.returncode} in {upgrade.seconds:.1f} s")
    print(run.stdout)
    print(run.stderr)
    for name, lines in _restarts(upgrade).items():
        print(f"{name:24} {'; '.join(lines)}")
    for name, after in upgrade.certificates_after.items():
        before = upgrade.certificates_before.get(name)
        print(f"{name:36} notAfter {before.not_after if before else '-'} -> {after.not_after}")


def test_kubeadm_upgrade_apply_exits_0(upgrade: Upgrade) -> None:
    assert upgrade.run.returncode == 0, upgrade.run.report()
    assert (
        f'[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "{RELEASE}"'
        in upgrade.run.stdout
    )


def test_the_manifests_name_the_new_release(upgrade: Upgrade) -> None:
    for name in KUBE_COMPONENTS:
        assert _image(upgrade.manifests_before[name]).endswith(f":{BEFORE}")
        assert _image(upgrade.manifests_after[name]).endswith(f":{RELEASE}")


def test_the_api_server_runs_the_new_release(upgrade: Upgrade) -> None:
    version = json.loads(upgrade.plane.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == RELEASE


def test_every_component_was_restarted_on_the_new_binary(upgrade: Upgrade) -> None:
    assert upgrade.plane.kubelet is not None
    events = [e for e in upgrade.plane.kubelet.events() if e["time"] >= upgrade.started]
    for name in COMPONENTS:
        own = [e for e in events if e["pod"] == name and e["event"] in ("started", "exited")]
        # etcd once too, on its unchanged image: its manifest is written anew and its
        # certificates renewed (test_etcd_keeps_its_release).
        new_image = "3.6.8-0" if name == "etcd" else RELEASE
        changed = [
            i
            for i, e in enumerate(own)
            if e["event"] == "started" and e["image"].endswith(f":{new_image}")
        ]
        assert changed, f"{name}: never started on {new_image}: {own}"
        # Before its manifest changes, an old controller manager or scheduler may exit on its
        # own while the API server restarts: it cannot renew its leader lease and exits
        # (OnStoppedLeading calls klog.FlushAndExit in kubernetes v1.36.3
        # cmd/kube-controller-manager/app/controllermanager.go and cmd/kube-scheduler/app/
        # server.go), and the kubelet starts it again on the image its manifest still names;
        # each such start follows an exit of the same Pod.
        for i, e in enumerate(own[: changed[0]]):
            if e["event"] == "started" and name != "etcd":
                assert e["image"].endswith(f":{BEFORE}"), (name, e)
                assert i > 0 and own[i - 1]["event"] == "exited", (name, own)
        after = [e for e in own[changed[0] + 1 :] if e["event"] == "started"]
        assert all(e["image"].endswith(f":{new_image}") for e in after), (name, after)
    pods = _mirror_pods(upgrade.plane, upgrade.node)
    for name in KUBE_COMPONENTS:
        assert _image(pods[name]).endswith(f":{RELEASE}")
        assert pods[name]["status"]["phase"] == "Running"


def test_kubeadm_config_names_the_new_release(upgrade: Upgrade) -> None:
    configmap = json.loads(
        upgrade.plane.kubectl(
            "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json"
        ).stdout
    )
    cluster = yaml.safe_load(configmap["data"]["ClusterConfiguration"])
    assert cluster["kubernetesVersion"] == RELEASE


def test_the_upgrade_renews_the_control_planes_certificates_and_no_other(upgrade: Upgrade) -> None:
    before, after = upgrade.certificates_before, upgrade.certificates_after
    assert sorted(before) == sorted(after)
    renewed = {name for name in after if after[name].serial != before[name].serial}
    assert renewed == RENEWED
    for name in renewed:
        assert after[name].not_after > before[name].not_after
    # The CAs, the service-account key's pair and the kubelet's own kubeconfig stay.
    assert {"pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "kubelet.conf"} <= set(
        after
    ) - renewed


def test_etcd_keeps_its_release(upgrade: Upgrade) -> None:
    """kubeadm v1.36.3 and v1.36.4 name the same etcd for Kubernetes 1.36 (kubernetes
    `cmd/kubeadm/app/constants/constants.go` SupportedEtcdVersion[36] = "3.6.8-0" in both), so
    the upgrade keeps etcd's image (performEtcdStaticPodUpgrade compares it with the running
    manifest's)."""
    assert _image(upgrade.manifests_before["etcd"]) == "registry.k8s.io/etcd:3.6.8-0"
    assert _image(upgrade.manifests_after["etcd"]) == "registry.k8s.io/etcd:3.6.8-0"


def _selinux_level(manifest: dict[str, Any]) -> str | None:
    options = manifest["spec"].get("securityContext", {}).get("seLinuxOptions", {})
    level = options.get("level")
    return str(level) if level is not None else None


def test_etcd_keeps_the_programs_selinux_level(upgrade: Upgrade) -> None:
    assert _selinux_level(upgrade.manifests_before["etcd"]) == ETCD_SELINUX_LEVEL
    assert _selinux_level(upgrade.manifests_after["etcd"]) == ETCD_SELINUX_LEVEL


def test_objects_written_before_are_still_served(upgrade: Upgrade) -> None:
    data = upgrade.plane.kubectl("get", "configmap", OBJECT_NAME, "-o", "jsonpath={.data.written}")
    assert data.stdout == "before"
