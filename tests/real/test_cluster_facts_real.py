"""components/scripts/cluster-facts, unmodified, against the real API server at the pinned
release, with the program's own admin kubeconfig and the real kubectl: what it reads is what
the program's refusals and its backups line (stackconfig/cluster_facts.py) are made from.

The Node is made by hand (no kubelet runs here) and its status patched through the status
subresource, as a kubelet posts it (kubernetes pkg/kubelet/kubelet_node_status.go); the upgrade
ConfigMaps are the program's own, asked as components/scripts/upgrade-machine asks; the backup's
ConfigMap is written as ignition/files/backup/etcd-backup writes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_plane.cluster import ControlPlane, kubectl_binary, running_control_plane
from control_plane.program_output import ProgramOutput, render_program
from repo_paths import REPO
from test_cluster_facts import SNAPSHOT as LAST_GOOD

from ignition.upgrade import upgrade_configmap
from stackconfig.cluster_facts import ClusterFacts, UpgradeAsk, parse_cluster_facts

pytestmark = pytest.mark.real

SCRIPT = REPO / "components" / "scripts" / "cluster-facts"


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(example_values, seed="cluster-facts")


@pytest.fixture(scope="module")
def plane(
    output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_control_plane(output, tmp_path_factory.mktemp("cluster-facts")) as plane:
        channels = [
            manifest
            for name, manifest in output.configmaps.items()
            if name.partition("/")[0].endswith("-upgrade-channel")
        ]
        assert channels
        plane.apply(channels)
        yield plane


def facts(plane: ControlPlane, kubeconfig: str, wrapped: bool = True) -> tuple[str, float]:
    env = {
        **os.environ,
        "KUBECONFIG_CONTENT": kubeconfig,
        "PATH": f"{kubectl_binary().parent}:{os.environ['PATH']}",
    }
    argv = ["bash", str(SCRIPT)]
    started = time.monotonic()
    done = subprocess.run(
        plane.wrap(argv) if wrapped else argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, time.monotonic() - started


def test_it_reads_kubelets_asks_and_the_last_snapshot(
    plane: ControlPlane, output: ProgramOutput
) -> None:
    read, _ = facts(plane, output.admin_kubeconfig)
    assert parse_cluster_facts(read) == ClusterFacts(reachable=True)  # nothing to tell yet

    plane.kubectl(
        "create", "-f", "-", input_text=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"}}
        ),
    )  # fmt: skip
    plane.kubectl(
        "patch", "node", "w1", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"nodeInfo": {"kubeletVersion": "v1.36.4"}}}),
    )  # fmt: skip
    plane.kubectl(
        "-n", "kube-system", "patch", "configmap", upgrade_configmap("w1"), "--type=merge",
        "-p", json.dumps({"data": {"release": "1.36.4", "state": "kubeadm-installed"}}),
    )  # fmt: skip
    plane.kubectl(
        "-n", "kube-system", "create", "configmap", "stubernetes-etcd-backup",
        f"--from-literal=last-good.json={json.dumps(LAST_GOOD, indent=2)}",
    )  # fmt: skip
    read, _ = facts(plane, output.admin_kubeconfig)
    assert parse_cluster_facts(read) == ClusterFacts(
        reachable=True,
        kubelets={"w1": "1.36.4"},
        upgrades={"w1": UpgradeAsk("1.36.4", "kubeadm-installed")},
        last_snapshot=LAST_GOOD,
    )


def test_a_cluster_that_does_not_answer_is_said_after_one_timeout(
    plane: ControlPlane, output: ProgramOutput, tmp_path: Path
) -> None:
    # The program's kubeconfig with a server nothing listens on, outside the plane's namespace.
    unreachable = output.admin_kubeconfig.replace(plane.server, "https://127.0.0.1:9")
    assert unreachable != output.admin_kubeconfig
    read, seconds = facts(plane, unreachable, wrapped=False)
    parsed = parse_cluster_facts(read)
    assert parsed is not None and not parsed.reachable
    assert "127.0.0.1:9" in parsed.error and "refused" in parsed.error
    assert seconds < 10
