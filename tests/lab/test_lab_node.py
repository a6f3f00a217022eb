"""A real node: real systemd runs the machine's own units from its Ignition, across a power cut
in the middle of its setup and another after it, and a real kubelet on a real containerd joins
the tests' real control plane through `kubeadm join`.

The worker `w1` of the example stack boots through the real Matchbox on the LAN of the control
plane's namespace (tests/lab/node_lan.py), the real Ignition v2.24.0 writes its files onto a
disk whose userland stands in for Fedora CoreOS's (tests/lab/node_rootfs.py, its differences in
tests/lab/node_rootfs.md), and the disk's systemd starts the setup service the program wrote.
Nothing on the node is modelled: what the simulated host (tests/host) models of systemd, the
runtime, kubeadm and the reboot runs here for real, once, on the path an install takes.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_plane.cluster import ControlPlane, kubectl_binary, running_control_plane
from control_plane.program_output import MachineOutput, ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm, kubeadm_version

from stubernetes.output import write_tree

from . import build_lab, served_binaries
from .lab_env import BootTimes, stage_assets
from .node_lan import MATCHBOX_PORT, LanHost, NodeLan, start_node_lan
from .node_rootfs import NodeRootfs, build_node_rootfs
from .node_vm import NodeVm, start_node

pytestmark = pytest.mark.lab

WORKER = "w1"
MATCHBOX_URL = "http://{gateway}:" + str(MATCHBOX_PORT)
# A boot through the emulated CPU: firmware and iPXE, Ignition's downloads (first boot only),
# systemd, then the setup. Generous: the figures are printed.
BOOT_SECONDS = 420
JOIN_SECONDS = 600
# The journal line the setup runner writes when a phase begins (ignition/files/setup/
# stubernetes-setup), forwarded to the serial port by the disk's journald.
PHASE_BEGINS = r"stubernetes-setup: phase {phase}: starting"
SETUP_COMPLETE = r"stubernetes-setup: setup complete"
# kubeadm join's kubelet-start phase (kubernetes cmd/kubeadm/app/cmd/phases/join/kubelet.go).
KUBEADM_STARTS_KUBELET = r"\[kubelet-start\] Starting the kubelet"
# The upgrade service's phases, as it logs them (ignition/files/upgrade/stubernetes-upgrade).
UPGRADE_DOWNLOADS = "stubernetes-upgrade: {release}: downloading and checking"
UPGRADE_RUNS_KUBEADM = r"stubernetes-upgrade: {release}: kubeadm upgrade node"


@dataclass
class NodeLab:
    output: ProgramOutput
    plane: ControlPlane
    lan: NodeLan
    worker: MachineOutput
    rootfs: NodeRootfs
    work: Path
    times: BootTimes
    values: dict[str, Any]  # the stack the program ran with
    served: tuple[served_binaries.ServedBinary, ...]  # what Matchbox serves under /assets/
    assets: Path


def _node_values(example_values: dict[str, Any], gateway: str) -> dict[str, Any]:
    """The example stack as a lab operator serving their own build would set it: Matchbox on
    the LAN's gateway, the install cached (the node binaries from Matchbox's /assets/, at the
    digests of the files the lab serves), the Kubernetes release of the built binaries, and
    the serial console on every machine's PXE boot."""
    values = for_built_kubeadm(copy.deepcopy(example_values))
    values["matchbox"]["httpEndpoint"] = MATCHBOX_URL.format(gateway=gateway)
    values["os"]["cachedInstall"] = True
    for machine in values["machines"].values():
        machine["installerKernelArgs"] = [*machine.get("installerKernelArgs", []), "console=ttyS0"]
    return values


