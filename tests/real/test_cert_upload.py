"""The control-plane certificates a joining controller downloads with its certificate key.

A controller other than the founding one carries no CA key in its Ignition: the program uploads
the cluster's shared material as kubeadm's `kubeadm-certs` Secret in `kube-system`, encrypted
with a certificate key of that install's own, which the controller's kubeadm.yaml carries
(`JoinConfiguration.controlPlane.certificateKey`, v1beta4). kubeadm's format (kubernetes
`cmd/kubeadm/app/phases/copycerts/copycerts.go`): one entry per file of certsToTransfer, named by
certOrKeyNameToSecretName ("/" -> "-"); each value AES-GCM sealed with the hex-decoded key and
the nonce first (`cmd/kubeadm/app/util/crypto/crypto.go` EncryptBytes `gcm.Seal(nonce, nonce,
data, nil)`, DecryptBytes `data[:nonceSize]`); owned by a bootstrap token's Secret
(getSecretOwnerRef, a controller reference).

Offline: the whole program under mocks (stand-in PKI: real keys), each joining controller's
upload decrypted here, with the cryptography package's AES-GCM and not the program's own code,
with the key its Ignition carries: exactly the founding controller's CA material; another key
fails. Real (marker `real`): the program's upload step and its RBAC against the real control
plane of tests/real/control_plane, then the REAL `kubeadm join phase control-plane-prepare
download-certs` with the controller's own rendered kubeadm.yaml reads the Secret and writes the
same files; the wait for the join deletes the Secret, and the same download then fails as
kubeadm says.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.cluster import ControlPlane, kubectl_binary, start_control_plane
from control_plane.kubeadm import PKI_DIR, KubeadmRun, config_args, kubeadm, machine_root
from control_plane.kwok import node_object
from control_plane.program_output import MachineOutput, ProgramOutput, render_program
from control_plane.stacks import with_second_controller
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from program_stacks import sized_stack
from repo_paths import REPO

from ignition.kubeadm_certs import (
    BOOTSTRAP_TOKEN_GROUP,
    OWNER_UID_PLACEHOLDER,
    kubeadm_certs_manifest,
    standin_certificate_key,
)
from ignition.material import ClusterMaterial

# copycerts.go certsToTransfer (stacked etcd) through certOrKeyNameToSecretName.
ENTRIES = {
    "ca.crt": "ca.crt",
    "ca.key": "ca.key",
    "front-proxy-ca.crt": "front-proxy-ca.crt",
    "front-proxy-ca.key": "front-proxy-ca.key",
    "sa.pub": "sa.pub",
    "sa.key": "sa.key",
    "etcd-ca.crt": "etcd/ca.crt",
    "etcd-ca.key": "etcd/ca.key",
}
NONCE_BYTES = 12  # crypto/cipher's standard GCM nonce (gcm.NonceSize())


def open_sealed(value: str, hex_key: str) -> bytes:
    """DecryptBytes: base64 (a Secret's data), then the nonce first, the sealed rest after."""
    sealed = base64.b64decode(value)
    return AESGCM(bytes.fromhex(hex_key)).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)


def upload_step(output: ProgramOutput, machine: str) -> dict[str, Any]:
    (step,) = [
        c
        for c in output.commands.values()
        if str(c["create"]).endswith("/upload-control-plane-certs")
        and c["environment"]["MACHINE"] == machine
    ]
    return step


def manifest(output: ProgramOutput, machine: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        upload_step(output, machine)["environment"]["CERTS_MANIFEST"]
    )
    return document


def carried_key(machine: MachineOutput) -> str:
    key: str = machine.kubeadm_documents()["JoinConfiguration"]["controlPlane"]["certificateKey"]
    return key


def cluster_material(output: ProgramOutput) -> dict[str, bytes]:
    """The cluster's shared CA material: what the founding controller's Ignition carries."""
    return {path: f.contents for path, f in output.init_controller.shared_pki().items()}


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(sized_stack(example_values, 3, 1))


