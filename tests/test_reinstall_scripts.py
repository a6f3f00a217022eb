"""The operator-side reinstall steps that talk to the cluster, against a stand-in kubectl.

network-boot-once has its own tests: tests/test_reinstall_power.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from real_tools import shellcheck
from repo_paths import REPO

SCRIPTS = REPO / "components/scripts"
CREDENTIALS = "fake-admin-credentials"
PASSWORD = 'hunter2 "quoted" \\ $HOME'

RECORDING_TOOL = """#!/bin/bash
# Records argv, the environment variable the real tool would read, and its standard input.
{ printf 'argv=%s\\n' "$*"; printf 'IPMI_PASSWORD=%s\\n' "${IPMI_PASSWORD:-}";
  if [[ $(basename "$0") == curl ]]; then printf 'stdin=%s\\n' "$(cat)"; fi; } >>"$TOOL_LOG"
"""


def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec python3 {REPO / "tests/fake_kubectl.py"} "$@"\n')
    for tool in ("ipmitool", "curl"):
        (bin_dir / tool).write_text(RECORDING_TOOL)
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    return bin_dir


def run(
    tmp_path: Path, script: str, env: dict[str, str], state: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    cluster = tmp_path / "cluster"
    cluster.mkdir(exist_ok=True)
    if state is not None:
        (cluster / "state.json").write_text(json.dumps(state))
    bin_dir = tmp_path / "bin" if (tmp_path / "bin").exists() else tools(tmp_path)
    full_env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_CLUSTER": str(cluster),
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


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "cluster/calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_scripts_are_shellcheck_clean() -> None:
    scripts = [p for p in SCRIPTS.iterdir() if p.is_file()]
    assert len(scripts) == 5
    assert shellcheck(scripts, cwd=REPO) == ""


# --- clean-before-rejoin ----------------------------------------------------------------------

CLEAN_ENV = {"MACHINE": "w1", "ROLE": "worker", "CONTROLLERS": "c1 c2 c3"}


@pytest.mark.parametrize("api", ["up", "down"])
def test_first_install_has_nothing_to_clean(tmp_path: Path, api: str) -> None:
    result = run(tmp_path, "clean-before-rejoin", CLEAN_ENV, {"api": api, "nodes": {}})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "first-install"


def test_worker_reinstall_deletes_its_old_node(tmp_path: Path) -> None:
    nodes = {"w1": {"bootID": "old-boot", "ready": "False"}, "w2": {"bootID": "b", "ready": "True"}}
    result = run(tmp_path, "clean-before-rejoin", CLEAN_ENV, {"api": "up", "nodes": nodes})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "old-boot-id=old-boot"
    assert set(state_of(tmp_path)["nodes"]) == {"w2"}
    for call in calls(tmp_path):
        assert call["kubeconfig_mode"] == "0o600"
        assert CREDENTIALS not in " ".join(call["args"])


def test_controller_reinstall_removes_its_etcd_member_through_a_peer(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {"c2": {"bootID": "old", "ready": "True"}},
        "etcd": ["c1", "c2", "c3"],
        "etcd_down": ["c1"],  # the first peer does not answer; the next one does
    }
    env = {**CLEAN_ENV, "MACHINE": "c2", "ROLE": "controller"}
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == 0, result.stderr
    assert "removed etcd member 0000000000000002 (c2) through c3" in result.stdout
    assert state_of(tmp_path)["etcd"] == ["c1", "c3"]
    assert "c2" not in state_of(tmp_path)["nodes"]


def test_controller_reinstall_fails_when_no_peer_etcd_answers(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {"c2": {"bootID": "old", "ready": "True"}},
        "etcd": ["c1", "c2"],
        "etcd_down": ["c1"],
    }
    env = {**CLEAN_ENV, "MACHINE": "c2", "ROLE": "controller", "CONTROLLERS": "c1 c2"}
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == 1
    assert "still there" in result.stderr
    assert "c2" in state_of(tmp_path)["nodes"]  # nothing deleted


@pytest.mark.parametrize(("allow", "status"), [("false", 1), ("true", 0)])
def test_only_controller_is_refused_unless_a_rebuild_is_allowed(
    tmp_path: Path, allow: str, status: int
) -> None:
    state = {"api": "up", "nodes": {"c1": {"bootID": "old", "ready": "True"}}, "etcd": ["c1"]}
    env = {
        "MACHINE": "c1",
        "ROLE": "controller",
        "CONTROLLERS": "c1",
        "ALLOW_CLUSTER_REBUILD": allow,
    }
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == status
    if status:
        assert "refusing to reinstall c1: it is the only controller" in result.stderr
        assert "c1" in state_of(tmp_path)["nodes"]
    else:
        assert "c1" not in state_of(tmp_path)["nodes"]


# --- wait-for-rejoin ---------------------------------------------------------------------------

WAIT_ENV = {"MACHINE": "w1", "TIMEOUT_SECONDS": "5", "POLL_SECONDS": "1"}


def test_first_install_does_not_wait(tmp_path: Path) -> None:
    env = {**WAIT_ENV, "CLEAN_OUTPUT": "no Node w1 in the cluster: nothing to clean\nfirst-install"}
    result = run(tmp_path, "wait-for-rejoin", env, {"api": "down", "nodes": {}})
    assert result.returncode == 0
    assert "first install" in result.stdout


def test_waits_for_a_new_boot_that_is_ready(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {},
        "rejoin_after": 2,
        "rejoin_as": {"bootID": "new-boot", "ready": "True"},
    }
    env = {**WAIT_ENV, "CLEAN_OUTPUT": "deleted the old Node w1\nold-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("waiting for w1") and "not registered yet" in lines[0]
    assert lines[-1] == "w1 rejoined: Ready, boot new-boot (was old-boot)"


def test_the_old_boot_does_not_count_and_the_wait_is_bounded(tmp_path: Path) -> None:
    state = {"api": "up", "nodes": {"w1": {"bootID": "old-boot", "ready": "True"}}}
    env = {**WAIT_ENV, "TIMEOUT_SECONDS": "2", "CLEAN_OUTPUT": "old-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 1
    assert "w1 did not rejoin within 2s" in result.stderr
    assert "/var/lib/stubernetes/status" in result.stderr