@pytest.fixture(scope="module")
def node_lab(
    lab_build: build_lab.LabBuild,
    boot_times: BootTimes,
    example_values: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeLab]:
    started = time.monotonic()
    rootfs = build_node_rootfs(log=lambda m: print(m, flush=True))
    print(f"node lab: root file system ready in {time.monotonic() - started:.0f}s", flush=True)
    work = tmp_path_factory.mktemp("node-lab")
    binaries = served_binaries.served_binaries(work / "built")
    worker_config = example_values["machines"][WORKER]
    # The worker's gateway, on the worker's subnet: the LAN's bridge carries it.
    subnet = ipaddress.IPv4Interface(worker_config["address"]).network
    gateway = ipaddress.IPv4Interface(f"{worker_config['gateway']}/{subnet.prefixlen}")
    values = _node_values(example_values, str(gateway.ip))
    values["cluster"]["binarySha256"] = served_binaries.stack_digests(binaries)
    output = render_program(values, seed="node-lab")
    with running_control_plane(output, work / "control-plane") as plane:
        # What `pulumi up` creates through the Kubernetes provider before any machine joins:
        # each machine's bootstrap-token Secret, its status report's and upgrade channel's
        # ConfigMaps and the Roles and RoleBindings that let the machine write them
        # (components/configmap_access.py); then kubeadm init's bootstrap-token phase
        # (cluster-info, the join RBAC), as the init controller runs it.
        plane.apply(list(output.token_secrets.values()))
        plane.apply(list(output.rbac.values()))
        plane.apply(list(output.configmaps.values()))
        plane.init_phase("bootstrap-token")
        # Matchbox's data directory as `stubernetes render` writes it.
        write_tree(output.matchbox_data, work / "render")
        data = work / "render" / "matchbox"
        assets = work / "assets"
        assets.mkdir()
        stage_assets(data, assets, lab_build, MATCHBOX_URL.format(gateway=gateway.ip))
        served_binaries.place(binaries, assets)
        worker = output.machines[WORKER]
        host = LanHost(
            WORKER,
            worker_config["mac"],
            str(ipaddress.ip_interface(worker_config["address"]).ip),
        )
        lan = start_node_lan(plane.namespace, gateway, [host], data, assets, work / "logs")
        try:
            yield NodeLab(
                output, plane, lan, worker, rootfs, work, boot_times, values, binaries, assets
            )
        finally:
            lan.stop()


def _node(lab: NodeLab) -> dict[str, Any] | None:
    done = lab.plane.kubectl("get", "node", WORKER, "-o", "json", check=False)
    if done.returncode != 0:
        assert "NotFound" in done.stderr, done.stderr
        return None
    node: dict[str, Any] = json.loads(done.stdout)
    return node


def _wait_node(lab: NodeLab, vm: NodeVm, timeout: float, boot_id_not: str = "") -> dict[str, Any]:
    """The worker's Node once its kubelet has registered it (with a boot ID other than
    `boot_id_not`: a kubelet started after a reboot updates it, kubernetes
    `pkg/kubelet/nodestatus/setters.go` MachineInfo)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = _node(lab)
        if node is not None and node["status"].get("nodeInfo", {}).get("bootID") not in (
            None,
            "",
            boot_id_not,
        ):
            return node
        assert vm.alive(), vm.tail()
        time.sleep(3)
    raise AssertionError(
        f"{WORKER}: no Node (boot ID not {boot_id_not!r}) within {timeout:.0f}s\n{vm.tail()}"
    )


def _status_report(lab: NodeLab, timeout: float) -> dict[str, str]:
    """The worker's status report ConfigMap once it says the setup is done (the real
    report-status, started by its path unit at each change of the status file)."""
    deadline = time.monotonic() + timeout
    data: dict[str, str] = {}
    while time.monotonic() < deadline:
        done = lab.plane.kubectl(
            "-n", "kube-system", "get", "configmap", f"stubernetes-status-{WORKER}", "-o", "json"
        )
        data = json.loads(done.stdout).get("data") or {}
        if data.get("state") == "done":
            return data
        time.sleep(3)
    raise AssertionError(f"no final status report within {timeout:.0f}s: {data}")


def _start_step(lab: NodeLab, command: dict[str, Any], **overrides: str) -> subprocess.Popen[str]:
    """A step as pulumi-command runs its `create` (`/bin/sh -c` in the project directory with
    the process environment plus the Command's: pulumi/pulumi-command
    provider/pkg/provider/local/commandController.go), with the real kubectl and the operator's
    kubeconfig (ControlPlane.admin_kubeconfig)."""
    bin_dir = lab.work / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "kubectl").exists():
        (bin_dir / "kubectl").symlink_to(kubectl_binary())
    environment = {
        **os.environ,
        **command["environment"],
        "KUBECONFIG_CONTENT": lab.plane.admin_kubeconfig.read_text(),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        **overrides,
    }
    return subprocess.Popen(
        lab.plane.wrap(["/bin/sh", "-c", command["create"]]),
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_step(step: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        stdout, stderr = step.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        step.kill()
        stdout, stderr = step.communicate()
        raise AssertionError(
            f"the step did not end within {timeout:.0f}s\n{stdout}\n{stderr}"
        ) from None
    return step.returncode, stdout, stderr


def _run_step(lab: NodeLab, command: dict[str, Any], **overrides: str) -> tuple[int, str, str]:
    return _finish_step(_start_step(lab, command, **overrides), 300)


@pytest.fixture(scope="module")
def worker(node_lab: NodeLab) -> Iterator[NodeVm]:
    """The worker's machine, powered on with a never-booted disk; off at the end."""
    vm = start_node(
        WORKER,
        node_lab.lan.hosts[0].mac,
        str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"stubernetes-lab/{WORKER}")),
        node_lab.lan.hosts[0].tap,
        node_lab.rootfs.image,
        node_lab.work / "vms",
        node_lab.plane.namespace.wrap([]),
    )
    try:
        yield vm
    finally:
        vm.stop()
        node_lab.times.write()
        print(vm.tail(60))


