"""Apply an Ignition config with the real Ignition binary into a scratch root directory.

The binary is Ignition v2.24.0 as scripts/tools builds it (tool "ignition"): the release whose
source the tests cite (github.com/coreos/ignition/v2@v2.24.0). Remote `contents.source` URLs
are fetched for real, so a config that downloads files needs a server that answers them
(tests/real/node_downloads.py serves the node's binaries from the real Matchbox).

Ignition's `kargs` and `files` stages read the config that its `fetch` stage caches; all keep
their cache and state in a work folder, so nothing on the host is touched.

The `kargs` stage runs as on Fedora CoreOS (after fetch, before files: coreos/ignition
dracut/30ignition/ignition-kargs.service), but the program it calls, `ignition-kargs-helper`
(coreos/ignition internal/distro/distro.go; a bare name, found in PATH), is a stand-in that
records its arguments in the work folder (`kargs_helper_calls`): the real one edits the boot
loader entries of an installed system and reboots (docs/distributor-notes.md), which has no
meaning in a scratch root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tool_cache import tool_dir

# Where scripts/tools puts its build; `exists()` tells the tests that need it to skip.
IGNITION_BINARY = tool_dir("ignition") / "bin" / "ignition"

# The groups a Fedora CoreOS root has that the admin user is put in.
BASE_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "etc/group": "root:x:0:\nwheel:x:10:\nsudo:x:16:\nusers:x:100:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\n",
    "etc/gshadow": "root:::\nwheel:::\nsudo:::\nusers:::\n",
    "etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
}


# Ignition stages in the order Fedora CoreOS runs them (disks and mount do nothing here).
STAGES = ("fetch", "kargs", "files")
KARGS_HELPER_CALLS = "kargs-helper.calls"


class IgnitionFailed(RuntimeError):
    pass


def kargs_helper_calls(workdir: Path) -> list[list[str]]:
    """The arguments of each call Ignition's kargs stage made to ignition-kargs-helper."""
    path = workdir / KARGS_HELPER_CALLS
    if not path.exists():
        return []
    return [line.split("\0")[:-1] for line in path.read_text().splitlines()]


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
    keep_failed_root: bool = False,
) -> str:
    """Run Ignition's fetch, kargs and files stages for `config` into `root`; returns Ignition's
    log.

    The lab applies with its own build of the binary, root skeleton and tools (`prepare`,
    `tools`, `env`), so that its guest and the host compute the same tree. When a stage fails,
    `root` is left as Ignition left it with `keep_failed_root` (to see what it did not write),
    else emptied.
    """
    if not binary.exists():
        raise IgnitionFailed(f"{binary} is missing: run ./scripts/tools ignition")
    root.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.gettempdir())
    if any(root.iterdir()) or temp.stat().st_dev != root.parent.stat().st_dev:
        target, staging = root, None
    else:
        # Into a fresh directory right under the system's temporary directory, renamed into
        # place afterwards: the admin user must traverse every directory above the root, and a
        # concurrent pytest session may reset its base temporary directory to 0700 meanwhile.
        staging = Path(tempfile.mkdtemp(prefix="stubernetes-ignition-root-", dir=temp))
        staging.chmod(0o755)
        target = staging
    let_others_traverse(target)
    try:
        log = _run_stages(config, target, workdir, binary, prepare, tools, env)
    except IgnitionFailed:
        if staging is not None:
            if keep_failed_root:
                _move_into_place(staging, root)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        raise
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging is not None:
        _move_into_place(staging, root)
    return log


def _move_into_place(staging: Path, root: Path) -> None:
    root.rmdir()
    staging.rename(root)


def _run_stages(
    config: bytes,
    root: Path,
    workdir: Path,
    binary: Path,
    prepare: Callable[[Path], None],
    tools: Sequence[Path],
    env: Mapping[str, str] | None,
) -> str:
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
    calls = workdir / KARGS_HELPER_CALLS
    calls.unlink(missing_ok=True)
    helper = fake_bin / "ignition-kargs-helper"
    helper.write_text(
        "#!/bin/sh\n"
        "# Stand-in: records its arguments, NUL-separated, one call a line.\n"
        f"for arg in \"$@\"; do printf '%s\\0' \"$arg\"; done >>'{calls}'\n"
        f"printf '\\n' >>'{calls}'\n"
    )
    helper.chmod(0o755)
    search_path = ":".join(map(str, (fake_bin, *tools)))
    run_env = {
        **(os.environ if env is None else env),
        "PATH": f"{search_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "IGNITION_CONFIG_FILE": str(config_file),
    }
    log = []
    for stage in STAGES:
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
