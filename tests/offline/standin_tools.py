"""Stand-ins on PATH for the operator-side scripts' tests: kubectl, ipmitool and curl.

Each stand-in beside this file (fake_kubectl.py, standin_ipmitool.py, standin_curl.py) models
the upstream behaviour it imitates and names it in its docstring; `run` runs a script from
components/scripts for real with them first on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from repo_paths import REPO

SCRIPTS = REPO / "components/scripts"
# The stand-ins live beside this file (the offline layer).
HERE = Path(__file__).resolve().parent
CREDENTIALS = "fake-admin-credentials"
PASSWORD = 'hunter2 "quoted" \\ $HOME'
STANDINS = {
    "kubectl": HERE / "fake_kubectl.py",
    "ipmitool": HERE / "standin_ipmitool.py",
    "curl": HERE / "standin_curl.py",
}


def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, standin in STANDINS.items():
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\nexec python3 {standin} "$@"\n')
        path.chmod(0o755)
    return bin_dir


def run(
    tmp_path: Path,
    script: str,
    env: dict[str, str],
    state: dict[str, Any] | None = None,
    bmc: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    cluster = tmp_path / "cluster"
    cluster.mkdir(exist_ok=True)
    if state is not None:
        (cluster / "state.json").write_text(json.dumps(state))
    if bmc is not None:
        (tmp_path / "bmc.json").write_text(json.dumps(bmc))
    bin_dir = tmp_path / "bin" if (tmp_path / "bin").exists() else tools(tmp_path)
    full_env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_CLUSTER": str(cluster),
        "BMC_STATE": str(tmp_path / "bmc.json"),
        "TOOL_LOG": str(tmp_path / "tools.log"),
        "KUBECONFIG_CONTENT": f"users: [{{user: {{token: {CREDENTIALS}}}}}]",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env=full_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def state_of(tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((tmp_path / "cluster/state.json").read_text())
    return result


def bmc_of(tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((tmp_path / "bmc.json").read_text())
    return result


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "cluster/calls.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def tool_log(tmp_path: Path, prefix: str) -> list[str]:
    return [
        line
        for line in (tmp_path / "tools.log").read_text().splitlines()
        if line.startswith(prefix)
    ]