def test_a_real_worker_joins_with_a_power_cut_during_setup_and_after(
    node_lab: NodeLab, worker: NodeVm
) -> None:
    lab, vm = node_lab, worker
    powered = time.monotonic()
    times = lab.times.node
    try:
        # First boot: Ignition on the never-provisioned disk, then its systemd.
        vm.wait_for(r"@@LAB disk first-boot", BOOT_SECONDS)
        ignition_rc = vm.wait_for(r"@@LAB ignition-rc (\S+)", BOOT_SECONDS)
        assert ignition_rc.group(1) == "0,0", vm.tail()
        vm.wait_for(r"@@LAB switch-root", 60)
        times["first boot to switch-root"] = time.monotonic() - powered
        # The pause image, built from source, in containerd's k8s.io namespace before the
        # kubelet starts (the lab unit standing in for a registry pull: node_rootfs.md).
        vm.wait_for(r"Finished stubernetes-lab-images\.service", BOOT_SECONDS)
        # The power cut: in the middle of `kubeadm join`, once it has written the kubelet's
        # files and starts the kubelet (kubeadm's own output, which the phase passes to the
        # journal as it comes); the node phase was recorded done just before kubeadm began.
        vm.wait_for(PHASE_BEGINS.format(phase="kubeadm"), BOOT_SECONDS)
        times["first boot to phase kubeadm"] = time.monotonic() - powered
        vm.wait_for(KUBEADM_STARTS_KUBELET, BOOT_SECONDS)
        cut = len(vm.console())
        vm.power_cut()
        vm.power_on()
        provisioned = vm.wait_for(r"@@LAB disk provisioned", BOOT_SECONDS, after=cut)
        vm.wait_for(PHASE_BEGINS.format(phase="kubeadm"), BOOT_SECONDS, after=provisioned.end())
        times["power cut to phase kubeadm again"] = time.monotonic() - vm.power_cuts[-1]
        assert "phase node: starting" not in vm.console()[cut:], "the node phase ran again"
        node = _wait_node(lab, vm, JOIN_SECONDS)
        times["first boot to Node registered"] = time.monotonic() - powered
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{kubeadm_version()}"
        assert info["containerRuntimeVersion"].startswith("containerd://")
        vm.wait_for(SETUP_COMPLETE, JOIN_SECONDS, after=cut)
        times["first boot to setup finished"] = time.monotonic() - powered
        report = _status_report(lab, 120)
        assert report["phase"] == "done", report
        registered = _run_step(
            lab,
            lab.output.command("wait-for-nodes registered"),
            NODES=WORKER,
            TIMEOUT_SECONDS="60",
            POLL_SECONDS="2",
        )
        assert registered[0] == 0, registered[1] + registered[2]
        assert registered[1].splitlines()[-1] == "gate registered: passed (1 machines)"
        # The second power cut, after the setup: the kubelet comes back by itself (enabled by
        # kubeadm's kubelet-start through systemd), the setup does not run again.
        second = len(vm.console())
        before = info["bootID"]
        vm.power_cut()
        vm.power_on()
        after = _wait_node(lab, vm, BOOT_SECONDS, boot_id_not=before)
        times["second power cut to kubelet back"] = time.monotonic() - vm.power_cuts[-1]
        assert after["status"]["nodeInfo"]["kubeletVersion"] == f"v{kubeadm_version()}"
        assert "stubernetes-setup: phase" not in vm.console()[second:]
    finally:
        print(f"node lab times: {json.dumps({k: round(v) for k, v in times.items()})}")


