"""kubeadm init's preflight on the init controller's root as its first boot leaves it, with the
node's own runtime and kubelet.

The root is built by the real chain: the program's Ignition for the machine (its Matchbox
profile, from a run under mocks) applied by the real Ignition v2.24.0, which fetches kubeadm,
kubectl, kubelet and the CNI plugins from the real Matchbox (tests/real/node_downloads.py);
the setup service's `install_shared_pki`; the real containerd v2.2.9 started with the root's
/etc/containerd/config.toml (tests/real/containerd_daemon.py, its socket at the node's own
path inside the root). kubeadm chroots into the root (`--rootfs`), so the CRI socket of its
config and the `kubelet` it runs (`kubelet --version`, looked up in PATH: kubernetes
`cmd/kubeadm/app/preflight/utils.go` GetKubeletVersion) are the machine's own; PATH is
systemd's default for services, as the setup service has it. kubeadm and containerd run in
a network namespace of their own (control_plane/netns.py): the port checks look at free ports,
and the image pulls (ImagePull, ignored) fail at once rather than download anything.

Still ignored: OS_CHECKS (tests/real/control_plane/kubeadm.py), which look at the operating
system, not at these files.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from containerd_daemon import Containerd, start_containerd
from control_plane.kubeadm import (
    OS_CHECKS,
    RUNTIME_CHECKS,
    KubeadmRun,
    config_args,
    install_shared_pki,
    kubeadm,
)
from control_plane.netns import NetworkNamespace, start_network_namespace
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import kubeadm_version
from ignition_root import IGNITION_BINARY, apply_ignition
from node_downloads import ServedDownloads, served_downloads
from program_stacks import sized_stack
from tool_cache import tool_bin

from ignition.node_binaries import BIN_DIR

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        not IGNITION_BINARY.exists() or tool_bin("containerd", "containerd") is None,
        reason="run ./scripts/tools ignition matchbox kubernetes kubelet cni-plugins containerd",
    ),
]

# systemd's PATH for services on a merged-/usr system (systemd.exec(5), "Environment
# variables in spawned processes"; src/basic/path-util.h DEFAULT_PATH).
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
STACKS = {"example": (1, 2), "three-controllers": (3, 2)}


@pytest.fixture(scope="module")
def served(
    example_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedDownloads]:
    with served_downloads(example_values, tmp_path_factory.mktemp("served")) as downloads:
        yield downloads


@pytest.fixture(scope="module", params=sorted(STACKS))
def rendered(request: pytest.FixtureRequest, served: ServedDownloads) -> ProgramOutput:
    values = served.values
    if request.param != "example":
        values = sized_stack(values, *STACKS[request.param])
    return render_program(values)


@dataclass
class FirstBoot:
    root: Path
    containerd: Containerd
    namespace: NetworkNamespace

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return self.namespace.wrap(["env", f"PATH={SERVICE_PATH}", *argv])

    def preflight(self, ignored: Sequence[str]) -> KubeadmRun:
        args = ["init", "phase", "preflight", *config_args(), "--v=1"]
        args.append(f"--ignore-preflight-errors={','.join(ignored)}")
        return kubeadm(args, rootfs=self.root, check=False, wrap=self.wrap, timeout=300)


def _addresses(rendered: ProgramOutput) -> set[str]:
    """The init controller's address and the API endpoint's host when it is an address (a
    stack may name it by DNS instead; preflight resolves nothing there)."""
    init = rendered.stack.init_controller
    candidates = {rendered.stack.cluster.api_host}
    if init.address is not None:
        candidates.add(str(init.address.ip))
    addresses = set()
    for candidate in candidates:
        try:
            addresses.add(str(ipaddress.ip_address(candidate)))
        except ValueError:
            continue
    return addresses


def add_dev_null(root: Path) -> None:
    """The machine's /dev is the kernel's devtmpfs, and a scratch root has none. Go's os/exec
    opens /dev/null as a child's stdin (`os/exec` Cmd.childStdin), so without it kubeadm cannot
    run `kubelet --version`; k8s.io/utils `exec/exec.go` handleError then reports the failed
    open as "executable file not found in $PATH"."""
    null = root / "dev/null"
    null.parent.mkdir(exist_ok=True)
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # devices.txt: 1 char, minor 3


@pytest.fixture
def first_boot(rendered: ProgramOutput) -> Iterator[FirstBoot]:
    # A short path: containerd's socket lives under the root (a unix socket path has 108 bytes).
    scratch = Path(tempfile.mkdtemp(prefix="stubernetes-boot-", dir="/tmp"))
    try:
        init = rendered.init_controller
        root = scratch / "root"
        apply_ignition(json.dumps(init.ignition).encode(), root, scratch / "ignition")
        install_shared_pki(root)
        add_dev_null(root)
        namespace = start_network_namespace(_addresses(rendered), scratch / "netns")
        try:
            # In the namespace too: its image pulls then fail at once, as they would not on a
            # host with a route to registry.k8s.io.
            containerd = start_containerd(root, scratch / "containerd", wrap=namespace.wrap)
            try:
                yield FirstBoot(root, containerd, namespace)
            finally:
                containerd.stop()
        finally:
            namespace.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _said(run: KubeadmRun) -> str:
    return run.stdout + run.stderr


def test_init_preflight_passes_with_the_nodes_runtime_and_kubelet(
    rendered: ProgramOutput, first_boot: FirstBoot
) -> None:
    """With only OS_CHECKS ignored, preflight passes: its CRI check gets RuntimeReady from the
    node's containerd (kubernetes `cmd/kubeadm/app/preflight/checks.go` ContainerRuntimeCheck
    -> `cmd/kubeadm/app/util/runtime/runtime.go` IsRunning), its ContainerRuntimeVersion check
    finds the CRI's RuntimeConfig implemented (no fallback to the kubelet config's cgroup
    driver), and its KubeletVersion check runs the kubelet Ignition wrote and finds it no newer
    than the control plane (KubeletVersionCheck), which is `v<release>`."""
    kubelet = first_boot.root / BIN_DIR.lstrip("/") / "kubelet"
    assert kubelet.is_file()  # Ignition fetched it from Matchbox
    cluster = rendered.init_controller.kubeadm_documents()["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == f"v{kubeadm_version()}"

    run = first_boot.preflight(OS_CHECKS)
    assert run.returncode == 0, run.report()
    said = _said(run)
    for check in RUNTIME_CHECKS:
        # An ignored check that fails prints "[WARNING <name>]"; none of these is ignored, and
        # none warned.
        assert f"[WARNING {check}]" not in said, run.report()
    # kubeadm's own log lines (klog V(1)) that each check ran.
    for ran in (
        "validating the container runtime",
        "validating the container runtime version compatibility",
        "validating kubelet version",
    ):
        assert ran in said, run.report()
    assert "Falling back to using cgroupDriver from kubelet config" not in said, run.report()


def test_init_preflight_fails_without_the_runtime_or_the_kubelet(first_boot: FirstBoot) -> None:
    """The same preflight fails when the kubelet is not where Ignition puts it, and when
    nothing serves the CRI socket: the checks above ran against the real things."""
    kubelet = first_boot.root / BIN_DIR.lstrip("/") / "kubelet"
    kept = kubelet.with_name("kubelet.kept")
    kubelet.rename(kept)
    try:
        run = first_boot.preflight(OS_CHECKS)
    finally:
        kept.rename(kubelet)
    assert run.returncode != 0, run.report()
    assert "[ERROR KubeletVersion]: couldn't get kubelet version" in _said(run), run.report()

    first_boot.containerd.stop()
    run = first_boot.preflight(OS_CHECKS)
    assert run.returncode != 0, run.report()
    assert "[ERROR CRI]: could not connect to the container runtime" in _said(run), run.report()
