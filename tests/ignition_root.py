"""Apply an Ignition config with the real Ignition binary into a scratch root directory.

Ignition's `files` stage reads the config that its `fetch` stage caches in /run, so both stages
run in a private mount namespace with its own /run: nothing on the host is touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
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
    # Ignition writes a user's SSH keys as that user, who must be able to reach the root:
    # let others traverse (not list) every directory above it, as on a real /sysroot.
    for directory in root.resolve().parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    for relative, text in BASE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def apply_ignition(config: bytes, root: Path, workdir: Path) -> str:
    """Run Ignition's fetch and files stages for `config` into `root`; returns Ignition's log."""
    if not IGNITION_BINARY.exists():
        raise IgnitionFailed(f"{IGNITION_BINARY} is missing (Debian package 'ignition')")
    prepare_root(root)
    config_file = workdir / "config.ign"
    config_file.write_bytes(config)
    fake_bin = workdir / "bin"
    fake_bin.mkdir(exist_ok=True)
    # Relabelling needs SELinux policy that a scratch root does not have; the labels are the
    # one thing these tests do not check.
    setfiles = fake_bin / "setfiles"
    setfiles.write_text("#!/bin/sh\nexit 0\n")
    setfiles.chmod(0o755)
    script = (
        "set -e; mount -t tmpfs tmpfs /run; "
        f'"{IGNITION_BINARY}" -platform file -stage fetch -root "$ROOT" -log-to-stdout; '
        f'"{IGNITION_BINARY}" -platform file -stage files -root "$ROOT" -log-to-stdout'
    )
    env = {
        **os.environ,
        "PATH": f"{fake_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin",
        "IGNITION_CONFIG_FILE": str(config_file),
        "ROOT": str(root),
    }
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        problems = [line for line in log.splitlines() if "CRITICAL" in line or "ERROR" in line]
        raise IgnitionFailed(
            f"Ignition exited {result.returncode}: " + "\n".join(problems or [log[-2000:]])
        )
    return log


def install_host_units(root: Path) -> None:
    """systemd-analyze --root needs the standard targets (sysinit.target, ...) inside the root."""
    target = root / "usr/lib/systemd/system"
    if not target.exists():
        shutil.copytree("/usr/lib/systemd/system", target, symlinks=True)
