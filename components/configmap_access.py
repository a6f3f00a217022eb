"""One user's access to one ConfigMap: a Role allowing get, update and patch of exactly that
ConfigMap (`resourceNames`), and a RoleBinding of it to the user. RBAC cannot limit `create` to
a resource name (Kubernetes docs "Using RBAC Authorization", Referring to resources), so the
program creates the ConfigMap and the user only reads and patches it. Shared by the status
report (a bootstrap token's user) and the upgrade channel (a kubelet's user)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

RBAC_GROUP = "rbac.authorization.k8s.io"


def configmap_access(
    name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    configmap: str,
    user: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> tuple[k8s.rbac.v1.Role, k8s.rbac.v1.RoleBinding]:
    """The Role (named as the ConfigMap, in `metadata`) and its RoleBinding to `user`."""
    role = k8s.rbac.v1.Role(
        name,
        metadata=metadata,
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=[""],
                resources=["configmaps"],
                resource_names=[configmap],
                verbs=["get", "update", "patch"],
            )
        ],
        opts=opts,
    )
    binding = k8s.rbac.v1.RoleBinding(
        name,
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="Role", name=configmap),
        subjects=[k8s.rbac.v1.SubjectArgs(api_group=RBAC_GROUP, kind="User", name=user)],
        opts=opts.merge(pulumi.ResourceOptions(depends_on=[role])),
    )
    return role, binding
