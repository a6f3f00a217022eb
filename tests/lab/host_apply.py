"""Apply an Ignition config on the host the way the lab guest does, and digest trees.

The host side uses the very binaries the guest carries (the Ignition binary and the
static BusyBox from the lab build, the host's useradd/usermod/groupadd, which the build
copied into the guest) and the same root skeleton, SOURCE_DATE_EPOCH and
``tree-digest.sh``, so a guest's ``tree-sha256`` can be compared with the host's.
Needs root: ``useradd --root`` and Ignition's ``chown``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ignition_root

from .build_lab import SOURCE_DATE_EPOCH, VOLATILE_PATHS, LabBuild, write_skeleton


@dataclass
class TreeDigest:
    manifest: list[str]
    sha256: str


@dataclass(frozen=True)
class ManifestEntry:
    """One object of a tree-digest.sh manifest (see tree-digest.sh for the fields)."""

    type: str
    mode: str  # octal permission bits, as stat %a prints them
    owner: str  # uid:gid
    content: str  # a file's sha256, ...


def manifest_entries(lines: list[str]) -> dict[str, ManifestEntry]:
    """A manifest's objects by their path in the root ("/usr/local/bin/kubelet")."""
    entries = {}
    for line in lines:
        kind, mode, owner, content, path = line.split(" ", 4)
        entries[path.removeprefix(".")] = ManifestEntry(kind, mode, owner, content)
    return entries


def parse_digest_output(text: str) -> TreeDigest:
    lines = text.splitlines()
    if not lines or not lines[-1].startswith("tree-sha256 "):
        raise ValueError(f"tree-digest.sh output has no tree-sha256 line:\n{text}")
    return TreeDigest(lines[:-1], lines[-1].split(" ", 1)[1])


def tree_digest(lab: LabBuild, root: Path) -> TreeDigest:
    env = {"PATH": "/usr/bin:/bin", "BUSYBOX": str(lab.busybox)}
    res = subprocess.run(
        [str(lab.busybox), "sh", str(lab.digest_script), str(root), *VOLATILE_PATHS],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"tree-digest.sh failed ({res.returncode}): {res.stderr}")
    return parse_digest_output(res.stdout)


def reached_from_host(config: bytes, guest_url: str, host_url: str) -> bytes:
    """``config`` with each remote file source at ``guest_url`` (the lab's Matchbox as the guests
    reach it, 10.0.2.2 on QEMU's user network) pointed at ``host_url`` (the same Matchbox as the
    host reaches it, on its loopback): the same files from the same server, only the address
    the host cannot reach changed."""
    doc = json.loads(config)
    for entry in (doc.get("storage") or {}).get("files") or []:
        for contents in (entry.get("contents") or {}, *(entry.get("append") or [])):
            source = contents.get("source")
            if isinstance(source, str) and source.startswith(f"{guest_url}/"):
                contents["source"] = host_url + source.removeprefix(guest_url)
    return json.dumps(doc).encode()


def apply_ignition(lab: LabBuild, config: bytes, root: Path, workdir: Path) -> str:
    """Apply ``config`` (an Ignition document) to a fresh skeleton at ``root``, through the same
    applier as the rest of the test suite, with the binary, tools and skeleton the guest has.
    Raises ``IgnitionFailed`` (with the log) if a stage fails."""
    return ignition_root.apply_ignition(
        config,
        root,
        workdir,
        binary=lab.ignition,
        prepare=write_skeleton,
        tools=[lab.host_tools],
        env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "LC_ALL": "C"},
    )


def traversable_tempdir() -> str:
    """A parent directory every user can traverse.

    Ignition writes a user's ``~/.ssh`` as that user, so no directory above the root it
    applies to may be private (pytest's own temporary directories are mode 0700).
    """
    for candidate in (tempfile.gettempdir(), "/var/tmp", "/tmp"):
        path = Path(candidate).resolve()
        if all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents)):
            return str(path)
    raise RuntimeError("no world-traversable temporary directory for the host root")


def apply_and_digest(lab: LabBuild, config: bytes) -> tuple[TreeDigest, str]:
    """Apply ``config`` to a fresh skeleton on the host; return its digest and the log."""
    with tempfile.TemporaryDirectory(prefix="stubernetes-lab-", dir=traversable_tempdir()) as d:
        os.chmod(d, 0o755)
        root = Path(d) / "root"
        log = apply_ignition(lab, config, root, Path(d) / "work")
        return tree_digest(lab, root), log


def can_apply_on_host() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "applying Ignition on the host needs root (useradd --root, chown)"
    return True, ""
