"""Where a machine's upgrade is asked for and reported: a ConfigMap its own kubelet reads and
writes.

Per machine, in kube-system: the ConfigMap `stubernetes-upgrade-<machine>`, whose data the
upgrade step (components/scripts/upgrade-machine) fills with the release the machine must run and
where its binaries come from, and the machine's upgrade service (ignition/files/upgrade/) fills
with its progress; a Role that allows get, update and patch of exactly that ConfigMap
(`resourceNames`); and a RoleBinding of it to the user the machine's kubelet authenticates as,
`system:node:<machine>` (the Node's name is the machine's: ignition/kubeadm.py nodeRegistration;
Kubernetes docs "Using Node Authorization": the Node authorizer has no opinion on ConfigMaps no
pod of the node uses, kubernetes plugin/pkg/auth/authorizer/node/node_authorizer.go "no
relationship found", so RBAC decides, "Using RBAC Authorization", Referring to resources;
tests/real/test_upgrade_channel_real.py checks it on a real API server).
Unlike the status report's bootstrap token, the kubelet's credentials do not expire: the
kubelet rotates its client certificate (kubeadm enables rotateCertificates).

The data is never the program's (`ignore_changes`): the program creates the ConfigMap empty,
and only the upgrade step, when it is the machine's turn, writes it. A new install leaves it as
it is: the machine starts at the release its Ignition names, and its service finds nothing newer
to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.configmap_access import configmap_access
from ignition.upgrade import UPGRADE_CONFIGMAP_NAMESPACE, upgrade_configmap

# On every upgrade ConfigMap, so that one label selector finds them all.
UPGRADE_LABEL = "stubernetes.dev/upgrade-of"


def node_user(machine: str) -> str:
    """The user a Node's kubelet authenticates as (kubeadm: system:node:<node name>)."""
    return f"system:node:{machine}"


@dataclass(frozen=True)
class UpgradeChannelArgs:
    machine: str
    provider: pulumi.ProviderResource


class UpgradeChannel(pulumi.ComponentResource):
    configmap: k8s.core.v1.ConfigMap
    role: k8s.rbac.v1.Role
    binding: k8s.rbac.v1.RoleBinding

    def __init__(
        self,
        name: str,
        args: UpgradeChannelArgs,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("stubernetes:machine:UpgradeChannel", name, None, opts)
        object_name = upgrade_configmap(args.machine)
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=object_name,
            namespace=UPGRADE_CONFIGMAP_NAMESPACE,
            labels={"app.kubernetes.io/managed-by": "stubernetes", UPGRADE_LABEL: args.machine},
        )
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(depends_on)
        )
        self.configmap = k8s.core.v1.ConfigMap(
            name,
            metadata=metadata,
            opts=child.merge(pulumi.ResourceOptions(ignore_changes=["data"])),
        )
        self.role, self.binding = configmap_access(
            name, metadata, object_name, node_user(args.machine), child
        )
        self.register_outputs({"configmap": object_name})
