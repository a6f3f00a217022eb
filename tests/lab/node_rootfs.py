#!/usr/bin/env python3
"""Build the root file system of the virtual lab's real node guest: a raw ext4 image.

    python3 tests/lab/node_rootfs.py [--cache DIR] [--force]

A stand-in for Fedora CoreOS's userland (tests/lab/node_rootfs.md says how it differs): a
Debian bookworm root made by ``mmdebstrap`` (root mode), in which real systemd runs as PID 1
and starts the units the project's Ignition writes, a real containerd and a real kubelet.
The lab's initramfs mounts the image as /sysroot, runs the real Ignition on it at first boot
and switches into /sbin/init.

The root holds, besides :data:`PACKAGES`: the kernel modules of the lab's Debian cloud kernel
(the package ``build_lab`` caches) with their ``depmod`` indexes; the ``containerd`` and ``ctr``
that ``scripts/tools`` builds, in /usr/bin with upstream's unit (not enabled: Ignition enables
it); a pause image built from Kubernetes' ``pause.c`` as an OCI archive and the lab unit that
imports it; journald forwarding to ttyS0; no gettys; ``/etc/machine-id`` "uninitialized".

Output (printed as JSON): ``<cache>/node-rootfs/<key>/node-root.img`` (sparse, 4 GiB) and
``packages.txt`` ("name version" of every installed Debian package), where ``<cache>`` is
``build_lab.default_cache_dir()`` and ``<key>`` hashes every input; older keys are removed
and a complete build is reused, also offline. Needs root, mmdebstrap, e2fsprogs, gcc and
libc6-dev (static libc), and the Debian mirror for the first build.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: tests/, its layers and the repository root
    sys.path.insert(0, str(HERE.parent))
    from layers import module_path

    sys.path[:0] = module_path()

import go_modules  # noqa: E402  (tests)
import tool_cache  # noqa: E402  (tests/real)

from ignition.container_runtime import PAUSE_VERSIONS  # noqa: E402
from lab import build_lab, oci_archive  # noqa: E402

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
FILES = HERE / "node_root_files"
IMAGE_SIZE = "4G"
IMAGE_LABEL = "node-root"

# The Debian packages installed beside mmdebstrap's minbase (Essential plus Priority
# required: bash, coreutils, diffutils, findutils, grep, sed, mount, e2fsprogs ...).
PACKAGES: tuple[str, ...] = (
    # PID 1 and the boot: systemd as init (/sbin/init), udev for devices and .link files
    # (ignition/files/node/50-flannel.link), D-Bus for systemctl and NetworkManager.
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    # Fedora CoreOS configures the network with NetworkManager: Ignition writes a keyfile to
    # /etc/NetworkManager/system-connections/, and a machine without one gets NM's automatic
    # DHCP connection.
    "network-manager",
    "iproute2",
    # modprobe (containerd.service's ExecStartPre) and systemd-modules-load's libkmod.
    "kmod",
    # containerd's runtime (Debian's; Fedora CoreOS ships Fedora's runc).
    "runc",
    # The kubelet's KUBE-IPTABLES-HINT and KUBE-KUBELET-CANARY chains (kubernetes v1.36.3
    # pkg/kubelet/kubelet_network_linux.go).
    "iptables",
    # Node tools kubeadm's preflight required before Kubernetes 1.32 (conntrack: checks_linux.go
    # addExecChecks) or warned about in older releases (ethtool, socat); an operator's tools.
    "conntrack",
    "ethtool",
    "socat",
    # The setup's and the status report's HTTPS requests (curl, the system CA store).
    "ca-certificates",
    "curl",
    # kubeadm v1.36.3's join preflight requires losetup, mount and cp in PATH, and no other
    # executable (conntrack only below 1.32): k8s.io/kubernetes@v1.36.3
    # cmd/kubeadm/app/preflight/checks_linux.go addExecChecks, called from checks.go
    # addCommonChecks, which RunJoinNodeChecks runs. losetup and mount come from `mount`
    # (Priority required, listed to be sure). The kubelet mounts volumes with mount and umount
    # in a systemd-run scope (k8s.io/mount-utils v0.36.3 mount_linux.go) and block volumes
    # with losetup (pkg/volume/util/volumepathhandler). tests/offline/test_node_root_commands.py
    # holds this list to every command the node's scripts call.
    "mount",
    "util-linux",
    "procps",
    "tar",
    "gzip",
    # label-host-paths asks `selinuxenabled` first (chcon is coreutils').
    "selinux-utils",
    # Ignition writes /etc/sudoers.d/ for the admin user (ignition/files/templates/sudoers-admin).
    "sudo",
    "openssl",
    # The etcd backup (ignition/files/backup/): snapshots are encrypted with gpg, etcdctl's JSON
    # is read with jq, restore-before-init uses awk; Fedora CoreOS has jq, gnupg2 and gawk.
    "gpg",
    "jq",
    "mawk",
)

KERNEL_MODULES_NEEDED = ("overlay", "br_netfilter", "nf_conntrack", "veth", "bridge", "vxlan")
# Groups the project's Ignition puts the admin user into (ignition/node.py ADMIN_GROUPS) that
# Fedora CoreOS has and Debian lacks: useradd -G fails on a missing group.
EXTRA_GROUPS = ("wheel",)


@functools.cache
def kubernetes_module() -> Path:
    """The pinned Kubernetes module's source (its build/pause), wherever `go env GOMODCACHE` is."""
    return go_modules.module_dir("k8s.io/kubernetes", tool_cache.tool_version("kubernetes"))


