"""The scripts of the etcd backups and of the virtual IP's health check pass Debian's
shellcheck as the machine would run them (their runs against real etcd, kube-apiserver,
keepalived and S3 are in tests/real/test_etcd_backup.py and test_vip_failover.py)."""

from __future__ import annotations

from pathlib import Path

from real_tools import shellcheck

from ignition.assets import FILES

BACKUP_DIR = Path(str(FILES / "backup"))
SCRIPTS = [
    *(
        BACKUP_DIR / name
        for name in (
            "etcd-backup",
            "etcd-restore",
            "etcd-tool",
            "restore-before-init",
            "backup-lib.sh",
        )
    ),
    Path(str(FILES / "vip" / "check-apiserver")),
]


def test_the_scripts_pass_shellcheck() -> None:
    assert shellcheck(SCRIPTS, cwd=BACKUP_DIR) == ""


def test_the_scripts_are_executable() -> None:
    for script in SCRIPTS:
        if script.suffix != ".sh":
            assert script.stat().st_mode & 0o111, script
