"""The cluster's secrets: PKI and one bootstrap token per machine, all Pulumi secrets."""

from __future__ import annotations

import pulumi

from components.pki import ClusterPki, ClusterPkiArgs
from components.token import BootstrapToken, BootstrapTokenArgs
from stackconfig import StackConfig


class Cluster(pulumi.ComponentResource):
    pki: ClusterPki
    tokens: dict[str, BootstrapToken]

    def __init__(
        self, name: str, stack: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.pki = ClusterPki(
            name,
            ClusterPkiArgs(stack.cluster.name, stack.cluster.api_endpoint),
            opts=child,
        )
        self.tokens = {
            machine.name: BootstrapToken(
                f"{name}-{machine.name}-token",
                BootstrapTokenArgs(generation=machine.generation),
                opts=child,
            )
            for machine in stack.machines
        }
        self.register_outputs({"admin_kubeconfig": self.pki.admin_kubeconfig})