def pause_dir() -> Path:
    return kubernetes_module() / "build/pause"


@functools.cache
def containerd_unit_source() -> Path:
    """containerd's own unit file, from the pinned containerd module's source."""
    module = go_modules.module_dir(
        "github.com/containerd/containerd/v2", tool_cache.tool_version("containerd")
    )
    return module / "containerd.service"


# The sandbox image the node's containerd config names for Kubernetes 1.36.
PAUSE_TAG = PAUSE_VERSIONS["1.36"]
PAUSE_IMAGE = f"registry.k8s.io/pause:{PAUSE_TAG}"
IMAGES_DIR = "var/lib/stubernetes-lab/images"


@dataclass(frozen=True)
class NodeRootfs:
    image: Path
    packages: Path
    kernel_release: str
    key: str

    def to_json(self) -> str:
        return json.dumps({k: str(v) for k, v in asdict(self).items()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> NodeRootfs:
        d = json.loads(text)
        return cls(Path(d["image"]), Path(d["packages"]), d["kernel_release"], d["key"])


def _log(message: str) -> None:
    print(f"node-rootfs: {message}", file=sys.stderr, flush=True)


@contextmanager
def _step(name: str, log: Callable[[str], None]) -> Iterator[None]:
    start = time.monotonic()
    log(f"{name} ...")
    yield
    log(f"{name}: {time.monotonic() - start:.1f} s")


def containerd_binaries() -> dict[str, Path]:
    """containerd and ctr from scripts/tools' build, and the runc shim when it is there."""
    found = {name: tool_cache.require_tool("containerd", name) for name in ("containerd", "ctr")}
    shim = tool_cache.tool_bin("containerd", "containerd-shim-runc-v2")
    if shim is not None:
        found["containerd-shim-runc-v2"] = shim
    return found


def containerd_unit() -> str:
    """Upstream's containerd.service with the binary where Fedora CoreOS has it.

    Upstream's unit runs /usr/local/bin/containerd (a binary release unpacked into
    /usr/local); Fedora's containerd package installs /usr/bin/containerd, and this root
    models Fedora CoreOS, so the binary goes to /usr/bin and the unit names it there."""
    source = containerd_unit_source()
    text = source.read_text()
    old = "ExecStart=/usr/local/bin/containerd\n"
    if text.count(old) != 1:
        raise RuntimeError(f"{source}: no single {old.strip()!r} line to adjust")
    header = (
        f"# containerd's own unit ({source.parent.name}/containerd.service), with\n"
        "# ExecStart=/usr/bin/containerd where Fedora CoreOS's containerd package has it.\n"
    )
    return header + text.replace(old, "ExecStart=/usr/bin/containerd\n")


def pause_version_define() -> str:
    """-DVERSION= as build/pause/Makefile sets it: v$(TAG)-$(REV), where REV is `git describe`
    of the Kubernetes tree; the module cache has no git, so REV is the module's version."""
    makefile = (pause_dir() / "Makefile").read_text()
    m = re.search(r"^TAG \?= (\S+)$", makefile, re.M)
    if not m or m.group(1) != PAUSE_TAG:
        raise RuntimeError(
            f"{pause_dir()}/Makefile's TAG is not {PAUSE_TAG} (ignition PAUSE_VERSIONS)"
        )
    return f"v{PAUSE_TAG}-{kubernetes_module().name.split('@', 1)[1]}"


def build_pause(dest: Path) -> None:
    """pause.c, static, with the Makefile's CFLAGS (-Os -Wall -Werror -static -DVERSION=)."""
    build_lab._run(
        [
            "gcc",
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            f"-DVERSION={pause_version_define()}",
            "-o",
            str(dest),
            str(pause_dir() / "linux/pause.c"),
        ]
    )
    build_lab._run(["strip", str(dest)])


def write_pause_image(root: Path, work: Path) -> oci_archive.WrittenImage:
    binary = work / "pause"
    build_pause(binary)
    # User and Entrypoint as upstream's image (build/pause/Dockerfile: USER 65535:65535,
    # ENTRYPOINT ["/pause"], FROM scratch).
    written = oci_archive.write_oci_archive(
        root / IMAGES_DIR / "pause.tar",
        PAUSE_IMAGE,
        {"pause": oci_archive.LayerFile(binary.read_bytes(), 0o755)},
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
    )
    binary.unlink()
    return written


def input_key(kernel_pkg: str, kernel_tree: Path, binaries: dict[str, Path]) -> str:
    parts: list[tuple[str, bytes]] = [
        ("packages", " ".join(PACKAGES).encode()),
        ("suite", f"{SUITE} {MIRROR}".encode()),
        ("node_rootfs.py", Path(__file__).read_bytes()),
        ("oci_archive.py", (HERE / "oci_archive.py").read_bytes()),
        ("pause.c", (pause_dir() / "linux/pause.c").read_bytes()),
        ("containerd.service", containerd_unit_source().read_bytes()),
        ("kernel", kernel_pkg.encode() + b"\0" + (kernel_tree / ".complete").read_bytes()),
        ("pause_image", PAUSE_IMAGE.encode()),
    ]
    parts += [(f"bin/{n}", build_lab._file_digest(p)) for n, p in sorted(binaries.items())]
    parts += [(f"files/{p.name}", p.read_bytes()) for p in sorted(FILES.iterdir())]
    return build_lab._hash_inputs(parts)


def _symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _install(dest: Path, data: bytes, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    os.chmod(dest, mode)


def customize(
    root: Path, work: Path, kernel_tree: Path, release: str, binaries: dict[str, Path]
) -> None:
    """Everything the root gets after mmdebstrap."""
    # The lab kernel's modules, and its config where Fedora CoreOS has it
    # (/usr/lib/modules/<release>/config), one of the paths kubeadm's SystemVerification reads
    # (k8s.io/system-validators v1.12.1 validators/kernel_validator.go getKernelConfigReader;
    # the kernel has no /proc/config.gz: CONFIG_IKCONFIG is not set).
    modules = root / "usr/lib/modules" / release
    if modules.exists():
        shutil.rmtree(modules)
    shutil.copytree(kernel_tree / "lib/modules" / release, modules, symlinks=True)
    shutil.copyfile(kernel_tree / "boot" / f"config-{release}", modules / "config")
    # The root's own depmod (kmod), the same tool the guest's modprobe reads the indexes of.
    build_lab._run(["chroot", str(root), "depmod", "-a", release])
    dep = (modules / "modules.dep").read_text()
    for name in KERNEL_MODULES_NEEDED:
        if not re.search(rf"/{name}\.ko(\.\w+)?:", dep):
            raise RuntimeError(f"module {name} is not in {release}'s modules.dep")

    for name, path in binaries.items():
        _install(root / "usr/bin" / name, path.read_bytes(), 0o755)
    # Not enabled here: the project's Ignition enables it ({"name": "containerd.service",
    # "enabled": true} in ignition/node.py, a preset line Ignition writes).
    _install(root / "usr/lib/systemd/system/containerd.service", containerd_unit().encode())

    write_pause_image(root, work)
    units = root / "usr/lib/systemd/system"
    _install(
        units / "stubernetes-lab-images.service",
        (FILES / "stubernetes-lab-images.service").read_bytes(),
    )
    _symlink(
        root / "etc/systemd/system/multi-user.target.wants/stubernetes-lab-images.service",
        "/usr/lib/systemd/system/stubernetes-lab-images.service",
    )

    # Fedora's preset policy instead of Debian's none (the files say why).
    for preset in ("85-stubernetes-lab.preset", "99-default-disable.preset"):
        _install(root / "usr/lib/systemd/system-preset" / preset, (FILES / preset).read_bytes())
    _install(
        root / "etc/systemd/journald.conf.d/lab-console.conf",
        (FILES / "lab-console.conf").read_bytes(),
    )
    # No progress spinner on the console (systemd's status output): the host reads the journal
    # from the same serial port (systemd-system.conf(5) ShowStatus=).
    _install(root / "etc/systemd/system.conf.d/lab-console.conf", b"[Manager]\nShowStatus=no\n")
    # No login prompt on the serial port or the first VT: it would interleave with the log.
    for unit in ("serial-getty@ttyS0.service", "getty@tty1.service"):
        _symlink(root / "etc/systemd/system" / unit, "/dev/null")

    # First boot as Fedora CoreOS has it: "uninitialized" makes systemd treat this boot as the
    # first, set up a machine ID and apply the unit presets (machine-id(5), "First Boot
    # Semantics"), among them the ones Ignition writes to
    # /etc/systemd/system-preset/20-ignition.preset (coreos/ignition v2.24.0
    # internal/exec/util/unit.go PresetPath, internal/exec/stages/files/units.go
    # createSystemdPresetFile).
    _install(root / "etc/machine-id", b"uninitialized\n", 0o444)
    # The initramfs mounts the root read-write; nothing else to mount.
    _install(root / "etc/fstab", b"")
    # Ignition's files stage reads the policy's name from SELINUXTYPE= before it relabels what it
    # wrote, and fails without the file (coreos/ignition v2.24.0 internal/exec/util/selinux.go
    # getSelinuxPolicy; the initramfs' setfiles is a no-op). Fedora CoreOS has
    # SELINUX=enforcing with the targeted policy; this root has no policy (node_rootfs.md).
    _install(root / "etc/selinux/config", b"SELINUX=disabled\nSELINUXTYPE=targeted\n")
    # mmdebstrap copies the build host's /etc/hostname and /etc/resolv.conf: the hostname is
    # Ignition's to set, and NetworkManager writes resolv.conf from what DHCP or its keyfile say.
    for copied in ("etc/hostname", "etc/resolv.conf"):
        path = root / copied
        if path.is_symlink() or path.exists():
            path.unlink()
    for group in EXTRA_GROUPS:
        build_lab._run(["chroot", str(root), "groupadd", "--system", group])
    check_root(root)


def check_root(root: Path) -> None:
    """What the brief of the root promises and a package or hook could silently undo."""
    shadow = (root / "etc/shadow").read_text()
    root_entry = next(line for line in shadow.splitlines() if line.startswith("root:"))
    if root_entry.split(":")[1] in ("", "U6aMy0wojraho"):
        raise RuntimeError("root has an empty password")
    for sshd in ("usr/sbin/sshd", "lib/systemd/system/ssh.service"):
        if (root / sshd).exists():
            raise RuntimeError(f"an SSH server is installed ({sshd})")
    if not (root / "sbin/init").exists():
        raise RuntimeError("no /sbin/init (systemd-sysv)")


def installed_packages(root: Path) -> str:
    res = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Package} ${Version}\\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    return "".join(sorted(res.stdout.splitlines(keepends=True)))


def build_node_rootfs(
    cache: Path | None = None, force: bool = False, log: Callable[[str], None] = _log
) -> NodeRootfs:
    lab_cache = Path(cache) if cache is not None else build_lab.default_cache_dir()
    lab_cache.mkdir(parents=True, exist_ok=True)
    kernel_pkg = build_lab.resolve_kernel_package_cached(lab_cache)
    kernel_tree = build_lab.fetch_package(kernel_pkg, lab_cache, log, family="linux-image-")
    release = build_lab.kernel_release(kernel_tree)
    binaries = containerd_binaries()
    key = input_key(kernel_pkg, kernel_tree, binaries)

    builds = lab_cache / "node-rootfs"
    out = builds / key
    manifest = out / "node-rootfs.json"
    if manifest.exists() and not force:
        log(f"reusing {out}")
        return NodeRootfs.from_json(manifest.read_text())

    builds.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(dir=builds, prefix=f".{key}-"))
    try:
        root = work / "root"
        root.mkdir()
        with _step(f"mmdebstrap {SUITE} ({len(PACKAGES)} packages)", log):
            build_lab._run(
                [
                    "mmdebstrap",
                    "--mode=root",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    SUITE,
                    str(root),
                    MIRROR,
                ]
            )
        with _step("kernel modules, containerd, pause image, units", log):
            customize(root, work, kernel_tree, release, binaries)
        packages = installed_packages(root)
        (work / "packages.txt").write_text(packages)
        image = work / "node-root.img"
        with _step(f"mke2fs ext4 {IMAGE_SIZE}", log):
            build_lab._run(
                [
                    "mke2fs",
                    "-q",
                    "-t",
                    "ext4",
                    "-L",
                    IMAGE_LABEL,
                    "-d",
                    str(root),
                    "-E",
                    "root_owner=0:0",
                    str(image),
                    IMAGE_SIZE,
                ]
            )
        shutil.rmtree(root)
        result = NodeRootfs(out / "node-root.img", out / "packages.txt", release, key)
        (work / "node-rootfs.json").write_text(result.to_json())
        if out.exists():
            shutil.rmtree(out)  # --force, or an incomplete earlier build
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    for stale in builds.iterdir():
        if stale != out and not stale.name.startswith("."):
            shutil.rmtree(stale, ignore_errors=True)  # builds of older inputs
    used = result.image.stat().st_blocks * 512
    log(
        f"built {result.image} in {time.monotonic() - started:.0f} s: "
        f"{used // (1 << 20)} MiB used of {IMAGE_SIZE}, {len(packages.splitlines())} packages"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="the lab's cache directory")
    ap.add_argument("--force", action="store_true", help="build again")
    args = ap.parse_args(argv)
    print(build_node_rootfs(args.cache, force=args.force).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
