"""Where a machine reports its setup status: a ConfigMap only its own bootstrap token may write.

Per machine, in kube-system: the ConfigMap `stubernetes-status-<machine>` (the node fills its
`data`: ignition/status_report.py), a Role that allows get, update and patch of exactly that
ConfigMap (`resourceNames`), and a RoleBinding of that Role to the user its bootstrap token
authenticates as, `system:bootstrap:<token-id>` (Kubernetes docs "Authenticating with
Bootstrap Tokens"; kubernetes plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go).
Nothing else: not the group system:bootstrappers, which every machine's token is in, so no
machine can write another's report. RBAC cannot limit `create` to a resource name
(Kubernetes docs "Using RBAC Authorization", Referring to resources), which is why the program
creates the ConfigMap and the machine only patches it.

The ConfigMap's data is the machine's, never the program's (`ignore_changes`), and the
ConfigMap is replaced with the machine's install anchor, so that a reinstalled machine starts
with an empty report instead of its old install's last one. Its name is fixed, so it is deleted
before its replacement is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.configmap_access import configmap_access
from ignition.status_report import CONFIGMAP_NAMESPACE, status_configmap

# On every report ConfigMap, so that the gates find them all with one label selector.
REPORT_LABEL = "stubernetes.dev/status-of"


def bootstrap_user(token_id: pulumi.Output[str]) -> pulumi.Output[str]:
    """The user a bootstrap token authenticates as (bootstrap.go: "system:bootstrap:" + id)."""
    return pulumi.Output.concat("system:bootstrap:", token_id)


@dataclass(frozen=True)
class StatusReportArgs:
    machine: str
    token_id: pulumi.Output[str]
    # The machine's install anchor: a reinstall replaces the ConfigMap with it.
    anchor: pulumi.Resource
    provider: pulumi.ProviderResource


class StatusReport(pulumi.ComponentResource):
    configmap: k8s.core.v1.ConfigMap
    role: k8s.rbac.v1.Role
    binding: k8s.rbac.v1.RoleBinding

    def __init__(
        self,
        name: str,
        args: StatusReportArgs,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("stubernetes:machine:StatusReport", name, None, opts)
        object_name = status_configmap(args.machine)
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=object_name,
            namespace=CONFIGMAP_NAMESPACE,
            labels={"app.kubernetes.io/managed-by": "stubernetes", REPORT_LABEL: args.machine},
        )
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(depends_on)
        )
        self.configmap = k8s.core.v1.ConfigMap(
            name,
            metadata=metadata,
            opts=child.merge(
                pulumi.ResourceOptions(
                    ignore_changes=["data"],
                    replace_with=[args.anchor],
                    delete_before_replace=True,
                )
            ),
        )
        self.role, self.binding = configmap_access(
            name, metadata, object_name, bootstrap_user(args.token_id), child
        )
        self.register_outputs({"configmap": object_name})
