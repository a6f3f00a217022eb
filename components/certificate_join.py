"""A controller's join with kubeadm's certificate key: the key, and its two install steps' settings.

A controller that does not found the cluster carries no CA key in its Ignition. Each install of a
controller has a certificate key of its own (a secret, like its token); before the machine's
network boot, `upload-control-plane-certs` puts the cluster's shared CA material, encrypted with
that key, into kubeadm's `kubeadm-certs` Secret (ignition/kubeadm_certs.py, in the format
`kubeadm join --certificate-key` reads: kubernetes `cmd/kubeadm/app/phases/copycerts/
copycerts.go`), owned by the machine's bootstrap-token Secret; after the boot,
`wait-for-control-plane-join` waits for the machine to be a control-plane Node and deletes the
upload. The Secret has one name, so controllers join one at a time (components/machine_steps.py);
the two steps' environments are in components/step_environments.py.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from ignition.kubeadm_certs import certificate_key


def certificate_key_secret(
    name: str, keepers: dict[str, str], opts: pulumi.ResourceOptions
) -> tuple[random.RandomPassword, pulumi.Output[str]]:
    """A new key for every install of a controller (replaced with the install anchor), hex as
    `kubeadm certs certificate-key` prints it; a secret. The resource, and the key."""
    secret = random.RandomPassword(
        name,
        length=64,
        special=False,
        upper=False,
        keepers=keepers,
        opts=opts,
    )
    return secret, pulumi.Output.secret(secret.result.apply(certificate_key))
