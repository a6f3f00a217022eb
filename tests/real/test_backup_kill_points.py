"""The backup and restore scripts killed outright at each of their steps, as a power cut or
systemd's SIGKILL of the unit's cgroup would: afterwards every snapshot at the destination
restores, last-good.json is whole and names one of them, the data directory a restore was
writing is absent, empty or complete, and the next run succeeds and leaves no plaintext
scratch behind.

Real processes throughout: one etcd member on loopback, the etcdctl and etcdutl release
(tool cache), GnuPG, coreutils. A kill point is a command of the script (found on PATH): a
shim of that name in front of PATH kills the script's whole process group at the command's
n-th run, before it runs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_process import RealProcess, free_port, port_open, start
from tool_cache import require_tool

from ignition.assets import FILES

pytestmark = pytest.mark.real

BACKUP = Path(str(FILES / "backup" / "etcd-backup"))
RESTORE = Path(str(FILES / "backup" / "etcd-restore"))
SNAPSHOT = re.compile(r"^kill-etcd-[0-9]{8}T[0-9]{6}Z-r[0-9]+\.db\.gpg$")
# (command, its run to kill at) in the order etcd-backup runs them: the etcd tool's endpoint
# status, snapshot save and snapshot status; gpg; cp and mv of the copy into place; mv of
# last-good.json.
BACKUP_KILL_POINTS = [
    ("etcd-tool", 1),
    ("etcd-tool", 2),
    ("etcd-tool", 3),
    ("gpg", 1),
    ("cp", 1),
    ("mv", 1),
    ("mv", 2),
]
# etcd-restore: cp from the destination, gpg, etcdutl's restore, the data directory's mkdir
# (its third: make_work makes two before), mv into place, rm of the staging directory after it
# (the third rm: make_work's and the one before etcdutl come first).
RESTORE_KILL_POINTS = [
    ("cp", 1),
    ("gpg", 1),
    ("etcd-tool", 1),
    ("mkdir", 3),
    ("mv", 1),
    ("rm", 3),
]

SHIM = """#!/bin/bash
count_file={count}
n=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$count_file"
if (( n == {at} )); then
	kill -KILL -- -"$(ps -o pgid= $$ | tr -d ' ')"
	sleep 10
fi
exec {real} "$@"
"""


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("kill-points-etcd")
    client, peer = free_port(), free_port()
    process: RealProcess = start(
        "etcd",
        [
            str(require_tool("etcd", "etcd")),
            "--name=kill",
            f"--data-dir={work / 'data'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kill=http://127.0.0.1:{peer}",
        ],
        work / "logs",
        lambda: port_open(client),
    )
    endpoint = f"http://127.0.0.1:{client}"
    etcdctl = str(require_tool("etcd", "etcdctl"))
    for i in range(50):
        subprocess.run(
            [etcdctl, f"--endpoints={endpoint}", "put", f"/kept/{i}", f"value-{i}" * 20],
            check=True,
            capture_output=True,
        )
    try:
        yield endpoint
    finally:
        process.stop()


def _settings(work: Path, endpoint: str) -> Path:
    tool = work / "etcd-tool"
    tool.write_text(
        "#!/bin/sh\ntool=$1; shift\n"
        f'[ "$tool" = etcdctl ] && exec {require_tool("etcd", "etcdctl")} "$@"\n'
        f'[ "$tool" = etcdutl ] && exec {require_tool("etcdutl", "etcdutl")} "$@"\nexit 2\n'
    )
    tool.chmod(0o755)
    (work / "key").write_text(secrets.token_hex(32))
    settings = {
        "CLUSTER": "kill",
        "KEEP": "3",
        "KEY_FILE": work / "key",
        "STATE_DIR": work / "state",
        # The tool by its name, so that a shim in front of PATH can stand in for it.
        "ETCD_TOOL": "etcd-tool",
        "ETCD_ENDPOINT": endpoint,
        "BACKUP_DIR": work / "snapshots",
    }
    path = work / "backup.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def _run(
    work: Path, script: Path, *args: str, kill: tuple[str, int] | None = None
) -> subprocess.CompletedProcess[str]:
    shims = work / "shims"
    shutil.rmtree(shims, ignore_errors=True)
    shims.mkdir()
    path = f"{shims}:{work}:{os.environ['PATH']}"
    if kill is not None:
        command, at = kill
        real = shutil.which(command, path=f"{work}:{os.environ['PATH']}")
        assert real, command
        shim = shims / command
        shim.write_text(SHIM.format(count=shims / "count", at=at, real=real))
        shim.chmod(0o755)
    return subprocess.run(
        [str(script), *args],
        env={**os.environ, "PATH": path, "BACKUP_ENV": str(work / "backup.env")},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        check=False,
    )


def _snapshots(work: Path) -> list[str]:
    directory = work / "snapshots"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _assert_consistent(work: Path) -> None:
    listed = [n for n in _snapshots(work) if SNAPSHOT.match(n)]
    for name in listed:
        target = work / f"check-{name}"
        done = _run(work, RESTORE, str(target), "kill", "http://127.0.0.1:2380", name)
        assert done.returncode == 0, f"{name} does not restore: {done.stderr}"
        shutil.rmtree(target)
    last_good = work / "state" / "last-good.json"
    if last_good.exists():
        assert json.loads(last_good.read_text())["name"] in listed


@pytest.mark.parametrize(("command", "at"), BACKUP_KILL_POINTS)
def test_backup_killed_at_each_step(etcd: str, tmp_path: Path, command: str, at: int) -> None:
    _settings(tmp_path, etcd)
    first = _run(tmp_path, BACKUP)
    assert first.returncode == 0, first.stderr
    time.sleep(1.1)  # the next snapshot's name is a second later
    killed = _run(tmp_path, BACKUP, kill=(command, at))
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    _assert_consistent(tmp_path)
    time.sleep(1.1)
    again = _run(tmp_path, BACKUP)
    assert again.returncode == 0, again.stderr
    _assert_consistent(tmp_path)
    newest = [n for n in _snapshots(tmp_path) if SNAPSHOT.match(n)][-1]
    assert json.loads((tmp_path / "state/last-good.json").read_text())["name"] == newest
    # No plaintext scratch and no partial copy outlive the run after a kill.
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["last-good.json"]
    assert not [n for n in _snapshots(tmp_path) if n.endswith(".part")]


@pytest.mark.parametrize(("command", "at"), RESTORE_KILL_POINTS)
def test_restore_killed_at_each_step(etcd: str, tmp_path: Path, command: str, at: int) -> None:
    _settings(tmp_path, etcd)
    taken = _run(tmp_path, BACKUP)
    assert taken.returncode == 0, taken.stderr
    data_dir = tmp_path / "etcd"
    args = (str(data_dir), "kill", "http://127.0.0.1:2380")
    killed = _run(tmp_path, RESTORE, *args, kill=(command, at))
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    contents = sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []
    # Absent, empty, or the whole restored member (moved in by one rename).
    assert contents in ([], ["member"]), contents
    if contents:
        assert (data_dir / "member/snap/db").exists() and (data_dir / "member/wal").is_dir()
        # What the setup does before it tries again: kubeadm reset empties the data directory.
        shutil.rmtree(data_dir)
    again = _run(tmp_path, RESTORE, *args)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["member"]
    assert not (tmp_path / "etcd.restoring").exists()
