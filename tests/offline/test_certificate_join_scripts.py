"""A controller's two certificate steps, run for real against the stand-in kubectl
(fake_kubectl.py): upload-control-plane-certs puts the program's kubeadm-certs manifest in
the cluster, owned by the machine's token Secret (its uid filled in, as kubeadm's own upload's
getSecretOwnerRef does: kubernetes `cmd/kubeadm/app/phases/copycerts/copycerts.go`), in place of
any earlier upload; wait-for-control-plane-join waits for the machine's control-plane Node
(kubeadm's mark-control-plane label) and deletes the upload if it is still this machine's.
Their ordinary path against a real API server is in tests/real/test_cert_upload.py (marker `real`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from standin_tools import calls, run, state_of

from ignition.kubeadm_certs import OWNER_UID_PLACEHOLDER, kubeadm_certs_manifest
from ignition.material import ClusterMaterial

TOKEN_SECRET = "bootstrap-token-abcdef"
KEY = "0f" * 32


def token_secret(name: str = TOKEN_SECRET) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kube-system", "uid": f"uid-of-{name}"}}


def cluster(**extra: Any) -> dict[str, Any]:
    return {
        "nodes": {"c1": {"labels": {"node-role.kubernetes.io/control-plane": ""}}},
        "secrets": {f"kube-system/{TOKEN_SECRET}": token_secret()},
        **extra,
    }


def upload_env(material: ClusterMaterial, joins: str = "true") -> dict[str, str]:
    return {
        "MACHINE": "c2",
        "CERTIFICATE_KEY_JOIN": joins,
        "TOKEN_SECRET": TOKEN_SECRET,
        "CERTS_MANIFEST": kubeadm_certs_manifest(material, KEY, "abcdef", "c2"),
    }


def wait_env(joins: str = "true", timeout: str = "5") -> dict[str, str]:
    return {
        "MACHINE": "c2",
        "CERTIFICATE_KEY_JOIN": joins,
        "TOKEN_SECRET": TOKEN_SECRET,
        "CERTS_SECRET": "kubeadm-certs",
        "TIMEOUT_SECONDS": timeout,
        "POLL_SECONDS": "0",
    }


def test_upload_creates_the_secret_owned_by_the_tokens(
    tmp_path: Path, material: ClusterMaterial
) -> None:
    done = run(tmp_path, "upload-control-plane-certs", upload_env(material), cluster())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"uploaded kube-system/kubeadm-certs for c2's join, owned by {TOKEN_SECRET} "
        f"(uid uid-of-{TOKEN_SECRET})"
    )
    secret = state_of(tmp_path)["secrets"]["kube-system/kubeadm-certs"]
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["name"], owner["uid"]) == (TOKEN_SECRET, f"uid-of-{TOKEN_SECRET}")
    expected = json.loads(upload_env(material)["CERTS_MANIFEST"])
    assert secret["data"] == expected["data"]
    assert OWNER_UID_PLACEHOLDER not in json.dumps(secret)
    # The manifest, a secret, went to a private file, never to a command line.
    assert not any(expected["data"]["ca.key"] in " ".join(c["args"]) for c in calls(tmp_path))


def test_upload_replaces_an_earlier_upload(tmp_path: Path, material: ClusterMaterial) -> None:
    earlier = {
        "metadata": {
            "name": "kubeadm-certs",
            "namespace": "kube-system",
            "uid": "old",
            "ownerReferences": [{"name": "bootstrap-token-zzzzzz"}],
        },
        "data": {"ca.key": "old"},
    }
    state = cluster()
    state["secrets"]["kube-system/kubeadm-certs"] = earlier
    done = run(tmp_path, "upload-control-plane-certs", upload_env(material), state)
    assert done.returncode == 0, done.stderr
    secret = state_of(tmp_path)["secrets"]["kube-system/kubeadm-certs"]
    assert secret["metadata"]["ownerReferences"][0]["name"] == TOKEN_SECRET
    assert secret["data"]["ca.key"] != "old"


def test_upload_for_a_founding_install_does_nothing(
    tmp_path: Path, material: ClusterMaterial
) -> None:
    done = run(tmp_path, "upload-control-plane-certs", upload_env(material, "false"), cluster())
    assert done.returncode == 0, done.stderr
    assert "nothing to upload" in done.stdout
    assert calls(tmp_path) == []


def test_upload_fails_without_the_token_secret(tmp_path: Path, material: ClusterMaterial) -> None:
    done = run(tmp_path, "upload-control-plane-certs", upload_env(material), cluster(secrets={}))
    assert done.returncode != 0
    assert f'secrets "{TOKEN_SECRET}" not found' in done.stderr
    assert "kube-system/kubeadm-certs" not in state_of(tmp_path).get("secrets", {})


def test_upload_refuses_a_manifest_without_the_owner_placeholder(
    tmp_path: Path, material: ClusterMaterial
) -> None:
    env = upload_env(material)
    env["CERTS_MANIFEST"] = env["CERTS_MANIFEST"].replace(OWNER_UID_PLACEHOLDER, "x")
    done = run(tmp_path, "upload-control-plane-certs", env, cluster())
    assert done.returncode == 2
    assert "no owner placeholder" in done.stderr


def _uploaded(material: ClusterMaterial, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    state = cluster(**extra)
    assert run(tmp_path, "upload-control-plane-certs", upload_env(material), state).returncode == 0
    return state_of(tmp_path)


def test_wait_deletes_the_upload_once_the_machine_is_a_control_plane_node(
    tmp_path: Path, material: ClusterMaterial
) -> None:
    state = _uploaded(material, tmp_path)
    state["nodes"]["c2"] = {}
    state.update(joining="c2", control_plane_after=2, polls=0)
    done = run(tmp_path, "wait-for-control-plane-join", wait_env(), state)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("waiting for c2's control-plane join") == 2
    assert (
        done.stdout.splitlines()[-1]
        == "c2 joined the control plane; deleted kube-system/kubeadm-certs"
    )
    assert "kube-system/kubeadm-certs" not in state_of(tmp_path)["secrets"]


def test_wait_leaves_another_machines_upload(tmp_path: Path, material: ClusterMaterial) -> None:
    state = _uploaded(material, tmp_path)
    state["secrets"]["kube-system/kubeadm-certs"]["metadata"]["ownerReferences"][0]["name"] = (
        "bootstrap-token-other1"
    )
    state["nodes"]["c2"] = {"labels": {"node-role.kubernetes.io/control-plane": ""}}
    done = run(tmp_path, "wait-for-control-plane-join", wait_env(), state)
    assert done.returncode == 0, done.stderr
    assert "is not its upload" in done.stdout
    assert "kube-system/kubeadm-certs" in state_of(tmp_path)["secrets"]


def test_wait_times_out_and_keeps_the_upload(tmp_path: Path, material: ClusterMaterial) -> None:
    """The Secret stays for a retry; its owner, the expiring token, bounds its life."""
    state = _uploaded(material, tmp_path)
    state["nodes"]["c2"] = {}
    done = run(tmp_path, "wait-for-control-plane-join", wait_env(timeout="0"), state)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "c2 did not join the control plane within 0s: not a control-plane node yet"
    )
    assert "kube-system/kubeadm-certs" in state_of(tmp_path)["secrets"]


def test_wait_for_a_founding_install_does_nothing(tmp_path: Path) -> None:
    done = run(tmp_path, "wait-for-control-plane-join", wait_env("false"), cluster())
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == []
