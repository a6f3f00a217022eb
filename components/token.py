"""One kubeadm bootstrap token per machine: `[a-z0-9]{6}.[a-z0-9]{16}`, never expiring.

A permanent token is a permanent join credential, so each machine has its own, and a new one
is made whenever the machine is reinstalled (its `generation` is a keeper, and the token is
replaced with the machine's install anchor).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random


@dataclass(frozen=True)
class BootstrapTokenArgs:
    generation: int
    # Replacing this resource (a machine's install anchor) replaces the token too.
    anchor: pulumi.Resource


class BootstrapToken(pulumi.ComponentResource):
    token_id: pulumi.Output[str]
    token: pulumi.Output[str]

    def __init__(
        self, name: str, args: BootstrapTokenArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:cluster:BootstrapToken", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, replace_with=[args.anchor])
        keepers = {"generation": str(args.generation)}
        token_id = random.RandomString(
            f"{name}-id", length=6, special=False, upper=False, keepers=keepers, opts=child
        )
        token_secret = random.RandomPassword(
            f"{name}-secret", length=16, special=False, upper=False, keepers=keepers, opts=child
        )
        self.token_id = token_id.result
        self.token = pulumi.Output.secret(
            pulumi.Output.concat(token_id.result, ".", token_secret.result)
        )
        self.register_outputs({"token_id": self.token_id})


def bootstrap_token_secret(
    name: str,
    machine: str,
    token: BootstrapToken,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> k8s.core.v1.Secret:
    """The token as kubeadm's own `bootstrap-token-<id>` Secret, so the machine can join.

    The init controller's token comes from its InitConfiguration instead; every other token is
    added here, which keeps each machine's token out of every other machine's Ignition.
    """
    # Derived from a secret, so itself a secret.
    token_secret = token.token.apply(lambda t: t.partition(".")[2])
    return k8s.core.v1.Secret(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=pulumi.Output.concat("bootstrap-token-", token.token_id),
            namespace="kube-system",
            labels={"app.kubernetes.io/managed-by": "stubernetes"},
        ),
        type="bootstrap.kubernetes.io/token",
        string_data={
            "description": f"stubernetes: bootstrap token of machine {machine}",
            "token-id": token.token_id,
            "token-secret": token_secret,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        },
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on),
    )
