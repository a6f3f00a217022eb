"""components/scripts/upgrade-machine, a machine's upgrade step, run for real against a stand-in
kubectl (upgrade_kubectl.py: one Node, its upgrade ConfigMap, the machine answering there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from real_tools import shellcheck
from repo_paths import REPO

SCRIPT = REPO / "components/scripts/upgrade-machine"
STANDIN = Path(__file__).resolve().with_name("upgrade_kubectl.py")
BINARIES = "kubeadm https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm " + "ab" * 32
ENV = {
    "KUBECONFIG_CONTENT": "apiVersion: v1\nkind: Config\n",
    "MACHINE": "w1",
    "RELEASE": "1.36.4",
    "KUBEADM_UPGRADE": "node",
    "BINARIES": BINARIES,
    "DRAIN_TIMEOUT_SECONDS": "600",
    "TIMEOUT_SECONDS": "3600",
    "POLL_SECONDS": "0",
}


def run(tmp_path: Path, state: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} "$@"\n')
    kubectl.chmod(0o755)
    node = {"kubeletVersion": "v1.35.8", "bootID": "b1", "ready": "True", "unschedulable": False}
    (tmp_path / "state.json").write_text(json.dumps({"node": node, "configmap": {}, **state}))
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={
            **ENV,
            **env,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "UPGRADE_CLUSTER": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def state_of(tmp_path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((tmp_path / "state.json").read_text())
    return state


def verbs(tmp_path: Path) -> list[str]:
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    return [" ".join(a for a in c if not a.startswith("--"))[:20].split(" -")[0] for c in calls]


def test_the_script_is_shellcheck_clean() -> None:
    assert shellcheck([SCRIPT], cwd=REPO) == ""


def node(version: str, unschedulable: bool = False) -> dict[str, Any]:
    return {
        "kubeletVersion": version,
        "bootID": "b1",
        "ready": "True",
        "unschedulable": unschedulable,
    }


def test_a_machine_without_a_node_yet_is_left_to_its_ignition(tmp_path: Path) -> None:
    result = run(tmp_path, {"answer": "done", "node": None})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w1: no Node yet; it joins at 1.36.4, which its Ignition names\n"
    assert state_of(tmp_path)["configmap"] == {}


def test_a_kubelet_at_the_release_is_left_alone_even_when_cordoned(tmp_path: Path) -> None:
    """A new install, or an unchanged release: no drain; an operator's cordon stays."""
    result = run(tmp_path, {"answer": "done", "node": node("v1.36.4", unschedulable=True)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w1: its kubelet runs v1.36.4; nothing to upgrade\n"
    assert state_of(tmp_path)["node"]["unschedulable"] is True
    assert state_of(tmp_path)["configmap"] == {}


def test_a_newer_kubelet_is_never_downgraded(tmp_path: Path) -> None:
    result = run(tmp_path, {"answer": "done", "node": node("v1.36.5")})
    assert result.returncode == 1
    assert "w1: step upgrade: its kubelet runs v1.36.5, newer than 1.36.4" in result.stderr
    assert state_of(tmp_path)["configmap"] == {}


def test_a_node_without_a_kubelet_release_is_left_alone(tmp_path: Path) -> None:
    """kwok's simulated Nodes report kubeletVersion kwok-v0.8.0 (the real engine lab's): no
    kubelet to upgrade, no drain, nothing asked; neither "newer" nor "older" than a release."""
    result = run(tmp_path, {"answer": "done", "node": node("kwok-v0.8.0")})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "w1: its Node reports kubelet version 'kwok-v0.8.0', not a Kubernetes release: "
        "left alone\n"
    )
    assert state_of(tmp_path)["configmap"] == {}
    assert not state_of(tmp_path)["node"].get("unschedulable")


def test_drain_then_ask_then_wait_for_the_kubelet_then_uncordon(tmp_path: Path) -> None:
    result = run(tmp_path, {"answer": "done", "answer_after": 3})
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    drain = next(c for c in calls if "drain" in c)
    # kubeadm's drain, PodDisruptionBudgets respected (the Eviction API), bounded.
    assert drain[drain.index("drain") :] == [
        "drain",
        "w1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=600s",
    ]
    order = [next(v for v in ("drain", "patch", "uncordon") if v in c) for c in calls if
             {"drain", "patch", "uncordon"} & set(c)]  # fmt: skip
    assert order == ["drain", "patch", "uncordon"]
    state = state_of(tmp_path)
    ask = state["configmap"]
    assert (ask["release"], ask["kubeadm_upgrade"], ask["binaries"]) == ("1.36.4", "node", BINARIES)
    assert ask["attempt"]
    assert state["node"]["unschedulable"] is False
    assert result.stdout.splitlines()[-1] == "w1 upgraded from 1.35.8 to 1.36.4"


def test_a_machine_that_reports_a_failure_fails_the_step_naming_it(tmp_path: Path) -> None:
    state = {"answer": "failed", "error": "kubeadm upgrade node failed: boom"}
    result = run(tmp_path, state)
    assert result.returncode == 1
    assert (
        "w1: step upgrade to 1.36.4 failed on the machine: kubeadm upgrade node failed: boom."
        in result.stderr
    )
    # Left cordoned: nothing is scheduled onto a half-upgraded machine.
    assert state_of(tmp_path)["node"]["unschedulable"] is True


def test_a_machine_that_never_answers_times_out_with_its_last_report(tmp_path: Path) -> None:
    result = run(tmp_path, {"answer": "none"}, TIMEOUT_SECONDS="0")
    assert result.returncode == 1
    assert (
        "w1: step upgrade to 1.36.4 did not finish within 0s: kubelet v1.35.8, last reported "
        "state asked." in result.stderr
    )


def test_a_blocked_drain_asks_for_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, {"answer": "done", "drain_blocked": True})
    assert result.returncode == 1
    assert "the drain of w1 did not finish within 600s" in result.stderr
    assert state_of(tmp_path)["configmap"] == {}


def test_a_run_again_after_the_machine_finished_only_uncordons(tmp_path: Path) -> None:
    """The step failed after its ask (say, its wait timed out) and the machine finished later:
    the next run finds the kubelet at the release it asked for, and only uncordons."""
    state = {"node": node("v1.36.4", unschedulable=True), "configmap": {"release": "1.36.4"}}
    result = run(tmp_path, state)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w1: its kubelet runs v1.36.4; uncordoned\n"
    assert state_of(tmp_path)["node"]["unschedulable"] is False