def test_the_real_worker_is_upgraded_by_the_programs_upgrade_step(
    node_lab: NodeLab, worker: NodeVm
) -> None:
    """`kubernetesVersion` bumped to the next patch: the program's upgrade step for the worker
    (components/scripts/upgrade-machine, its environment from the bumped stack's render) drains
    the Node and asks through the worker's upgrade ConfigMap; the worker's own upgrade service
    (ignition/files/upgrade/stubernetes-upgrade, started by its timer) downloads and checks the
    new binaries from Matchbox, runs the real `kubeadm upgrade node` of the new release, replaces
    the kubelet and restarts it; the step sees the Node report the new release and uncordons.
    Only the worker's step runs: the tests' control plane stays at its release (a patch apart,
    within the version skew policy), where a full `pulumi up` upgrades the controllers first."""
    lab, vm = node_lab, worker
    before = _node(lab)
    assert before is not None, "the worker never joined (see the test before this one)"
    old_release, new_release = kubeadm_version(), served_binaries.upgrade_release()
    assert before["status"]["nodeInfo"]["kubeletVersion"] == f"v{old_release}"
    served = served_binaries.upgrade_binaries(lab.served)
    served_binaries.place(served, lab.assets)
    values = copy.deepcopy(lab.values)
    values["cluster"]["kubernetesVersion"] = new_release
    values["cluster"]["binarySha256"] = served_binaries.stack_digests(served)
    step = render_program(values, seed="node-lab").command("upgrade-machine", WORKER)
    assert step["environment"]["RELEASE"] == new_release
    started = time.monotonic()
    running = _start_step(lab, step, TIMEOUT_SECONDS="900", POLL_SECONDS="5")
    try:
        # A power cut once the worker has fetched and checked the binaries, replaced kubeadm
        # and begun `kubeadm upgrade node`: after the next boot its service (its timer's
        # OnBootSec) goes on from the last phase it recorded, and the step keeps waiting.
        cut = len(vm.console())
        vm.wait_for(UPGRADE_RUNS_KUBEADM.format(release=new_release), 600, after=cut)
        lab.times.node["upgrade step, ask to kubeadm upgrade node"] = time.monotonic() - started
        resumed_from = len(vm.console())
        vm.power_cut()
        vm.power_on()
        code, stdout, stderr = _finish_step(running, 900)
    finally:
        if running.poll() is None:
            running.kill()
    lab.times.node["upgrade step, ask to uncordoned (a power cut in it)"] = (
        time.monotonic() - started
    )
    assert code == 0, stdout + stderr + vm.tail()
    assert stdout.splitlines()[0] == (
        f"upgrading {WORKER} from {old_release} to {new_release} (kubeadm upgrade node)"
    )
    assert stdout.splitlines()[-1] == f"{WORKER} upgraded from {old_release} to {new_release}"
    # Resumed, not begun again: the binaries were recorded fetched (and flushed) before kubeadm
    # began, so nothing is downloaded after the power cut; where in kubeadm's run the cut fell
    # decides whether `kubeadm upgrade node` runs again (it is idempotent: kubeadm-upgrade,
    # "Recovering from a failure state").
    after_cut = vm.console()[resumed_from:]
    assert re.search(r"@@LAB disk provisioned", after_cut), vm.tail()
    assert UPGRADE_DOWNLOADS.format(release=new_release) not in after_cut, vm.tail()
    after = _node(lab)
    assert after is not None
    assert after["status"]["nodeInfo"]["kubeletVersion"] == f"v{new_release}"
    assert not after["spec"].get("unschedulable", False)
    channel = lab.plane.kubectl(
        "-n", "kube-system", "get", "configmap", f"stubernetes-upgrade-{WORKER}", "-o", "json"
    )
    data = json.loads(channel.stdout)["data"]
    assert (data["release"], data["state"], data.get("error", "")) == (new_release, "done", "")