@pytest.fixture(scope="module")
def joining(output: ProgramOutput) -> list[MachineOutput]:
    machines = sorted(
        (m for m in output.machines.values() if m.role == "controller" and not m.init),
        key=lambda m: m.name,
    )
    assert [m.name for m in machines] == ["c2", "c3"]
    return machines


# --------------------------------------------------------------------------------- offline


def test_each_upload_decrypts_with_its_controllers_key_to_the_clusters_material(
    output: ProgramOutput, joining: list[MachineOutput]
) -> None:
    material = cluster_material(output)
    assert sorted(material) == sorted(ENTRIES.values())
    for machine in joining:
        # The joining controller's Ignition has none of it, only the key (32 bytes, hex).
        assert machine.shared_pki() == {}
        key = carried_key(machine)
        assert len(bytes.fromhex(key)) == 32
        secret = manifest(output, machine.name)
        assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", "kubeadm-certs")
        assert secret["metadata"]["namespace"] == "kube-system"
        assert sorted(secret["data"]) == sorted(ENTRIES)
        for entry, path in ENTRIES.items():
            assert open_sealed(secret["data"][entry], key) == material[path], (machine.name, entry)


def test_a_wrong_key_fails(output: ProgramOutput, joining: list[MachineOutput]) -> None:
    c2, c3 = joining
    assert carried_key(c2) != carried_key(c3)
    secret = manifest(output, c2.name)
    for key in (carried_key(c3), standin_certificate_key("another seed", c2.name)):
        for value in secret["data"].values():
            with pytest.raises(InvalidTag):
                open_sealed(value, key)
    # One bit off in a sealed value fails too: GCM authenticates it.
    sealed = bytearray(base64.b64decode(secret["data"]["ca.key"]))
    sealed[-1] ^= 1
    with pytest.raises(InvalidTag):
        open_sealed(base64.b64encode(bytes(sealed)).decode(), carried_key(c2))


