"""The operator-side reinstall steps that talk to the cluster: clean-before-rejoin and
wait-for-rejoin, run for real against the stand-in kubectl (tests/offline/fake_kubectl.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from real_tools import shellcheck
from repo_paths import REPO
from standin_tools import CREDENTIALS, SCRIPTS, STANDINS, calls, run, state_of


def steps(tmp_path: Path) -> list[str]:
    """The kubectl calls, in order, as the cluster saw them."""
    named = []
    for call in calls(tmp_path):
        args = call["args"]
        if "get" in args:
            named.append("get node")
        elif "drain" in args:
            named.append("drain")
        elif "delete" in args:
            named.append("delete node")
        elif "member" in args:
            named.append("etcd member " + args[args.index("member") + 1])
        else:
            named.append(" ".join(args))
    return named


def drain_flags(tmp_path: Path) -> list[str]:
    (call,) = [c["args"] for c in calls(tmp_path) if "drain" in c["args"]]
    flags: list[str] = call[call.index("drain") + 2 :]
    return flags


def test_scripts_are_shellcheck_clean() -> None:
    scripts = [p for p in SCRIPTS.iterdir() if p.is_file()]
    # Every operator-side script, whatever steps are added; these at least.
    assert {p.name for p in scripts} >= {
        "kubectl.sh",
        "wait-for-nodes",
        "clean-before-rejoin",
        "network-boot-once",
        "wait-for-rejoin",
        "install-clock",
        "status-reports.sh",
    }
    assert shellcheck(scripts, cwd=REPO) == ""


# --- clean-before-rejoin: is there anything to clean? -----------------------------------------

CLEAN_ENV = {"MACHINE": "w1", "ROLE": "worker", "CONTROLLERS": "c1 c2 c3"}
PEERS_ENV = {**CLEAN_ENV, "MACHINE": "c2", "ROLE": "controller"}
READY = {"bootID": "old-boot", "ready": "True"}


@pytest.mark.parametrize("installed_before", [None, "false"])
@pytest.mark.parametrize("api", ["up", "down", "forbidden"])
def test_a_machine_that_never_joined_is_a_first_install(
    tmp_path: Path, api: str, installed_before: str | None
) -> None:
    env = dict(CLEAN_ENV)
    if installed_before is not None:  # unset means false
        env["INSTALLED_BEFORE"] = installed_before
    result = run(tmp_path, "clean-before-rejoin", env, {"api": api, "nodes": {}})
    assert result.returncode == 0, result.stderr
    assert "never joined" in result.stdout
    assert result.stdout.splitlines()[-1] == "first-install"
    assert steps(tmp_path) == ["get node"]


# Any kubectl failure but the Node's own NotFound is an unanswered question: a refused connection,
# a Forbidden, or a NotFound that is not about the Node (a server that is not this cluster's API
# answers "Error from server (NotFound): the server could not find the requested resource";
# kubectl pkg/cmd/util/helpers.go StandardErrorMessage prints "Error from server (<reason>): ").
@pytest.mark.parametrize("api", ["down", "forbidden", "wrong-server"])
@pytest.mark.parametrize("env", [CLEAN_ENV, PEERS_ENV], ids=["worker", "controller"])
def test_a_machine_that_joined_before_is_not_reinstalled_while_the_api_does_not_answer(
    tmp_path: Path, api: str, env: dict[str, str]
) -> None:
    state = {"api": api, "nodes": {env["MACHINE"]: READY}, "etcd": ["c1", "c2", "c3"]}
    result = run(tmp_path, "clean-before-rejoin", {**env, "INSTALLED_BEFORE": "true"}, state)
    assert result.returncode == 1
    machine = env["MACHINE"]
    assert f"refusing to reinstall {machine}: the API server does not answer" in result.stderr
    assert "was in the cluster before" in result.stderr
    assert "must not survive because a question went unanswered" in result.stderr
    if env["ROLE"] == "controller":
        assert "Node and etcd member" in result.stderr
    assert "first-install" not in result.stdout and "old-boot-id" not in result.stdout
    assert steps(tmp_path) == ["get node"]


def test_a_machine_that_joined_before_but_has_no_node_waits_for_any_boot(tmp_path: Path) -> None:
    env = {**CLEAN_ENV, "INSTALLED_BEFORE": "true"}
    result = run(tmp_path, "clean-before-rejoin", env, {"api": "up", "nodes": {}})
    assert result.returncode == 0, result.stderr
    assert "no Node w1 in the cluster although it joined before" in result.stdout
    assert result.stdout.splitlines()[-1] == "old-boot-id="
    assert steps(tmp_path) == ["get node"]  # nothing to drain or delete


def test_a_controller_without_a_node_still_loses_its_stale_etcd_member(tmp_path: Path) -> None:
    # kubeadm join of a controller fails while its old etcd member is still there
    # (kinvolk/lokomotive#446, REFERENCE.md "kubeadm"), whether or not its Node object is.
    state = {"api": "up", "nodes": {}, "etcd": ["c1", "c2", "c3"]}
    result = run(tmp_path, "clean-before-rejoin", {**PEERS_ENV, "INSTALLED_BEFORE": "true"}, state)
    assert result.returncode == 0, result.stderr
    assert "removed etcd member 0000000000000002 (c2) through c1" in result.stdout
    assert state_of(tmp_path)["etcd"] == ["c1", "c3"]
    assert steps(tmp_path) == ["get node", "etcd member list", "etcd member remove"]
    assert result.stdout.splitlines()[-1] == "old-boot-id="


@pytest.mark.parametrize(("allow", "status"), [("true", 0), ("false", 1)])
def test_the_only_controller_unanswered_goes_on_only_as_a_rebuild(
    tmp_path: Path, allow: str, status: int
) -> None:
    env = {
        "MACHINE": "c1",
        "ROLE": "controller",
        "CONTROLLERS": "c1",
        "ALLOW_CLUSTER_REBUILD": allow,
        "INSTALLED_BEFORE": "true",
    }
    result = run(tmp_path, "clean-before-rejoin", env, {"api": "down", "nodes": {}})
    assert result.returncode == status
    if status:
        assert "the API server does not answer" in result.stderr
        assert "c1 is the only controller" in result.stderr
    else:
        assert "allowClusterRebuild" in result.stdout
        assert result.stdout.splitlines()[-1] == "first-install"


@pytest.mark.parametrize(
    ("name", "value"),
    [("INSTALLED_BEFORE", "yes"), ("DRAIN_TIMEOUT_SECONDS", "0"), ("DRAIN_TIMEOUT_SECONDS", "5m")],
)
def test_malformed_settings_are_refused_before_anything_is_asked(
    tmp_path: Path, name: str, value: str
) -> None:
    state = {"api": "up", "nodes": {"w1": READY}}
    result = run(tmp_path, "clean-before-rejoin", {**CLEAN_ENV, name: value}, state)
    assert result.returncode == 2
    assert name in result.stderr
    assert steps(tmp_path) == []


# --- clean-before-rejoin: drain, etcd member, Node --------------------------------------------


def pod(
    name: str, node: str = "w1", owner: str | None = "ReplicaSet", **more: Any
) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "node": node, "owner": owner, **more}


def test_worker_reinstall_drains_then_deletes_its_old_node(tmp_path: Path) -> None:
    nodes = {"w1": READY, "w2": {"bootID": "b", "ready": "True"}}
    pods = [
        pod("web-1", app="web"),
        pod("cache-1", app="cache", emptyDir=True),
        {**pod("kube-proxy-w1", owner="DaemonSet"), "namespace": "kube-system"},
        pod("web-2", node="w2", app="web"),
    ]
    # web-1's budget allows one disruption (3 healthy, 2 needed): the eviction is admitted.
    pdbs = [{"name": "web", "namespace": "default", "app": "web", "desiredHealthy": 2,
             "currentHealthy": 3}]  # fmt: skip
    state = {"api": "up", "nodes": nodes, "pods": pods, "pdbs": pdbs}
    result = run(tmp_path, "clean-before-rejoin", {**CLEAN_ENV, "INSTALLED_BEFORE": "true"}, state)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "old-boot-id=old-boot"
    assert steps(tmp_path) == ["get node", "drain", "delete node"]
    # kubectl 1.36 flags (kubernetes/kubectl pkg/cmd/drain/drain.go): DaemonSet pods are left to
    # their controller, emptyDir data goes with the pod; the timeout defaults to 600 s.
    assert drain_flags(tmp_path) == [
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=600s",
    ]
    after = state_of(tmp_path)
    assert set(after["nodes"]) == {"w2"}
    assert [p["name"] for p in after["pods"]] == ["kube-proxy-w1", "web-2"]
    assert "drained w1" in result.stdout
    assert "pod/web-1 evicted" in result.stderr  # kubectl's own progress, kept off stdout
    for call in calls(tmp_path):
        assert call["kubeconfig_mode"] == "0o600"
        assert CREDENTIALS not in " ".join(call["args"])


def test_the_drain_timeout_is_the_gate_setting(tmp_path: Path) -> None:
    state = {"api": "up", "nodes": {"w1": READY}, "pods": [pod("web-1")]}
    env = {**CLEAN_ENV, "DRAIN_TIMEOUT_SECONDS": "45"}
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == 0, result.stderr
    assert "--timeout=45s" in drain_flags(tmp_path)


def test_controller_reinstall_drains_then_removes_its_etcd_member_then_its_node(
    tmp_path: Path,
) -> None:
    state = {
        "api": "up",
        "nodes": {"c2": READY},
        "pods": [pod("coredns-1", node="c2"), {**pod("etcd-c2", node="c2", owner="Node")}],
        "etcd": ["c1", "c2", "c3"],
        "etcd_down": ["c1"],  # the first peer does not answer; the next one does
    }
    result = run(tmp_path, "clean-before-rejoin", {**PEERS_ENV, "INSTALLED_BEFORE": "true"}, state)
    assert result.returncode == 0, result.stderr
    assert "removed etcd member 0000000000000002 (c2) through c3" in result.stdout
    # The member is looked up (read-only) before the drain; the drain, the member's removal and
    # the Node's deletion follow in that order.
    assert steps(tmp_path) == [
        "get node",
        "etcd member list",
        "etcd member list",
        "drain",
        "etcd member remove",
        "delete node",
    ]
    after = state_of(tmp_path)
    assert after["etcd"] == ["c1", "c3"]
    assert "c2" not in after["nodes"]
    # A static pod's mirror cannot be evicted and stays (pkg/drain/filters.go mirrorPodFilter).
    assert [p["name"] for p in after["pods"]] == ["etcd-c2"]


# Evictions respect PodDisruptionBudgets: the Eviction API answers 429 while a budget allows no
# disruption (kubernetes pkg/registry/core/pod/storage/eviction.go checkAndDecrement), and
# kubectl retries every 5 s until --timeout, then names the pods still pending
# (kubernetes/kubectl pkg/drain/drain.go evictPods, pkg/cmd/drain/drain.go).
@pytest.mark.parametrize("env", [CLEAN_ENV, PEERS_ENV], ids=["worker", "controller"])
def test_a_drain_blocked_by_a_budget_fails_at_its_timeout_and_deletes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    machine = env["MACHINE"]
    pdbs = [{"name": "web", "namespace": "default", "app": "web", "desiredHealthy": 2,
             "currentHealthy": 2}]  # fmt: skip
    state = {
        "api": "up",
        "nodes": {machine: READY},
        "pods": [pod("web-1", node=machine, app="web"), pod("api-1", node=machine)],
        "pdbs": pdbs,
        "etcd": ["c1", "c2", "c3"],
    }
    result = run(tmp_path, "clean-before-rejoin", {**env, "DRAIN_TIMEOUT_SECONDS": "12"}, state)
    assert result.returncode == 1
    assert f"the drain of {machine} did not finish within 12s" in result.stderr
    assert "nothing was deleted (no Node" in result.stderr
    assert "and the Node stays cordoned" in result.stderr
    assert f"pods still on {machine}: web-1\n" in result.stderr
    assert "default/web-1: Cannot evict pod as it would violate the pod's disruption budget." in (
        result.stderr
    )
    assert "--disable-eviction" in result.stderr and f"kubectl uncordon {machine}" in result.stderr
    assert "old-boot-id" not in result.stdout
    after = state_of(tmp_path)
    assert after["nodes"][machine]["unschedulable"] is True
    assert after["etcd"] == ["c1", "c2", "c3"]
    assert [p["name"] for p in after["pods"]] == ["web-1"]  # api-1 was evicted all the same
    assert "delete node" not in steps(tmp_path)
    assert "etcd member remove" not in steps(tmp_path)


def test_a_pod_without_a_controller_fails_the_drain(tmp_path: Path) -> None:
    # kubectl drain refuses pods that declare no controller without --force (pkg/drain/filters.go
    # unreplicatedFilter): such a pod would be lost with the machine, which is the operator's call.
    state = {"api": "up", "nodes": {"w1": READY}, "pods": [pod("scratch", owner=None)]}
    result = run(tmp_path, "clean-before-rejoin", CLEAN_ENV, state)
    assert result.returncode == 1
    assert "the drain of w1 failed (error: cannot delete Pods that declare no controller" in (
        result.stderr
    )
    assert "w1" in state_of(tmp_path)["nodes"]
    assert "delete node" not in steps(tmp_path)


# A dead machine's Node is not Ready: no kubelet finishes its pods' termination, so they stay
# Terminating, and kubectl waits for them until --timeout unless --skip-wait-for-delete-timeout
# lets it stop waiting for a pod deleted longer ago than that (kubernetes/kubectl
# pkg/drain/filters.go shouldSkipPod, pkg/drain/drain.go waitForDelete). A pod that is not Ready
# is still evicted when its budget has enough healthy pods elsewhere (eviction.go), and one
# already terminating is deleted without a budget check (eviction.go canIgnorePDB).
@pytest.mark.parametrize("ready", ["Unknown", "False"])
def test_a_dead_machine_is_drained_without_waiting_for_its_pods(tmp_path: Path, ready: str) -> None:
    pdbs = [{"name": "web", "namespace": "default", "app": "web", "desiredHealthy": 2,
             "currentHealthy": 2}]  # fmt: skip
    state = {
        "api": "up",
        "nodes": {"w1": {"bootID": "old-boot", "ready": ready}},
        "pods": [
            pod("web-1", app="web"),  # running, grace period 30 s
            pod("db-0", owner="StatefulSet", deletion=-400),  # evicted by the taint manager
        ],
        "pdbs": pdbs,
    }
    result = run(
        tmp_path, "clean-before-rejoin", {**CLEAN_ENV, "DRAIN_TIMEOUT_SECONDS": "60"}, state
    )
    assert result.returncode == 0, result.stderr
    assert f"w1 is not Ready (Ready={ready})" in result.stdout
    assert "--skip-wait-for-delete-timeout=1" in drain_flags(tmp_path)
    assert steps(tmp_path) == ["get node", "drain", "delete node"]
    assert 'pod "web-1" has DeletionTimestamp older than 1 seconds, skipping' in result.stderr
    assert result.stdout.splitlines()[-1] == "old-boot-id=old-boot"


def test_the_standin_drain_of_a_dead_machine_waits_without_the_skip(tmp_path: Path) -> None:
    """Why the flag: without it, kubectl waits for a dead machine's pods until its timeout."""
    state = {
        "api": "up",
        "nodes": {"w1": {"bootID": "b", "ready": "Unknown"}},
        "pods": [pod("web-1")],
    }
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster/state.json").write_text(json.dumps(state))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    result = subprocess.run(
        ["python3", str(STANDINS["kubectl"]), "--kubeconfig", str(kubeconfig), "drain", "w1",
         "--ignore-daemonsets", "--timeout=60s"],
        env={**os.environ, "FAKE_CLUSTER": str(tmp_path / "cluster")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert 'error when waiting for pod "web-1" in namespace "default" to terminate: context ' in (
        result.stderr
    )
    assert (
        'There are pending pods in node "w1"' in result.stderr and "\npod/web-1\n" in result.stderr
    )


def test_no_peer_etcd_answering_refuses_before_the_drain(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {"c2": READY},
        "pods": [pod("coredns-1", node="c2")],
        "etcd": ["c1", "c2"],
        "etcd_down": ["c1"],
    }
    env = {**PEERS_ENV, "CONTROLLERS": "c1 c2"}
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == 1
    assert "still there" in result.stderr and "Nothing was drained or deleted" in result.stderr
    assert steps(tmp_path) == ["get node", "etcd member list"]
    assert "c2" in state_of(tmp_path)["nodes"]
    assert not state_of(tmp_path)["nodes"]["c2"].get("unschedulable")


@pytest.mark.parametrize(("allow", "status"), [("false", 1), ("true", 0)])
def test_only_controller_is_refused_unless_a_rebuild_is_allowed(
    tmp_path: Path, allow: str, status: int
) -> None:
    state = {
        "api": "up",
        "nodes": {"c1": READY},
        "pods": [pod("coredns-1", node="c1")],
        "etcd": ["c1"],
    }
    env = {
        "MACHINE": "c1",
        "ROLE": "controller",
        "CONTROLLERS": "c1",
        "ALLOW_CLUSTER_REBUILD": allow,
        "INSTALLED_BEFORE": "true",
    }
    result = run(tmp_path, "clean-before-rejoin", env, state)
    assert result.returncode == status
    if status:
        assert "refusing to reinstall c1: it is the only controller" in result.stderr
        assert "c1" in state_of(tmp_path)["nodes"]
        assert steps(tmp_path) == ["get node"]  # refused before any drain
    else:
        # The whole cluster starts afresh: nothing to drain for, and no budget to keep.
        assert steps(tmp_path) == ["get node", "delete node"]
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


def test_a_reinstall_without_an_old_node_waits_for_any_ready_boot(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {"w1": {"bootID": "new-boot", "ready": "False"}},
        "rejoin_after": 2,
        "rejoin_as": {"bootID": "new-boot", "ready": "True"},
    }
    env = {**WAIT_ENV, "CLEAN_OUTPUT": "no Node w1 ... although it joined before\nold-boot-id="}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "registered, Ready=False, boot new-boot" in lines[0]
    assert lines[-1] == "w1 rejoined: Ready, boot new-boot (was no Node)"


def test_the_old_boot_does_not_count_and_the_wait_is_bounded(tmp_path: Path) -> None:
    state = {"api": "up", "nodes": {"w1": READY}}
    env = {**WAIT_ENV, "TIMEOUT_SECONDS": "2", "CLEAN_OUTPUT": "old-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 1
    assert "w1 did not rejoin within 2s" in result.stderr
    assert "/var/lib/stubernetes/status" in result.stderr


def _report(machine: str, **data: str) -> dict[str, Any]:
    """A machine's status ConfigMap as the cluster holds it once the machine has reported
    (components/status_report.py labels it; the machine writes its data)."""
    return {
        f"stubernetes-status-{machine}": {
            "labels": {
                "app.kubernetes.io/managed-by": "stubernetes",
                "stubernetes.dev/status-of": machine,
            },
            "data": data,
        }
    }


def test_the_rejoin_wait_shows_the_machines_report_at_every_poll(tmp_path: Path) -> None:
    state = {
        "api": "up",
        "nodes": {},
        "rejoin_after": 2,
        "rejoin_as": {"bootID": "new-boot", "ready": "True"},
        "configmaps": {
            **_report(
                "w1",
                phase="node",
                state="rebooting",
                attempts="0",
                boots="1",
                updated="2026-12-02T14:00:00Z",
                boot_id="new-boot",
            ),
            # Another machine's report is not this wait's business.
            **_report(
                "w2",
                phase="kubeadm",
                state="failed",
                attempts="40",
                updated="2026-12-02T13:00:00Z",
                last_error="nope",
            ),
        },
    }
    env = {**WAIT_ENV, "CLEAN_OUTPUT": "old-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines[:2]:
        assert line.endswith("; phase node, rebooting (reported 2026-12-02T14:00:00Z)"), line
        assert "nope" not in line
    assert lines[-1] == "w1 rejoined: Ready, boot new-boot (was old-boot)"


def test_the_rejoin_timeout_says_what_the_machine_last_reported(tmp_path: Path) -> None:
    error = "phase kubeadm exited 1: couldn't validate the identity of the API Server | really"
    state = {
        "api": "up",
        "nodes": {"w1": READY},
        "configmaps": _report(
            "w1",
            phase="kubeadm",
            state="retrying",
            attempts="3",
            updated="2026-12-02T14:10:00Z",
            last_error=error,
        ),
    }
    env = {**WAIT_ENV, "TIMEOUT_SECONDS": "1", "CLEAN_OUTPUT": "old-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 1
    assert (
        f"last report: phase kubeadm, attempt 3 failed, retrying; last error: {error} "
        "(reported 2026-12-02T14:10:00Z); on its console" in result.stderr
    )


def test_a_machine_without_a_report_says_so(tmp_path: Path) -> None:
    state = {"api": "up", "nodes": {"w1": READY}, "configmaps": {}}
    env = {**WAIT_ENV, "TIMEOUT_SECONDS": "1", "CLEAN_OUTPUT": "old-boot-id=old-boot"}
    result = run(tmp_path, "wait-for-rejoin", env, state)
    assert result.returncode == 1
    assert "last report: no report yet" in result.stderr
    asked = [c["args"] for c in calls(tmp_path) if "configmaps" in c["args"]]
    assert asked and all(
        a[a.index("-l") + 1] == "stubernetes.dev/status-of" and a[3:5] == ["-n", "kube-system"]
        for a in asked
    )
