"""Apply an Ignition config with the real Ignition binary into a scratch root directory.

Ignition's `files` stage reads the config that its `fetch` stage caches; both keep their cache
and state in a work folder, so nothing on the host is touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

IGNITION_BINARY = Path("/usr/lib/dracut/modules.d/30ignition/ignition")

# The groups a Fedora CoreOS root has that the admin user is put in.
BASE_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "etc/group": "root:x:0:\nwheel:x:10:\nsudo:x:16:\nusers:x:100:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\n",
    "etc/gshadow": "root:::\nwheel:::\nsudo:::\nusers:::\n",
    "etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
}


class IgnitionFailed(RuntimeError):
    pass


def prepare_root(root: Path) -> None:
    for relative, text in BASE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def let_others_traverse(root: Path) -> None:
    """Ignition writes a user's SSH keys as that user, who must be able to reach the root:
    let others traverse (not list) every directory above it, as on a real /sysroot."""
    for directory in root.resolve().parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def apply_ignition(
    config: bytes,
    root: Path,
    workdir: Path,
    *,
    binary: Path = IGNITION_BINARY,
    prepare: Callable[[Path], None] = prepare_root,
    tools: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> str:
    """Run Ignition's fetch and files stages for `config` into `root`; returns Ignition's log.

    The lab applies with its own build of the binary, root skeleton and tools (`prepare`,
    `tools`, `env`), so that its guest and the host compute the same tree.
    """
    if not binary.exists():
        raise IgnitionFailed(f"{binary} is missing (Debian package 'ignition')")
    root.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    let_others_traverse(root)
    prepare(root)
    config_file = workdir / "config.ign"
    config_file.write_bytes(config)
    fake_bin = workdir / "bin"
    fake_bin.mkdir(exist_ok=True)
    # Relabelling needs SELinux policy that a scratch root does not have; the labels are the
    # one thing these tests do not check.
    setfiles = fake_bin / "setfiles"
    setfiles.write_text("#!/bin/sh\nexit 0\n")
    setfiles.chmod(0o755)
    search_path = ":".join(map(str, (fake_bin, *tools)))
    run_env = {
        **(os.environ if env is None else env),
        "PATH": f"{search_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "IGNITION_CONFIG_FILE": str(config_file),
    }
    log = []
    for stage in ("fetch", "files"):
        # Ignition's cache and state files go to the work folder, not the host's /run.
        result = subprocess.run(
            [
                str(binary),
                "-platform",
                "file",
                "-stage",
                stage,
                "-root",
                str(root),
                "-log-to-stdout",
                "-config-cache",
                str(workdir / "ignition.json"),
                "-state-file",
                str(workdir / "ignition.state"),
                "-fetch-timeout",
                "20s",
            ],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log.append(result.stdout + result.stderr)
        if result.returncode != 0:
            lines = log[-1].splitlines()
            problems = [line for line in lines if "CRITICAL" in line or "ERROR" in line]
            raise IgnitionFailed(
                f"Ignition's {stage} stage exited {result.returncode}: "
                + "\n".join(problems or lines[-20:])
            )
    return "\n".join(log)


def install_host_units(root: Path) -> None:
    """systemd-analyze --root needs the standard targets (sysinit.target, ...) inside the root."""
    target = root / "usr/lib/systemd/system"
    if not target.exists():
        shutil.copytree("/usr/lib/systemd/system", target, symlinks=True)
