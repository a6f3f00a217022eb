#!/usr/bin/env python3
"""Build the virtual bare-metal lab's guest: a Debian kernel and a small initramfs.

    python3 tests/lab/build_lab.py [--cache DIR] [--force]

Everything goes into a cache outside the repository,
``$STUBERNETES_LAB_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/stubernetes-lab``:

* ``pkg/<package>_<version>/``: the Debian packages used, fetched with
  ``apt-get download`` (no root needed, but the apt lists must be present:
  ``apt-get update``) and unpacked with ``dpkg-deb -x``:
  ``linux-image-<abi>-cloud-amd64`` (the package ``linux-image-cloud-amd64`` depends on,
  or ``$STUBERNETES_LAB_KERNEL_PKG``), ``busybox-static``.
* ``build/<key>/``: ``vmlinuz``, ``initramfs.img`` (gzip'd newc cpio) and
  ``lab.json`` describing them; ``<key>`` hashes every input, so a change to the guest
  scripts, the packages, the Ignition binary or this file makes a new build (older ones are
  removed) and an unchanged one is reused. Without apt lists (offline) the cached packages
  are reused.

The initramfs holds BusyBox (static), the real Ignition v2.24.0 that ``scripts/tools`` builds
from its Go module (``tests/real/tool_cache.py``; dynamically linked, cgo and libblkid) and the
``useradd``, ``usermod`` and ``groupadd`` it calls (from the host's ``passwd`` package), with
the shared libraries ``ldd`` lists for them, the kernel modules of virtio networking and
disks (the closure of ``virtio_pci``, ``virtio_net`` and ``virtio_blk`` over the modules'
``.modinfo`` depends), a no-op
``setfiles``, ``tests/lab/guest/init``, ``tests/lab/guest/udhcpc.script``,
``tests/lab/tree-digest.sh`` and the root skeleton Ignition is applied to (see
:data:`SKELETON`).

Needs on the host: python3, apt-get/apt-cache (Debian), dpkg-deb, ldd, and the
``passwd`` package (always installed on Debian). Running the lab then needs
``qemu-system-x86`` and ``ipxe-qemu``; comparing against Ignition applied on the host
needs root (``useradd --root`` and ``chown``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUEST_DIR = HERE / "guest"
DIGEST_SCRIPT = HERE / "tree-digest.sh"

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_IN_PACKAGE = "bin/busybox"
# Host programs Ignition runs while applying users/groups: useradd for a new user, usermod
# for an existing one, groupadd for passwd.groups (coreos/ignition v2.24.0
# `internal/exec/util/passwd.go`, names from `internal/distro/distro.go`; userdel and
# groupdel only for `shouldExist: false`, which no lab config uses).
IGNITION_HELPERS = ("useradd", "usermod", "groupadd")
# virtio networking for the boot, and virtio_blk for the real node guest's disk (ext4 is built
# into Debian's cloud kernel: CONFIG_EXT4_FS=y in its /boot/config-*).
GUEST_MODULES = ("virtio_pci", "virtio_net", "virtio_blk")

# Paths under the root whose content differs on every run; tree-digest.sh records
# their type, mode and owner but not their content.
VOLATILE_PATHS = ("etc/.ignition-result.json",)  # boot id and provisioning date
# useradd writes the day of the last password change into /etc/shadow; shadow 4.13
# takes "now" from SOURCE_DATE_EPOCH, so guest and host agree.
SOURCE_DATE_EPOCH = 86400

# The root Ignition is applied to, in the guest and on the host alike:
# path -> (mode, content or None for a directory). Groups mimic those a CoreOS host has,
# so configs that put users into them apply.
SKELETON: dict[str, tuple[int, str | None]] = {
    "etc": (0o755, None),
    "etc/selinux": (0o755, None),
    "etc/selinux/config": (0o644, "SELINUX=disabled\nSELINUXTYPE=targeted\n"),
    "etc/passwd": (0o644, "root:x:0:0:root:/root:/bin/bash\n"),
    "etc/shadow": (0o600, "root:*:1:0:99999:7:::\n"),
    "etc/group": (
        0o644,
        "root:x:0:\nadm:x:4:\nwheel:x:10:\nsudo:x:16:\nsystemd-journal:x:190:\ndocker:x:999:\n",
    ),
    "etc/gshadow": (
        0o600,
        "root:::\nadm:::\nwheel:::\nsudo:::\nsystemd-journal:::\ndocker:::\n",
    ),
    "root": (0o700, None),
}

# Debian merged /usr: libraries are found through /lib; keep ldd's paths as they are.
SETFILES_STUB = "#!/bin/busybox sh\n# no-op setfiles for the lab: nothing is labelled\nexit 0\n"


def default_cache_dir() -> Path:
    env = os.environ.get("STUBERNETES_LAB_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "stubernetes-lab"


@dataclass(frozen=True)
class LabBuild:
    """What the lab needs from a build; paths are absolute."""

    kernel: Path
    initramfs: Path
    kernel_package: str
    kernel_release: str
    busybox: Path  # the same static busybox the guest runs, for the host side
    ignition: Path  # the same Ignition binary the guest runs
    host_tools: Path  # directory with the no-op setfiles, to prepend to PATH on the host
    digest_script: Path

    def to_json(self) -> str:
        return json.dumps({k: str(v) for k, v in asdict(self).items()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabBuild:
        d = json.loads(text)
        return cls(
            kernel=Path(d["kernel"]),
            initramfs=Path(d["initramfs"]),
            kernel_package=str(d["kernel_package"]),
            kernel_release=str(d["kernel_release"]),
            busybox=Path(d["busybox"]),
            ignition=Path(d["ignition"]),
            host_tools=Path(d["host_tools"]),
            digest_script=DIGEST_SCRIPT,  # this checkout's copy (same content: build key)
        )


def ignition_binary() -> Path:
    """The real Ignition v2.24.0 built by ``scripts/tools``. Not Debian's 2.14: Matchbox
    re-serves every raw config as spec 3.4.0, which 2.14 refuses."""
    try:
        import tool_cache
    except ModuleNotFoundError:  # run as a script: tests/ and its layers are not on sys.path
        sys.path.insert(0, str(HERE.parent))
        from layers import module_path

        sys.path[:0] = module_path()
        import tool_cache
    return tool_cache.require_tool("ignition", "ignition")


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest().encode()


# ---------------------------------------------------------------------------- apt


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def resolve_kernel_package() -> str:
    explicit = os.environ.get("STUBERNETES_LAB_KERNEL_PKG")
    if explicit:
        return explicit
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    m = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if not m:
        raise RuntimeError(f"cannot resolve the kernel package {KERNEL_META_PACKAGE} depends on")
    return m.group(1)


def candidate_version(package: str) -> str:
    out = _run(["apt-cache", "show", "--no-all-versions", package])
    m = re.search(r"^Version:\s*(\S+)", out, re.M)
    if not m:
        raise RuntimeError(f"apt-cache knows no version of {package}")
    return m.group(1)


def fetch_package(
    package: str, cache: Path, log: Callable[[str], None], family: str | None = None
) -> Path:
    """Download (once) and unpack a Debian package; return the unpacked tree.

    Afterwards, unpacked trees of other versions (of packages named ``family*``, by
    default of this package) are removed.
    """
    pkg_root = cache / "pkg"
    pkg_root.mkdir(parents=True, exist_ok=True)
    try:
        version = candidate_version(package)
    except RuntimeError:
        # No apt lists (offline): fall back to any unpacked copy in the cache.
        existing = sorted(pkg_root.glob(f"{package}_*/.complete"))
        if existing:
            return existing[-1].parent
        raise
    safe = re.sub(r"[^A-Za-z0-9.+~-]", "_", version)
    tree = pkg_root / f"{package}_{safe}"
    if (tree / ".complete").exists():
        return tree
    downloads = Path(tempfile.mkdtemp(dir=pkg_root, prefix=f".{package}-deb-"))
    try:
        log(f"lab: apt-get download {package}={version}")
        _run(["apt-get", "download", f"{package}={version}"], cwd=downloads)
        found = list(downloads.glob("*.deb"))
        if len(found) != 1:
            raise RuntimeError(f"apt-get download {package} produced {found}")
        _unpack(found[0], package, version, pkg_root, tree)
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    # Other versions of the package are of no further use.
    for old in pkg_root.glob(f"{family}*" if family else f"{package}_*"):
        if old != tree and (old / ".complete").exists():
            shutil.rmtree(old, ignore_errors=True)
    return tree


def _unpack(deb: Path, package: str, version: str, pkg_root: Path, tree: Path) -> None:
    # Unpack beside the final place and rename, so a concurrent build never sees a
    # half-unpacked tree.
    staging = Path(tempfile.mkdtemp(dir=pkg_root, prefix=f".{package}-"))
    try:
        _run(["dpkg-deb", "-x", str(deb), str(staging)])
        (staging / ".complete").write_text(f"{package} {version}\n")
        if tree.exists() and not (tree / ".complete").exists():
            shutil.rmtree(tree)
        try:
            staging.rename(tree)
        except OSError:
            if not (tree / ".complete").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)


# ----------------------------------------------------------------------- contents


def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths of the libraries (and loader) ``ldd`` lists for ``binary``."""
    res = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if res.returncode != 0 or "not a dynamic executable" in res.stdout + res.stderr:
        return []
    libs = []
    for line in res.stdout.splitlines():
        line = line.strip()
        m = re.match(r"\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(
            r"(/\S+) \(0x[0-9a-f]+\)$", line
        )
        if m:
            libs.append(m.group(1))
        elif "=>" in line and "not found" in line:
            raise RuntimeError(f"{binary}: {line}")
    return libs


