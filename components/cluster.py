"""The cluster-wide secrets: the PKI that every controller carries and the admin kubeconfig.

Per-machine secrets (bootstrap tokens) live with their machine, so that a machine's
replacement chain stays inside that machine's component.
"""

from __future__ import annotations

import pulumi

from components.pki import ClusterPki, ClusterPkiArgs
from stackconfig import StackConfig


class Cluster(pulumi.ComponentResource):
    pki: ClusterPki

    def __init__(
        self, name: str, stack: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:cluster:Cluster", name, None, opts)
        self.pki = ClusterPki(
            name,
            ClusterPkiArgs(stack.cluster.name, stack.cluster.api_endpoint),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"admin_kubeconfig": self.pki.admin_kubeconfig})
