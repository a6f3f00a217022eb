"""components/scripts/remove-machine, the delete of a machine's membership step, run for real
against the stand-in kubectl (fake_kubectl.py: the drain modelled on kubectl 1.36, etcdctl
in a controller's etcd static pod, a removed member's etcd stopping itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from real_tools import shellcheck
from repo_paths import REPO
from standin_tools import CREDENTIALS, SCRIPTS, calls, run, state_of
from test_reinstall_scripts import READY, drain_flags, pod, steps

NOT_DONE = (
    "not done to {m}: its disk is not wiped and it keeps running what it has until you power it "
    "off or reinstall it"
)
WORKER = {"MACHINE": "w1", "ROLE": "worker", "CONTROLLERS": "c1 c2 c3"}
CONTROLLER = {**WORKER, "MACHINE": "c3", "ROLE": "controller"}


def cluster(**more: Any) -> dict[str, Any]:
    nodes = {name: dict(READY) for name in ("c1", "c2", "c3", "w1", "w2")}
    return {"api": "up", "nodes": nodes, "etcd": ["c1", "c2", "c3"], **more}


def test_the_script_is_shellcheck_clean() -> None:
    assert shellcheck([SCRIPTS / "remove-machine", SCRIPTS / "membership.sh"], cwd=REPO) == ""


def test_a_worker_is_drained_then_its_node_deleted(tmp_path: Path) -> None:
    pods = [pod("web-1", app="web"), {**pod("proxy-w1", owner="DaemonSet"), "namespace": "ks"}]
    pdbs = [{"name": "web", "namespace": "default", "app": "web", "desiredHealthy": 1,
             "currentHealthy": 2}]  # fmt: skip
    result = run(tmp_path, "remove-machine", WORKER, cluster(pods=pods, pdbs=pdbs))
    assert result.returncode == 0, result.stderr
    assert steps(tmp_path) == ["get node", "drain", "delete node"]
    assert drain_flags(tmp_path) == [
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=600s",
    ]
    after = state_of(tmp_path)
    assert "w1" not in after["nodes"] and "w2" in after["nodes"]
    assert [p["name"] for p in after["pods"]] == ["proxy-w1"]
    lines = result.stdout.splitlines()
    assert lines[-2] == "w1 left the cluster: drained and deleted its Node"
    assert lines[-1].startswith(NOT_DONE.format(m="w1"))
    for call in calls(tmp_path):
        assert call["kubeconfig_mode"] == "0o600"
        assert CREDENTIALS not in " ".join(call["args"])


def test_a_controller_is_drained_its_node_deleted_then_its_etcd_member_removed(
    tmp_path: Path,
) -> None:
    state = cluster(pods=[pod("coredns-1", node="c3")], etcd_down=["c1"])
    result = run(tmp_path, "remove-machine", CONTROLLER, state)
    assert result.returncode == 0, result.stderr
    # The member is looked up first (read-only; c1's etcd does not answer, c2's does); then the
    # drain, the Node's deletion and the member's removal, in that order.
    assert steps(tmp_path) == [
        "etcd member list",
        "etcd member list",
        "get node",
        "drain",
        "delete node",
        "etcd member remove",
    ]
    after = state_of(tmp_path)
    assert after["etcd"] == ["c1", "c2"] and "c3" not in after["nodes"]
    assert (
        "c3 left the cluster: drained and deleted its Node; removed its etcd member "
        "0000000000000003 through c2"
    ) in result.stdout
    assert result.stdout.splitlines()[-1].startswith(NOT_DONE.format(m="c3"))


def test_an_already_absent_node_is_fine(tmp_path: Path) -> None:
    state = cluster()
    del state["nodes"]["c3"]
    result = run(tmp_path, "remove-machine", CONTROLLER, state)
    assert result.returncode == 0, result.stderr
    assert steps(tmp_path) == ["etcd member list", "get node", "etcd member remove"]
    assert "c3 left the cluster: no Node c3 to drain or delete; removed its etcd member" in (
        result.stdout
    )
    assert state_of(tmp_path)["etcd"] == ["c1", "c2"]
    (tmp_path / "w").mkdir()
    worker = run(tmp_path / "w", "remove-machine", WORKER, {"api": "up", "nodes": {}})
    assert worker.returncode == 0, worker.stderr
    assert "w1 left the cluster: no Node w1 to drain or delete" in worker.stdout


@pytest.mark.parametrize("env", [WORKER, CONTROLLER], ids=["worker", "controller"])
def test_a_drain_timeout_fails_naming_the_machine_and_deletes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    machine = env["MACHINE"]
    pdbs = [{"name": "web", "namespace": "default", "app": "web", "desiredHealthy": 1,
             "currentHealthy": 1}]  # fmt: skip
    state = cluster(pods=[pod("web-1", node=machine, app="web")], pdbs=pdbs)
    result = run(tmp_path, "remove-machine", {**env, "DRAIN_TIMEOUT_SECONDS": "20"}, state)
    assert result.returncode == 1
    assert f"the drain of {machine} did not finish within 20s: nothing was deleted" in (
        result.stderr
    )
    assert f"pods still on {machine}: web-1" in result.stderr
    assert "then run pulumi up (or pulumi destroy) again" in result.stderr
    assert result.stdout.splitlines()[-1].startswith(NOT_DONE.format(m=machine))
    after = state_of(tmp_path)
    assert after["nodes"][machine]["unschedulable"] is True
    assert after["etcd"] == ["c1", "c2", "c3"]
    assert "delete node" not in steps(tmp_path) and "etcd member remove" not in steps(tmp_path)


@pytest.mark.parametrize("api", ["down", "forbidden"])
def test_an_api_server_that_does_not_answer_fails_before_anything(tmp_path: Path, api: str) -> None:
    result = run(tmp_path, "remove-machine", WORKER, cluster(api=api))
    assert result.returncode == 1
    assert "the API server does not answer" in result.stderr
    assert "nothing was done to w1, which is still in the cluster" in result.stderr
    assert steps(tmp_path) == ["get node"]


def test_the_only_controller_is_left_alone(tmp_path: Path) -> None:
    env = {"MACHINE": "c1", "ROLE": "controller", "CONTROLLERS": "c1"}
    result = run(tmp_path, "remove-machine", env, cluster(etcd=["c1"]))
    assert result.returncode == 0, result.stderr
    assert steps(tmp_path) == []
    assert "c1 is the last controller left: nothing was done to it" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(NOT_DONE.format(m="c1"))
    assert "c1" in state_of(tmp_path)["nodes"]


def test_a_whole_destroy_reaches_the_last_controller_last_and_leaves_it(tmp_path: Path) -> None:
    """The membership steps' deletes, one after the other as their dependencies order them:
    the workers, then c3, c2 and c1, each with the environment of the last update."""
    state = cluster(pods=[pod("web-1", node="w1"), pod("web-2", node="w2")])
    run(tmp_path, "remove-machine", WORKER, state)
    for name in ("w2", "c3", "c2", "c1"):
        role = "controller" if name.startswith("c") else "worker"
        env = {**WORKER, "MACHINE": name, "ROLE": role}
        result = run(tmp_path, "remove-machine", env)
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.splitlines()[-1].startswith(NOT_DONE.format(m=name))
    after = state_of(tmp_path)
    assert set(after["nodes"]) == {"c1"}
    assert after["etcd"] == ["c1"]
    # c1 looked for a peer (c2's and c3's etcd stopped when they were removed), then asked its
    # own etcd, which lists no member but itself.
    assert "c1 is the last controller left: nothing was done to it" in result.stdout
    assert "etcd on c2 does not answer" in result.stdout


def test_a_controller_whose_peers_do_not_answer_is_not_taken_for_the_last(
    tmp_path: Path,
) -> None:
    state = cluster(etcd_down=["c1", "c2"])
    result = run(tmp_path, "remove-machine", CONTROLLER, state)
    assert result.returncode == 1
    assert "no other controller's etcd answered" in result.stderr
    assert "nothing was drained or deleted" in result.stderr
    assert steps(tmp_path) == ["etcd member list"] * 3
    assert state_of(tmp_path)["etcd"] == ["c1", "c2", "c3"]
    assert "c3" in state_of(tmp_path)["nodes"]


def test_a_malformed_drain_timeout_is_refused_before_anything(tmp_path: Path) -> None:
    result = run(tmp_path, "remove-machine", {**WORKER, "DRAIN_TIMEOUT_SECONDS": "0"}, cluster())
    assert result.returncode == 2
    assert "DRAIN_TIMEOUT_SECONDS" in result.stderr
    assert steps(tmp_path) == []


def test_a_second_run_after_a_complete_one_finds_nothing_left_and_succeeds(tmp_path: Path) -> None:
    """A retried `pulumi up` or destroy runs the delete again: nothing left is fine."""
    first = run(tmp_path, "remove-machine", CONTROLLER, cluster())
    assert first.returncode == 0, first.stderr
    again = run(tmp_path, "remove-machine", CONTROLLER)
    assert again.returncode == 0, again.stderr
    assert (
        "c3 left the cluster: no Node c3 to drain or delete; no etcd member named c3 (checked "
        "through c1)"
    ) in again.stdout
    assert state_of(tmp_path)["etcd"] == ["c1", "c2"]