def modinfo(ko: Path) -> dict[str, list[str]]:
    """The ``.modinfo`` section of an (uncompressed, ELF64 little-endian) module."""
    data = ko.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise RuntimeError(f"{ko}: not an ELF64 little-endian object")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize
        )
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] != b".modinfo":
            continue
        for item in data[off : off + size].split(b"\0"):
            if b"=" in item:
                k, v = item.decode(errors="replace").split("=", 1)
                info.setdefault(k, []).append(v)
    return info


def module_closure(modules_dir: Path, wanted: Iterable[str]) -> list[str]:
    """Module files (relative to modules_dir) to insmod in order, dependencies first.

    Dependencies come from each module's ``.modinfo`` ``depends=`` (what depmod reads;
    the Debian package ships no modules.dep, depmod writes it at install time).
    """
    by_name: dict[str, Path] = {}
    for ko in modules_dir.rglob("*.ko"):
        by_name[ko.name[:-3].replace("-", "_")] = ko
    builtin_file = modules_dir / "modules.builtin"
    builtin = {
        Path(x).name.split(".ko")[0].replace("-", "_")
        for x in (builtin_file.read_text().split() if builtin_file.exists() else [])
    }
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        key = name.replace("-", "_")
        if key in builtin:
            return
        if key not in by_name:
            raise RuntimeError(f"module {name} (needed by {chain}) not in {modules_dir}")
        rel = str(by_name[key].relative_to(modules_dir))
        if rel in order:
            return
        for dep in ",".join(modinfo(by_name[key]).get("depends", [])).split(","):
            if dep:
                visit(dep, (*chain, name))
        order.append(rel)

    for name in wanted:
        visit(name, ())
    return order