def test_each_upload_is_owned_by_its_machines_token_secret(
    output: ProgramOutput, joining: list[MachineOutput]
) -> None:
    """So the garbage collector deletes it once the token cleaner has deleted the expired
    token's Secret (copycerts.go getSecretOwnerRef: metav1.NewControllerRef)."""
    for machine in joining:
        (owner,) = manifest(output, machine.name)["metadata"]["ownerReferences"]
        token_id = output.token_secrets[machine.name]["stringData"]["token-id"]
        assert owner == {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": f"bootstrap-token-{token_id}",
            "uid": OWNER_UID_PLACEHOLDER,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        env = upload_step(output, machine.name)["environment"]
        assert env["TOKEN_SECRET"] == f"bootstrap-token-{token_id}"
        assert env["CERTIFICATE_KEY_JOIN"] == "true"


def test_the_founding_controller_uploads_nothing(output: ProgramOutput) -> None:
    init = output.init_controller
    assert sorted(init.shared_pki()) == sorted(ENTRIES.values())
    assert upload_step(output, init.name)["environment"]["CERTIFICATE_KEY_JOIN"] == "false"


def test_kubeadms_rbac_lets_bootstrap_tokens_get_only_that_secret(output: ProgramOutput) -> None:
    """copycerts.go createRBAC: Role and RoleBinding `kubeadm:kubeadm-certs` in kube-system,
    `get` on the one Secret, for kubeadm's node bootstrap token group
    (`cmd/kubeadm/app/constants/constants.go` NodeBootstrapTokenAuthGroup)."""
    objects = {
        o["kind"]: o
        for o in output.rbac.values()
        if o["metadata"]["name"] == "kubeadm:kubeadm-certs"
    }
    assert sorted(objects) == ["Role", "RoleBinding"]
    role, binding = objects["Role"], objects["RoleBinding"]
    for document in (role, binding):
        assert document["metadata"]["name"] == "kubeadm:kubeadm-certs"
        assert document["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [
        {
            "verbs": ["get"],
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["kubeadm-certs"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kubeadm:kubeadm-certs",
    }
    assert binding["subjects"] == [
        {"kind": "Group", "name": BOOTSTRAP_TOKEN_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert BOOTSTRAP_TOKEN_GROUP == "system:bootstrappers:kubeadm:default-node-token"


def test_the_upload_is_deterministic_and_changes_with_the_key(material: ClusterMaterial) -> None:
    """An unchanged stack uploads the same Secret (the nonce is derived, not drawn); another
    install's key gives other ciphertext for every entry."""
    key, other = standin_certificate_key("s", "c2"), standin_certificate_key("s", "c2/2")
    first = kubeadm_certs_manifest(material, key, "abcdef", "c2")
    assert kubeadm_certs_manifest(material, key, "abcdef", "c2") == first
    data = json.loads(first)["data"]
    changed = json.loads(kubeadm_certs_manifest(material, other, "abcdef", "c2"))["data"]
    assert all(data[entry] != changed[entry] for entry in ENTRIES)
    # No two entries share a nonce under one key.
    nonces = {base64.b64decode(v)[:NONCE_BYTES] for v in data.values()}
    assert len(nonces) == len(ENTRIES)
    for entry, path in ENTRIES.items():
        assert open_sealed(data[entry], key) == material.kubeadm_files()[path].encode()


# ------------------------------------------------------------------------ the real kubeadm


@pytest.fixture(scope="module")
def real_output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(with_second_controller(example_values))


@pytest.fixture(scope="module")
def plane(
    real_output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """The init controller's real control plane, the program's token Secrets and kubeadm's
    bootstrap-token phase (cluster-info, which a join's discovery reads), as in
    tests/real/test_control_plane_real.py."""
    plane = start_control_plane(real_output, tmp_path_factory.mktemp("cert-upload"))
    try:
        plane.apply(list(real_output.token_secrets.values()))
        plane.init_phase("bootstrap-token")
        yield plane
    finally:
        plane.stop()


def _run_step(
    plane: ControlPlane, step: dict[str, Any], **overrides: str
) -> subprocess.CompletedProcess[str]:
    """As pulumi-command runs a Command's `create`: `/bin/sh -c <create>` in the project
    directory, with the environment plus `environment` (pulumi/pulumi-command
    `provider/pkg/provider/local/commandController.go`), the real kubectl first on PATH."""
    bin_dir = plane.work / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (bin_dir / "kubectl").symlink_to(kubectl_binary())
    environment = {
        **os.environ,
        **step["environment"],
        **overrides,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "KUBECONFIG_CONTENT": plane.admin_kubeconfig.read_text(),
    }
    return subprocess.run(
        plane.wrap(["/bin/sh", "-c", step["create"]]),
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _download_certs(plane: ControlPlane, root: Path) -> KubeadmRun:
    return kubeadm(
        ["join", "phase", "control-plane-prepare", "download-certs", *config_args(), "--v=1"],
        rootfs=root,
        check=False,
        wrap=plane.wrap,
    )


def _upload_for_the_joining_controller(
    plane: ControlPlane, real_output: ProgramOutput
) -> tuple[MachineOutput, str]:
    """The joining controller's upload step run for real, after kubeadm's RBAC; that controller
    and the name of the token Secret that owns the upload."""
    (c2,) = [m for m in real_output.machines.values() if m.role == "controller" and not m.init]
    plane.apply(list(real_output.rbac.values()))
    upload = upload_step(real_output, c2.name)
    uploaded = _run_step(plane, upload)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    return c2, str(upload["environment"]["TOKEN_SECRET"])


@pytest.mark.real
def test_real_kubeadm_downloads_the_uploaded_certificates(
    plane: ControlPlane, real_output: ProgramOutput, tmp_path: Path
) -> None:
    c2, token_secret = _upload_for_the_joining_controller(plane, real_output)
    got = json.loads(
        plane.kubectl("-n", "kube-system", "get", "secret", "kubeadm-certs", "-o", "json").stdout
    )
    uid = plane.kubectl(
        "-n", "kube-system", "get", "secret", token_secret, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    (owner,) = got["metadata"]["ownerReferences"]
    assert (owner["name"], owner["uid"]) == (token_secret, uid)

    # The controller's own root: its Ignition's files, no CA material among them.
    root = machine_root(c2, tmp_path / "root")
    pki = root / PKI_DIR.lstrip("/")
    assert not pki.exists() or not any(pki.rglob("*.key"))
    run = _download_certs(plane, root)
    assert run.returncode == 0, run.report()
    assert 'Downloading the certificates in Secret "kubeadm-certs"' in run.stdout, run.report()
    material = cluster_material(real_output)
    for path, contents in material.items():
        written = pki / path
        assert written.read_bytes() == contents, path
        # keyutil.WriteKey: 0600; certutil.WriteCert: 0644 (client-go util/keyutil, util/cert).
        assert stat.S_IMODE(written.stat().st_mode) == (0o600 if path.endswith(".key") else 0o644)

    # Another key: kubeadm refuses the Secret.
    config = root / "etc/stubernetes/kubeadm.yaml"
    documents = list(yaml.safe_load_all(config.read_text()))
    for document in documents:
        if document["kind"] == "JoinConfiguration":
            document["controlPlane"]["certificateKey"] = standin_certificate_key("x", c2.name)
    config.write_text(yaml.safe_dump_all(documents))
    refused = _download_certs(plane, root)
    assert refused.returncode != 0
    assert "error decoding secret data with provided key" in refused.stderr, refused.report()

    # The wait for the join sees the control-plane Node and deletes the upload; a download
    # after that finds no Secret, as kubeadm says (copycerts.go getSecret).
    plane.kubectl("create", "-f", "-", input_text=json.dumps(node_object(c2, "boot-1")))
    joined = _run_step(
        plane,
        next(
            c
            for c in real_output.commands.values()
            if str(c["create"]).endswith("/wait-for-control-plane-join")
            and c["environment"]["MACHINE"] == c2.name
        ),
        TIMEOUT_SECONDS="60",
        POLL_SECONDS="1",
    )
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert "deleted kube-system/kubeadm-certs" in joined.stdout
    restored = machine_root(c2, tmp_path / "root-again")
    gone = _download_certs(plane, restored)
    assert gone.returncode != 0
    assert 'Secret "kubeadm-certs" was not found in the "kube-system" Namespace' in gone.stderr, (
        gone.report()
    )


@pytest.mark.real
def test_an_upload_goes_with_its_token_secret_through_the_garbage_collector(
    plane: ControlPlane, real_output: ProgramOutput
) -> None:
    """A join that never completes leaves its upload behind (the wait keeps it on a timeout);
    what then removes the CA keys from the cluster is the upload's owner: when the token cleaner
    deletes the expired token's Secret (kubernetes pkg/controller/bootstrap/tokencleaner.go),
    the real controller-manager's garbage collector deletes every object that Secret owns
    (kubernetes pkg/controller/garbagecollector/garbagecollector.go, attemptToDeleteItem: an
    owner that no longer exists). Here the token Secret is deleted as the cleaner does it."""
    _, token_secret = _upload_for_the_joining_controller(plane, real_output)
    plane.kubectl("-n", "kube-system", "get", "secret", "kubeadm-certs", "-o", "name")
    try:
        plane.kubectl("-n", "kube-system", "delete", "secret", token_secret)
        deadline = time.monotonic() + 120
        while True:
            left = plane.kubectl(
                "-n",
                "kube-system",
                "get",
                "secret",
                "kubeadm-certs",
                "--ignore-not-found",
                "-o",
                "name",
            ).stdout.strip()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert left == "", "the garbage collector left kubeadm-certs after its owner went"
    finally:
        # The module's other tests find the program's token Secrets as the program left them.
        plane.apply(list(real_output.token_secrets.values()))
