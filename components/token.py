"""One kubeadm bootstrap token per machine install: `[a-z0-9]{6}.[a-z0-9]{16}`, expiring.

A token is a join credential, and Matchbox serves it to anyone who knows the machine's MAC, so
each machine has its own, a new one is made whenever the machine is reinstalled (its
`generation` is a keeper, and the token is replaced with the machine's install anchor), and it
expires `installCredentialHours` after its install started: the bootstrap token authenticator
refuses an expired token and the controller manager's token cleaner deletes its Secret
(kubernetes plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go,
pkg/controller/bootstrap/tokencleaner.go; kubeadm enables the cleaner).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ignition.kubeadm_certs import BOOTSTRAP_TOKEN_GROUP, NAMESPACE, RBAC_NAME, SECRET_NAME

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def expiration_after(started: str, hours: int) -> str:
    """The token's `expiration` (RFC 3339, UTC): `hours` after the install's recorded start."""
    start = datetime.datetime.strptime(started.strip(), RFC3339).replace(tzinfo=datetime.UTC)
    return (start + datetime.timedelta(hours=hours)).strftime(RFC3339)


@dataclass(frozen=True)
class BootstrapTokenArgs:
    generation: int
    # Replacing this resource (a machine's install anchor) replaces the token too.
    anchor: pulumi.Resource
    # When the install started (the install clock's output) and how long the token lives.
    started: pulumi.Output[str]
    lifetime_hours: int


class BootstrapToken(pulumi.ComponentResource):
    token_id: pulumi.Output[str]
    token: pulumi.Output[str]
    expiration: pulumi.Output[str]

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
        hours = args.lifetime_hours
        self.expiration = args.started.apply(lambda started: expiration_after(started, hours))
        self.token = pulumi.Output.secret(
            pulumi.Output.concat(token_id.result, ".", token_secret.result)
        )
        self.register_outputs({"token_id": self.token_id, "expiration": self.expiration})


def token_secret_name(token_id: pulumi.Output[str]) -> pulumi.Output[str]:
    """kubeadm's name for a bootstrap token's Secret (bootstraputil.BootstrapTokenSecretName)."""
    return pulumi.Output.concat("bootstrap-token-", token_id)


def bootstrap_token_secret(
    name: str,
    machine: str,
    token_id: pulumi.Output[str],
    token: pulumi.Output[str],
    expiration: pulumi.Output[str],
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> k8s.core.v1.Secret:
    """The token (`BootstrapToken`'s outputs) as kubeadm's own `bootstrap-token-<id>` Secret,
    so the machine can join.

    The init controller's token comes from its InitConfiguration instead; every other token is
    added here, which keeps each machine's token out of every other machine's Ignition.
    """
    # Derived from a secret, so itself a secret.
    token_secret = token.apply(lambda t: t.partition(".")[2])
    return k8s.core.v1.Secret(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=token_secret_name(token_id),
            namespace="kube-system",
            labels={"app.kubernetes.io/managed-by": "stubernetes"},
        ),
        type="bootstrap.kubernetes.io/token",
        string_data={
            "description": f"stubernetes: bootstrap token of machine {machine}",
            "token-id": token_id,
            "token-secret": token_secret,
            "expiration": expiration,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        },
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )


def kubeadm_certs_rbac(
    cluster: str,
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> list[pulumi.Resource]:
    """What kubeadm's upload-certs phase creates beside the kubeadm-certs Secret, so that a
    joining controller's bootstrap token may read it: a Role `kubeadm:kubeadm-certs` allowing
    `get` on that one Secret, bound to the node bootstrap token group (kubernetes
    cmd/kubeadm/app/phases/copycerts/copycerts.go createRBAC). `kubeadm init` without
    --upload-certs creates neither."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on)
    metadata = k8s.meta.v1.ObjectMetaArgs(
        name=RBAC_NAME,
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/managed-by": "stubernetes"},
    )
    role = k8s.rbac.v1.Role(
        f"{cluster}-kubeadm-certs",
        metadata=metadata,
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(
                verbs=["get"], api_groups=[""], resources=["secrets"], resource_names=[SECRET_NAME]
            )
        ],
        opts=opts,
    )
    binding = k8s.rbac.v1.RoleBinding(
        f"{cluster}-kubeadm-certs",
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=RBAC_NAME
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="Group", name=BOOTSTRAP_TOKEN_GROUP, api_group="rbac.authorization.k8s.io"
            )
        ],
        opts=opts.merge(pulumi.ResourceOptions(depends_on=[role])),
    )
    return [role, binding]