def write_skeleton(root: Path) -> None:
    """Create the root skeleton (:data:`SKELETON`) under ``root`` (host side)."""
    for rel, (mode, content) in sorted(SKELETON.items()):
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        os.chmod(path, mode)


class Cpio:
    """A deterministic newc archive: owner root, mtime 0, parents before children."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, bytes, int, int]] = {}

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.entries:
                self.entries[d] = (stat.S_IFDIR | 0o755, b"", 0, 0)

    def dir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (stat.S_IFDIR | mode, b"", 0, 0)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (stat.S_IFREG | mode, data, 0, 0)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (stat.S_IFLNK | 0o777, target.encode(), 0, 0)

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (stat.S_IFCHR | mode, b"", major, minor)

    def add_host_file(self, path: str, source: Path) -> None:
        """Copy a host file (following symlinks) keeping its permission bits."""
        st = source.stat()
        self.file(path, source.read_bytes(), stat.S_IMODE(st.st_mode))

    def bytes(self) -> bytes:
        out = io.BytesIO()
        ino = 1

        def header(name: str, mode: int, size: int, rmaj: int, rmin: int) -> None:
            nonlocal ino
            nb = name.encode() + b"\0"
            fields = [
                ino,
                mode,
                0,
                0,
                2 if stat.S_ISDIR(mode) else 1,
                0,
                size,
                0,
                0,
                rmaj,
                rmin,
                len(nb),
                0,
            ]
            out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
            out.write(nb)
            out.write(b"\0" * (-(110 + len(nb)) % 4))
            ino += 1

        for name in sorted(self.entries):
            mode, data, rmaj, rmin = self.entries[name]
            header(name, mode, len(data), rmaj, rmin)
            out.write(data)
            out.write(b"\0" * (-len(data) % 4))
        header("TRAILER!!!", 0, 0, 0, 0)
        return out.getvalue()


# -------------------------------------------------------------------------- build


def _hash_inputs(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def build(
    cache: Path | None = None, force: bool = False, log: Callable[[str], None] = print
) -> LabBuild:
    cache = Path(cache) if cache is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    kernel_pkg = resolve_kernel_package_cached(cache)
    kernel_tree = fetch_package(kernel_pkg, cache, log, family="linux-image-")
    busybox_tree = fetch_package(BUSYBOX_PACKAGE, cache, log)
    ignition = ignition_binary()

    vmlinuz = sorted((kernel_tree / "boot").glob("vmlinuz-*"))
    if len(vmlinuz) != 1:
        raise RuntimeError(f"unexpected kernel package layout in {kernel_tree}")
    release = kernel_release(kernel_tree)
    modules_dir = kernel_tree / "lib/modules" / release
    busybox = busybox_tree / BUSYBOX_IN_PACKAGE
    if shared_libraries(busybox):
        raise RuntimeError(f"{busybox} is not statically linked")

    helpers = []
    for name in IGNITION_HELPERS:
        found = shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
        if not found:
            raise RuntimeError(f"{name} not found on the host (Debian package passwd)")
        helpers.append(Path(found))

    guest_files = {
        "init": (GUEST_DIR / "init").read_bytes(),
        "udhcpc": (GUEST_DIR / "udhcpc.script").read_bytes(),
        "digest": DIGEST_SCRIPT.read_bytes(),
        "build_lab": Path(__file__).read_bytes(),
    }
    key = _hash_inputs(
        [
            *guest_files.items(),
            ("kernel", vmlinuz[0].name.encode() + (kernel_tree / ".complete").read_bytes()),
            ("busybox", (busybox_tree / ".complete").read_bytes()),
            ("ignition", str(ignition).encode() + b"\0" + _file_digest(ignition)),
            *((str(h), h.read_bytes()) for h in helpers),
        ]
    )
    out = cache / "build" / key
    manifest = out / "lab.json"
    if manifest.exists() and not force:
        return LabBuild.from_json(manifest.read_text())

    log(f"lab: building initramfs for {release} in {out}")
    cpio = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "sysroot", "root", "etc", "lab/bin"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("init", guest_files["init"], 0o755)
    cpio.add_host_file("bin/busybox", busybox)
    cpio.file("lab/udhcpc.script", guest_files["udhcpc"], 0o755)
    cpio.file("lab/tree-digest.sh", guest_files["digest"], 0o644)
    cpio.file("lab/bin/setfiles", SETFILES_STUB.encode(), 0o755)
    cpio.file("lab/volatile.list", "".join(f"{p}\n" for p in VOLATILE_PATHS).encode())
    for rel, (mode, content) in SKELETON.items():
        if content is None:
            cpio.dir(f"lab/skel/{rel}", mode)
        else:
            cpio.file(f"lab/skel/{rel}", content.encode(), mode)

    binaries = {"usr/bin/ignition": ignition}
    binaries.update({f"usr/sbin/{h.name}": h for h in helpers})
    libs: set[str] = set()
    for dest, src in binaries.items():
        cpio.add_host_file(dest, src)
        libs.update(shared_libraries(src))
    for lib in sorted(libs):
        cpio.add_host_file(lib, Path(lib))

    modules = module_closure(modules_dir, GUEST_MODULES)
    for mod in modules:
        cpio.add_host_file(f"lib/modules/{release}/{mod}", modules_dir / mod)
    cpio.file("lab/modules.list", "".join(f"{m}\n" for m in modules).encode())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{key}-"))
    os.chmod(tmp_out, 0o755)
    shutil.copyfile(vmlinuz[0], tmp_out / "vmlinuz")
    raw = cpio.bytes()
    with open(tmp_out / "initramfs.img", "wb") as f:
        f.write(gzip.compress(raw, compresslevel=6, mtime=0))
    host_tools = tmp_out / "host-bin"
    host_tools.mkdir()
    (host_tools / "setfiles").write_text(SETFILES_STUB.replace("/bin/busybox", str(busybox)))
    os.chmod(host_tools / "setfiles", 0o755)

    result = LabBuild(
        kernel=out / "vmlinuz",
        initramfs=out / "initramfs.img",
        kernel_package=kernel_pkg,
        kernel_release=release,
        busybox=busybox,
        ignition=ignition,
        host_tools=out / "host-bin",
        digest_script=DIGEST_SCRIPT,
    )
    (tmp_out / "lab.json").write_text(result.to_json())
    if out.exists() and (force or not manifest.exists()):
        shutil.rmtree(out)  # --force, or a broken earlier build
    try:
        tmp_out.rename(out)
    except OSError:
        shutil.rmtree(tmp_out)  # another process finished the same build first
        if not manifest.exists():
            raise
    for stale in (cache / "build").iterdir():
        if stale != out and not stale.name.startswith("."):
            shutil.rmtree(stale, ignore_errors=True)  # builds of older inputs
    log(
        f"lab: initramfs {len(raw) // 1024} KiB raw, "
        f"{result.initramfs.stat().st_size // 1024} KiB gzip; modules: {' '.join(modules)}"
    )
    return result


def kernel_release(kernel_tree: Path) -> str:
    """The one kernel release an unpacked kernel package holds modules for."""
    releases = sorted(p.name for p in (kernel_tree / "lib/modules").iterdir())
    if len(releases) != 1:
        raise RuntimeError(f"unexpected kernel package layout in {kernel_tree}")
    return releases[0]


def resolve_kernel_package_cached(cache: Path) -> str:
    """The kernel package to use; remembered so an offline rerun reuses it."""
    remembered = cache / "kernel-package"
    try:
        pkg = resolve_kernel_package()
    except RuntimeError:
        if remembered.exists():
            return remembered.read_text().strip()
        raise
    remembered.write_text(pkg + "\n")
    return pkg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="cache directory")
    ap.add_argument("--force", action="store_true", help="rebuild the initramfs")
    args = ap.parse_args(argv)
    result = build(
        args.cache, force=args.force, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    print(result.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
