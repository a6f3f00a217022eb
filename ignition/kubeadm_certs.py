"""The control-plane certificates as kubeadm's `kubeadm-certs` Secret, for a certificate-key join.

A controller that joins with `kubeadm join --control-plane --certificate-key K` (here
`JoinConfiguration.controlPlane.certificateKey`) downloads the cluster's shared CA material from
the Secret `kubeadm-certs` in `kube-system` and decrypts it with K, so its Ignition carries K and
its token, never a private key. This module writes that Secret exactly as kubeadm's own upload
does (kubernetes v1.36 `cmd/kubeadm/app/phases/copycerts/copycerts.go`):

- the files: `ca.crt`, `ca.key`, `front-proxy-ca.crt`, `front-proxy-ca.key`, `sa.pub`, `sa.key`,
  `etcd/ca.crt`, `etcd/ca.key` (certsToTransfer, stacked etcd), each under its file name with
  "/" turned into "-" (certOrKeyNameToSecretName: `etcd-ca.crt`);
- each value AES-GCM sealed with the hex-decoded key, the 12-byte nonce first:
  `nonce || ciphertext || tag` (`cmd/kubeadm/app/util/crypto/crypto.go` EncryptBytes, which
  DecryptBytes reads back with `data[:NonceSize]`); the key is 32 bytes
  (`cmd/kubeadm/app/constants/constants.go` CertificateKeySize), hex encoded;
- owned by a bootstrap token's Secret (a controller ownerReference, getSecretOwnerRef), so the
  garbage collector deletes it once the token cleaner has deleted the expired token.

kubeadm takes a random nonce; this one is derived from the key, the entry's name and its content
(an HMAC), so the same material and key always give the same Secret (an unchanged stack stays
unchanged), and a nonce repeats under one key only for the very same plaintext, whose ciphertext
is then the same too: nothing is learnt that equality of the inputs would not tell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ignition.material import ClusterMaterial, standin_certificate_secret

SECRET_NAME = "kubeadm-certs"
NAMESPACE = "kube-system"
# kubeadm's RBAC for the upload (copycerts.go createRBAC, constants.go
# KubeadmCertsClusterRoleName): a Role and RoleBinding of this name let every node bootstrap
# token (group NodeBootstrapTokenAuthGroup) get that one Secret. `kubeadm init` without
# --upload-certs creates neither, so the program does.
RBAC_NAME = "kubeadm:kubeadm-certs"
BOOTSTRAP_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
KEY_BYTES = 32
NONCE_BYTES = 12
# Replaced, by the upload step, with the uid of the machine's token Secret (known only once the
# API server has created it).
OWNER_UID_PLACEHOLDER = "__OWNER_UID__"


def certificate_key(secret: str) -> str:
    """The hex certificate key (32 bytes, as `kubeadm certs certificate-key` prints) derived from
    a random secret of the program's (a per-install RandomPassword)."""
    digest = hashlib.sha256(f"stubernetes/kubeadm-certificate-key/{secret}".encode()).digest()
    return digest.hex()


def secret_entry_name(path: str) -> str:
    """copycerts.go certOrKeyNameToSecretName: `etcd/ca.crt` -> `etcd-ca.crt`."""
    return path.replace("/", "-")


def _key(hex_key: str) -> bytes:
    key = bytes.fromhex(hex_key)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a certificate key is {KEY_BYTES} bytes, hex encoded")
    return key


def encrypt(data: bytes, hex_key: str, name: str) -> bytes:
    """EncryptBytes' layout, nonce first, with a nonce derived from key, name and data."""
    key = _key(hex_key)
    nonce = hmac.new(key, b"nonce\0" + name.encode() + b"\0" + data, hashlib.sha256).digest()
    nonce = nonce[:NONCE_BYTES]
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def decrypt(sealed: bytes, hex_key: str) -> bytes:
    """DecryptBytes: the nonce is the first 12 bytes; a wrong key fails (InvalidTag)."""
    if len(sealed) < NONCE_BYTES:
        raise ValueError("size of data is less than the nonce")
    return AESGCM(_key(hex_key)).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)


def secret_data(material: ClusterMaterial, hex_key: str) -> dict[str, str]:
    """The Secret's `data`: each file of the material, sealed and base64 encoded."""
    return {
        secret_entry_name(path): base64.b64encode(
            encrypt(text.encode(), hex_key, secret_entry_name(path))
        ).decode()
        for path, text in sorted(material.kubeadm_files().items())
    }


def decrypt_secret_data(data: dict[str, str], hex_key: str) -> dict[str, bytes]:
    """getDataFromSecret: every entry decrypted, by its entry name."""
    return {name: decrypt(base64.b64decode(value), hex_key) for name, value in data.items()}


def kubeadm_certs_secret(
    material: ClusterMaterial, hex_key: str, token_id: str, machine: str
) -> dict[str, Any]:
    """The Secret, owned by the machine's token Secret `bootstrap-token-<token_id>` (whose uid is
    the placeholder until the upload step fills it in)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "stubernetes"},
            "annotations": {"stubernetes/machine": machine},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": f"bootstrap-token-{token_id}",
                    "uid": OWNER_UID_PLACEHOLDER,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        "data": secret_data(material, hex_key),
    }


def kubeadm_certs_manifest(
    material: ClusterMaterial, hex_key: str, token_id: str, machine: str
) -> str:
    """The Secret as one line of JSON, what the upload step applies."""
    secret = kubeadm_certs_secret(material, hex_key, token_id, machine)
    return json.dumps(secret, sort_keys=True, separators=(",", ":"))


def standin_certificate_key(seed: str, machine: str) -> str:
    """A render's or a test's certificate key for `machine`, derived from the seed as the
    mocks derive the per-install random secret it comes from."""
    return certificate_key(standin_certificate_secret(seed, machine))
