"""Readiness gates: `pulumi up` goes on to the releases only once the machines are there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_command as command

# Relative to the project directory, where Pulumi runs the program and its local commands;
# an absolute path would make the recorded inputs differ between clones.
GATE_SCRIPT = "components/scripts/wait-for-nodes"


@dataclass(frozen=True)
class ReadinessGateArgs:
    condition: Literal["api", "registered", "ready"]
    nodes: Sequence[str]
    kubeconfig: pulumi.Output[str]
    timeout_seconds: int
    poll_seconds: int


class ReadinessGate(pulumi.ComponentResource):
    command: command.local.Command

    def __init__(
        self,
        name: str,
        args: ReadinessGateArgs,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("stubernetes:cluster:ReadinessGate", name, None, opts)
        self.command = command.local.Command(
            name,
            create=f"bash {GATE_SCRIPT} {args.condition}",
            environment={
                "KUBECONFIG_CONTENT": args.kubeconfig,
                "NODES": " ".join(args.nodes),
                "TIMEOUT_SECONDS": str(args.timeout_seconds),
                "POLL_SECONDS": str(args.poll_seconds),
            },
            # Run again when the set of machines changes; a reinstall has its own wait.
            triggers=list(args.nodes),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.register_outputs({"stdout": self.command.stdout})
