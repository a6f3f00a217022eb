"""Run the real checkers; any output at all counts as a failure, since several only warn."""

from __future__ import annotations

import subprocess
from pathlib import Path


def quiet_run(args: list[str], cwd: Path | None = None) -> str:
    """Run a checker; return '' when it exited 0 and printed nothing, else what it said."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 and not output:
        output = f"exited {result.returncode}"
    return output


def ignition_validate(config: bytes, workdir: Path) -> str:
    path = workdir / "validate.ign"
    path.write_bytes(config)
    return quiet_run(["ignition-validate", str(path)])


def systemd_verify(root: Path, unit_path: str) -> str:
    return quiet_run(["systemd-analyze", "verify", f"--root={root}", unit_path])


def shellcheck(scripts: list[Path], cwd: Path) -> str:
    return quiet_run(["shellcheck", "-x", *map(str, scripts)], cwd=cwd)


def visudo_check(path: Path) -> str:
    result = subprocess.run(
        ["visudo", "-cf", str(path)], capture_output=True, text=True, check=False
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip()
