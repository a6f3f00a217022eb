"""A controller's join with kubeadm's certificate key: the key, and its two install steps' settings.

A controller that does not found the cluster carries no CA key in its Ignition. Each install of a
controller has a certificate key of its own (a secret, like its token); before the machine's
network boot, `upload-control-plane-certs` puts the cluster's shared CA material, encrypted with
that key, into kubeadm's `kubeadm-certs` Secret (ignition/kubeadm_certs.py, in the format
`kubeadm join --certificate-key` reads: kubernetes `cmd/kubeadm/app/phases/copycerts/
copycerts.go`), owned by the machine's bootstrap-token Secret; after the boot,
`wait-for-control-plane-join` waits for the machine to be a control-plane Node and deletes the
upload. The Secret has one name, so controllers join one at a time (components/program.py).
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.token import token_secret_name
from ignition import ClusterMaterial
from ignition.kubeadm_certs import SECRET_NAME, certificate_key, kubeadm_certs_manifest
from stackconfig.model import Gates


def certificate_key_secret(
    object_id: str, keepers: dict[str, str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """A new key for every install of a controller (replaced with the install anchor), hex as
    `kubeadm certs certificate-key` prints it; a secret."""
    secret = random.RandomPassword(
        f"{object_id}-certificate-key",
        length=64,
        special=False,
        upper=False,
        keepers=keepers,
        opts=opts,
    )
    return pulumi.Output.secret(secret.result.apply(certificate_key))


def upload_environment(
    machine: str,
    joins: bool,
    kubeconfig: pulumi.Output[str],
    material: pulumi.Output[ClusterMaterial],
    key: pulumi.Output[str],
    token_id: pulumi.Output[str],
) -> dict[str, pulumi.Input[str]]:
    """components/scripts/upload-control-plane-certs's environment. `joins`: whether this
    install joins with the key (False for a founding install: the step uploads nothing)."""
    manifest: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(material, key, token_id).apply(
            lambda v: kubeadm_certs_manifest(v[0], v[1], v[2], machine)
        )
    )
    return {
        "KUBECONFIG_CONTENT": kubeconfig,
        "MACHINE": machine,
        "CERTIFICATE_KEY_JOIN": str(joins).lower(),
        "TOKEN_SECRET": token_secret_name(token_id),
        "CERTS_MANIFEST": manifest,
    }


def joined_environment(
    machine: str,
    joins: bool,
    kubeconfig: pulumi.Output[str],
    token_id: pulumi.Output[str],
    gates: Gates,
) -> dict[str, pulumi.Input[str]]:
    """components/scripts/wait-for-control-plane-join's environment."""
    return {
        "KUBECONFIG_CONTENT": kubeconfig,
        "MACHINE": machine,
        "CERTIFICATE_KEY_JOIN": str(joins).lower(),
        "TOKEN_SECRET": token_secret_name(token_id),
        "CERTS_SECRET": SECRET_NAME,
        "TIMEOUT_SECONDS": str(gates.reinstall_timeout_seconds),
        "POLL_SECONDS": str(gates.poll_seconds),
    }
