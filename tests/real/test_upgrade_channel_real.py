"""The upgrade channel's RBAC on a real API server (kubeadm's --authorization-mode=Node,RBAC):
a machine's kubelet, user system:node:<machine> in group system:nodes, may read and patch its
own upgrade ConfigMap and no other machine's.

The Node authorizer has no opinion on a ConfigMap that no pod of the node uses (kubernetes
plugin/pkg/auth/authorizer/node/node_authorizer.go, "no relationship found"), so RBAC decides:
the Role and RoleBinding the program registers (components/upgrade_channel.py), applied as
registered. The requests are the ones ignition/files/upgrade/stubernetes-upgrade makes with the
real kubectl, as the kubelet's user (impersonated by the admin: the API server authorizes an
impersonated request as that user, Kubernetes docs "User impersonation").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from control_plane.cluster import ControlPlane, running_control_plane
from control_plane.program_output import ProgramOutput, render_program

from ignition.upgrade import upgrade_configmap

pytestmark = pytest.mark.real

SEED = "control-plane-tests"
# The node script's query of the ask (stubernetes-upgrade main).
ASK_QUERY = (
    'jsonpath={.data.release}{"|"}{.data.attempt}{"|"}{.data.kubeadm_upgrade}{"|"}{.data.binaries}'
)


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(example_values, seed=SEED)


@pytest.fixture(scope="module")
def plane(
    output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_control_plane(output, tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@pytest.fixture(scope="module")
def channels(plane: ControlPlane, output: ProgramOutput) -> list[dict[str, Any]]:
    """Every machine's upgrade ConfigMap, Role and RoleBinding, applied as registered."""
    objects = [
        manifest
        for name, manifest in [*output.configmaps.items(), *output.rbac.items()]
        if name.partition("/")[0].endswith("-upgrade-channel")
    ]
    assert len(objects) == 9  # three machines, three objects each
    plane.apply(objects)
    return objects


def as_node(plane: ControlPlane, machine: str, *args: str) -> Any:
    return plane.kubectl(
        f"--as=system:node:{machine}",
        "--as-group=system:nodes",
        "--as-group=system:authenticated",
        "-n",
        "kube-system",
        *args,
        check=False,
    )


def test_a_kubelet_reads_and_patches_its_own_ask_and_no_other(
    plane: ControlPlane, channels: list[dict[str, Any]]
) -> None:
    ask = {"release": "1.36.4", "attempt": "a1", "kubeadm_upgrade": "node", "binaries": "x"}
    plane.kubectl(
        "-n", "kube-system", "patch", "configmap", upgrade_configmap("w1"),
        "--type", "merge", "-p", json.dumps({"data": ask}),
    )  # fmt: skip
    read = as_node(plane, "w1", "get", "configmap", upgrade_configmap("w1"), "-o", ASK_QUERY)
    assert (read.returncode, read.stdout) == (0, "1.36.4|a1|node|x"), read.stderr
    report = json.dumps({"data": {"state": "done", "error": "", "version": "1.36.4"}})
    patched = as_node(
        plane, "w1", "patch", "configmap", upgrade_configmap("w1"), "--type", "merge", "-p", report
    )
    assert patched.returncode == 0, patched.stderr
    # Another machine's ask: neither read nor written.
    other = as_node(plane, "w2", "get", "configmap", upgrade_configmap("w1"))
    assert other.returncode == 1 and "Forbidden" in other.stderr
    other = as_node(
        plane, "w2", "patch", "configmap", upgrade_configmap("w1"), "--type", "merge", "-p", report
    )
    assert other.returncode == 1 and "Forbidden" in other.stderr
    # Nor any other ConfigMap of kube-system (kubeadm's own, say).
    kubeadm = as_node(
        plane, "w1", "patch", "configmap", "kubeadm-config", "--type", "merge", "-p", report
    )
    assert kubeadm.returncode == 1 and "Forbidden" in kubeadm.stderr
