"""The real kubeadm, run inside a scratch root laid out as a machine's after Ignition.

kubeadm's global `--rootfs <dir>` chroots into `<dir>` before it reads anything
(kubernetes `cmd/kubeadm/app/cmd/cmd.go` PersistentPreRunE, `cmd/kubeadm/app/util/chroot_unix.go`),
so every path it uses, `--config` included, is the machine's own path inside the scratch root,
and nothing on the host is touched. That needs root (chroot(2)); the tests run as root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tool_cache import require_tool

from control_plane.program_output import KUBEADM_CONFIG, SHARED_PKI, MachineOutput

KUBERNETES_DIR = "/etc/kubernetes"
PKI_DIR = f"{KUBERNETES_DIR}/pki"
MANIFESTS_DIR = f"{KUBERNETES_DIR}/manifests"

# The preflight checks that look at the operating system kubeadm runs on, not at the files a
# machine receives, and fail inside a scratch root, which is no OS image: no /proc (the
# ip_forward sysctl; swap), no kernel config or cgroup mounts (SystemVerification), no
# losetup, mount or cp, which Fedora CoreOS ships in util-linux and coreutils (kubernetes
# `cmd/kubeadm/app/preflight/checks.go` addCommonChecks, addIPv4Checks, InitNodeChecks,
# JoinNodeChecks), and the image pulls, which need registry.k8s.io (RunPullImagesCheck).
OS_CHECKS = (
    "Swap",
    "SystemVerification",
    "FileContent--proc-sys-net-ipv4-ip_forward",
    "FileExisting-losetup",
    "FileExisting-mount",
    "FileExisting-cp",
    "ImagePull",
)
# The checks that ask the node's container runtime over its CRI socket and run its kubelet
# binary (ContainerRuntimeCheck, ContainerRuntimeVersionCheck, KubeletVersionCheck). They run
# for real where a containerd serves the scratch root and Ignition put the kubelet in it
# (tests/real/test_kubeadm_real.py); elsewhere there is neither.
RUNTIME_CHECKS = ("CRI", "ContainerRuntimeVersion", "KubeletVersion")
# Everything a scratch root without a runtime cannot pass. Discovery itself is not a check and
# cannot be ignored.
HOST_CHECKS = (*RUNTIME_CHECKS, *OS_CHECKS)


def kubeadm_binary() -> Path:
    return require_tool("kubernetes", "kubeadm")


@dataclass(frozen=True)
class KubeadmRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        return (
            f"kubeadm {' '.join(self.args)} exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def kubeadm(
    args: Sequence[str],
    rootfs: Path | None = None,
    timeout: float = 180,
    check: bool = True,
    wrap: Callable[[Sequence[str]], list[str]] | None = None,
    binary: Path | None = None,
) -> KubeadmRun:
    """Run kubeadm (inside `rootfs` when given, through `wrap`, e.g. into a network namespace;
    `binary`, else the tool "kubernetes"'s); raise with its whole output when it fails."""
    argv = [str(binary or kubeadm_binary()), *args]
    if rootfs is not None:
        argv.append(f"--rootfs={rootfs}")
    if wrap is not None:
        argv = wrap(argv)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    run = KubeadmRun(list(args), done.returncode, done.stdout, done.stderr)
    if check and run.returncode != 0:
        raise AssertionError(run.report())
    return run


def lay_out_machine(machine: MachineOutput, root: Path) -> None:
    """Every file of the machine's Ignition, at its path under `root`, with its mode (what
    Ignition's files stage writes; the setup service reads them from there)."""
    for entry in machine.files.values():
        target = root / entry.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(entry.contents)
        target.chmod(entry.mode)


def install_shared_pki(root: Path) -> list[str]:
    """What the setup service does before `kubeadm init|join`
    (`ignition/files/setup/phase-kubeadm` install_shared_pki): every file under
    /etc/stubernetes/pki goes to the same relative path under /etc/kubernetes/pki, keys 0600,
    the rest 0644. Returns the relative paths installed."""
    source = root / SHARED_PKI.lstrip("/")
    installed: list[str] = []
    if not source.is_dir():
        return installed
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        target = root / PKI_DIR.lstrip("/") / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        target.chmod(0o600 if relative.endswith(".key") else 0o644)
        installed.append(relative)
    return installed


def machine_root(machine: MachineOutput, root: Path) -> Path:
    """A scratch root with the machine's Ignition files and its shared PKI installed."""
    lay_out_machine(machine, root)
    install_shared_pki(root)
    return root


def config_args() -> list[str]:
    """`--config` as the setup service passes it, the machine's own path (inside the chroot)."""
    return [f"--config={KUBEADM_CONFIG}"]
