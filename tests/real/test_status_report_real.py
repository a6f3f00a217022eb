"""The status report's RBAC on a real API server: a machine's bootstrap token may patch its own
status ConfigMap, and nothing else (not another machine's, not create, not other objects).

The control plane is the one test_control_plane_real.py starts (control_plane/),
from the program's output under mocks; the ConfigMaps, Roles and RoleBindings are the ones the
program registers (components/status_report.py), applied as they are. The request is the one
ignition/files/setup/report-status sends, with the real curl: a JSON merge patch of `data`
(Kubernetes API conventions, "Patch operations"). The gate's query then reads the reports with
the real kubectl (components/scripts/status-reports.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_plane.cluster import ControlPlane, kubectl_binary, running_control_plane
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import with_second_controller
from repo_paths import REPO

from ignition.status_report import status_configmap

pytestmark = pytest.mark.real

SEED = "control-plane-tests"


@pytest.fixture(scope="module")
def values(example_values: dict[str, Any]) -> dict[str, Any]:
    return with_second_controller(example_values)


@pytest.fixture(scope="module")
def output(values: dict[str, Any]) -> ProgramOutput:
    return render_program(values, seed=SEED)


@pytest.fixture(scope="module")
def report_objects(output: ProgramOutput) -> list[dict[str, Any]]:
    """The status report objects (and every other ConfigMap, Role and RoleBinding) exactly as
    the program registers them."""
    return [*output.configmaps.values(), *output.rbac.values()]


@pytest.fixture(scope="module")
def plane(
    output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_control_plane(output, tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@pytest.fixture(scope="module")
def tokens(
    plane: ControlPlane, output: ProgramOutput, report_objects: list[dict[str, Any]]
) -> dict[str, str]:
    """Every machine's token Secret and report objects in the cluster; each machine's token."""
    plane.apply(list(output.token_secrets.values()))
    plane.apply(report_objects)
    found = {}
    for name, secret in output.token_secrets.items():
        data = secret["stringData"]
        found[name] = f"{data['token-id']}.{data['token-secret']}"
    return found


def _patch(
    plane: ControlPlane, token: str, configmap: str, data: dict[str, str], work: Path
) -> tuple[int, str]:
    """report-status's request: PATCH with a merge patch of `data`, the token in a header file."""
    headers = work / "headers"
    headers.write_text(f"Authorization: Bearer {token}\n")
    headers.chmod(0o600)
    curl = shutil.which("curl")
    assert curl is not None
    url = f"{plane.server}/api/v1/namespaces/kube-system/configmaps/{configmap}"
    done = subprocess.run(
        plane.wrap(
            [
                curl,
                "--silent",
                "--show-error",
                "--max-time",
                "10",
                "--cacert",
                str(plane.ca_file),
                "-H",
                f"@{headers}",
                "-H",
                "Content-Type: application/merge-patch+json",
                "-X",
                "PATCH",
                "--data-binary",
                json.dumps({"data": data}),
                "-w",
                "\n%{http_code}",
                url,
            ]
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def _data(plane: ControlPlane, machine: str) -> dict[str, str]:
    done = plane.kubectl(
        "-n", "kube-system", "get", "configmap", status_configmap(machine), "-o", "json"
    )
    data: dict[str, str] = json.loads(done.stdout).get("data") or {}
    return data


def _can_i(plane: ControlPlane, token: str, *what: str) -> str:
    done = plane.kubectl(
        f"--token={token}",
        "auth",
        "can-i",
        "-n",
        "kube-system",
        *what,
        kubeconfig=plane.anonymous_kubeconfig(),
        check=False,
    )
    return done.stdout.strip()


def test_a_machines_token_patches_its_own_report_and_no_other(
    plane: ControlPlane, tokens: dict[str, str], tmp_path: Path
) -> None:
    report = {"phase": "kubeadm", "state": "retrying", "attempts": "2", "last_error": "x"}
    code, body = _patch(plane, tokens["w1"], status_configmap("w1"), report, tmp_path)
    assert code == 200, body
    assert _data(plane, "w1") == report
    # Another machine's report: forbidden, and untouched.
    code, body = _patch(plane, tokens["w1"], status_configmap("w2"), {"phase": "forged"}, tmp_path)
    assert code == 403, body
    assert "forged" not in json.dumps(_data(plane, "w2"))
    # A token the cluster does not know: unauthorized.
    code, body = _patch(plane, "abcdef.0123456789abcdef", status_configmap("w1"), report, tmp_path)
    assert code == 401, body


def test_the_role_allows_nothing_but_its_own_configmap(
    plane: ControlPlane, tokens: dict[str, str]
) -> None:
    token = tokens["w2"]
    assert _can_i(plane, token, "patch", f"configmap/{status_configmap('w2')}") == "yes"
    assert _can_i(plane, token, "update", f"configmap/{status_configmap('w2')}") == "yes"
    assert _can_i(plane, token, "patch", f"configmap/{status_configmap('w1')}") == "no"
    assert _can_i(plane, token, "delete", f"configmap/{status_configmap('w2')}") == "no"
    assert _can_i(plane, token, "create", "configmaps") == "no"
    assert _can_i(plane, token, "list", "configmaps") == "no"
    assert _can_i(plane, token, "get", "secrets") == "no"


def test_the_gate_reads_the_reports_with_the_real_kubectl(
    plane: ControlPlane, tokens: dict[str, str], tmp_path: Path
) -> None:
    error = "phase kubeadm exited 1: [ERROR Port-10250]: Port 10250 is in use | twice"
    report = {
        "phase": "kubeadm",
        "state": "failed",
        "attempts": "40",
        "updated": "2026-12-02T14:00:00Z",
        "last_error": error,
    }
    code, body = _patch(plane, tokens["c2"], status_configmap("c2"), report, tmp_path)
    assert code == 200, body
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(kubectl_binary())
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "KUBECONFIG_CONTENT": plane.admin_kubeconfig.read_text(),
        # No kubelet runs here: nothing registers, and the gate times out at once.
        "NODES": "c2",
        "TIMEOUT_SECONDS": "1",
        "POLL_SECONDS": "1",
    }
    done = subprocess.run(
        plane.wrap(["bash", "components/scripts/wait-for-nodes", "registered"]),
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert (
        f"  c2: last report: phase kubeadm, failed for good after 40 attempts; last error: "
        f"{error} (reported 2026-12-02T14:00:00Z)"
    ) in done.stderr.splitlines()
