"""The readiness gate script, against a stand-in kubectl that plays a cluster coming up.

The real kubectl runs the gates against a real control plane with kwok Nodes in
tests/real/test_control_plane_real.py; this stand-in stays for what a real cluster does not do on
cue: an API server that does not answer yet, Nodes that appear and turn Ready poll by poll.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from real_tools import shellcheck
from repo_paths import REPO

SCRIPT = REPO / "components/scripts/wait-for-nodes"

# Answers `kubectl get nodes` from a script of states: one file per poll, the last one repeats.
# `kubectl get configmaps` (the machines' status reports) answers the poll's reports-NN file as
# kubectl prints the gate's JSONPath (one "name|phase|state|attempts|updated|error" line per
# ConfigMap), or nothing when the test gives no reports.
FAKE_KUBECTL = """#!/bin/bash
state_dir=$FAKE_CLUSTER
kubeconfig=$2
printf '%s\n' "$*" >>"$state_dir/argv"
stat -c '%a %n' "$kubeconfig" >>"$state_dir/kubeconfig-files"
grep -q "fake-admin-credentials" "$kubeconfig" || { echo "no kubeconfig" >&2; exit 1; }
if [[ " $* " == *" get configmaps "* ]]; then
    count=$(cat "$state_dir/polls")
    reports=("$state_dir"/reports-*)
    [[ -e ${reports[0]} ]] || exit 0
    index=$((count - 1 < ${#reports[@]} ? count - 1 : ${#reports[@]} - 1))
    cat "${reports[$index]}"
    exit 0
fi
count=$(cat "$state_dir/polls" 2>/dev/null || echo 0)
echo $((count + 1)) >"$state_dir/polls"
states=("$state_dir"/state-*)
index=$((count < ${#states[@]} ? count : ${#states[@]} - 1))
state=${states[$index]}
if [[ $(head -n 1 "$state") == unreachable ]]; then
    echo "Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused" >&2
    exit 1
fi
cat "$state"
"""


def run_gate(
    tmp_path: Path,
    condition: str,
    nodes: str,
    states: list[str],
    timeout: int = 3,
    reports: list[str] | None = None,
    poll: int = 1,
) -> subprocess.CompletedProcess[str]:
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    for index, state in enumerate(states):
        (cluster / f"state-{index:02d}").write_text(state)
    for index, report in enumerate(reports or []):
        (cluster / f"reports-{index:02d}").write_text(report)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_CLUSTER": str(cluster),
        "KUBECONFIG_CONTENT": "users: [{user: {token: fake-admin-credentials}}]",
        "NODES": nodes,
        "TIMEOUT_SECONDS": str(timeout),
        "POLL_SECONDS": str(poll),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), condition], env=env, capture_output=True, text=True, timeout=30
    )


def test_gate_script_is_shellcheck_clean() -> None:
    assert shellcheck([SCRIPT], cwd=REPO) == ""


def test_registered_passes_once_every_machine_is_a_node(tmp_path: Path) -> None:
    result = run_gate(
        tmp_path,
        "registered",
        "c1 w1 w2",
        ["unreachable", "c1 False\n", "c1 False\nw1 \nw2 False\n"],
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "the API server does not answer yet" in lines[0] and "connection refused" in lines[0]
    assert lines[1] == "gate registered: 1/3 done; not registered as Nodes: w1 w2"
    assert lines[-1] == "gate registered: passed (3 machines)"


# What `kubectl get configmaps -o jsonpath=<status-reports.sh report_query>` prints for the
# machines' reports: name|phase|state|attempts|updated|last_error, a line each.
KUBEADM_ERROR = "phase kubeadm exited 1: [ERROR FileAvailable--etc-kubernetes-kubelet.conf]: exists"
REPORTS = (
    "stubernetes-status-c1|done|done|0|2026-12-02T14:01:00Z|\n"
    "stubernetes-status-w1|kubeadm|retrying|2|2026-12-02T14:03:10Z|" + KUBEADM_ERROR + "\n"
)


def test_ready_times_out_naming_the_laggards(tmp_path: Path) -> None:
    result = run_gate(tmp_path, "ready", "c1 w1 w2", ["c1 True\nw1 False\n"], timeout=2)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "gate ready: timed out after 2s; missing or not Ready: w1 w2",
        "  w1: last report: no report yet",
        "  w2: last report: no report yet",
    ]
    assert "gate ready: 1/3 done; missing or not Ready: w1 w2" in result.stdout


def test_each_poll_shows_what_the_pending_machines_last_reported(tmp_path: Path) -> None:
    later = REPORTS + "stubernetes-status-w2|node|running|0|2026-12-02T14:04:00Z|\n"
    result = run_gate(
        tmp_path,
        "registered",
        "c1 w1 w2",
        ["c1 False\n", "c1 False\n", "c1 False\nw1 False\nw2 False\n"],
        timeout=30,
        reports=[REPORTS, later],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "gate registered: 1/3 done; not registered as Nodes: w1 w2",
        f"  w1: phase kubeadm, attempt 2 failed, retrying; last error: {KUBEADM_ERROR}"
        " (reported 2026-12-02T14:03:10Z)",
        "  w2: no report yet",
        "gate registered: 1/3 done; not registered as Nodes: w1 w2",
        f"  w1: phase kubeadm, attempt 2 failed, retrying; last error: {KUBEADM_ERROR}"
        " (reported 2026-12-02T14:03:10Z)",
        "  w2: phase node, attempt 1 running (reported 2026-12-02T14:04:00Z)",
        "gate registered: passed (3 machines)",
    ]


def test_a_timeout_names_each_machine_with_its_last_phase_and_error(tmp_path: Path) -> None:
    failed = "stubernetes-status-w2|kubeadm|failed|40|2026-12-02T15:00:00Z|" + KUBEADM_ERROR
    result = run_gate(
        tmp_path, "ready", "c1 w1 w2", ["c1 True\n"], timeout=1, reports=[REPORTS + failed]
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"  w1: last report: phase kubeadm, attempt 2 failed, retrying; last error: {KUBEADM_ERROR}"
        " (reported 2026-12-02T14:03:10Z)",
        f"  w2: last report: phase kubeadm, failed for good after 40 attempts; last error: "
        f"{KUBEADM_ERROR} (reported 2026-12-02T15:00:00Z)",
    ]


def test_no_reports_are_asked_for_while_the_api_server_does_not_answer(tmp_path: Path) -> None:
    result = run_gate(
        tmp_path, "registered", "c1", ["unreachable", "c1 False\n"], timeout=30, reports=[REPORTS]
    )
    assert result.returncode == 0, result.stderr
    assert "  c1:" not in result.stdout
    argv = (tmp_path / "cluster/argv").read_text().splitlines()
    assert not any("configmaps" in line for line in argv)


def test_api_gate_waits_for_the_api_server_only(tmp_path: Path) -> None:
    result = run_gate(tmp_path, "api", "", ["unreachable", "unreachable", ""])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gate api: waiting; not answering: api-server; ")
    assert result.stdout.count("not answering") == 2
    assert lines[-1] == "gate api: the API server answers"


@pytest.mark.parametrize("condition", ["bogus", ""])
def test_unknown_condition_is_refused(tmp_path: Path, condition: str) -> None:
    assert run_gate(tmp_path, condition, "c1", ["c1 True\n"]).returncode != 0


def test_kubeconfig_never_reaches_the_command_line(tmp_path: Path) -> None:
    result = run_gate(tmp_path, "ready", "c1", ["c1 False\n", "c1 True\n"])
    assert result.returncode == 0
    argv = (tmp_path / "cluster/argv").read_text()
    assert "--kubeconfig" in argv and "fake-admin-credentials" not in argv
    files = (tmp_path / "cluster/kubeconfig-files").read_text().split()
    assert files[0] == "600"  # private to the operator
    assert not Path(files[1]).exists()  # and removed when the gate ends
