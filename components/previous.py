"""What the stack knew at the end of its last successful update: its own previous outputs.

A machine's install steps must know whether that machine ever joined the cluster (a reinstall
must not take an unanswered question for a first install), and only the stack's own history can
say so. The program reads its own outputs through a StackReference to itself; the engine reads
them from the last checkpoint, whose outputs are those of the last update that completed. A new
stack has none, so everything is a first install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

# The stack output that lists the machines that joined, with the install anchor that did it.
INSTALLED_OUTPUT = "installed"


def own_stack_name() -> str:
    organization = pulumi.get_organization() or "organization"
    return f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}"


class PreviousState:
    """The stack's previous outputs, read once per program run."""

    def __init__(self, parent: pulumi.Resource | None = None) -> None:
        reference = pulumi.StackReference(
            own_stack_name(), opts=pulumi.ResourceOptions(parent=parent)
        )
        self._installed: pulumi.Output[Mapping[str, Any]] = reference.get_output(
            INSTALLED_OUTPUT
        ).apply(lambda value: value if isinstance(value, Mapping) else {})

    def installed_before(self, machine: str) -> pulumi.Output[str]:
        """'true' when `machine` had joined the cluster by the end of an earlier update."""
        return self._installed.apply(lambda installed: str(machine in installed).lower())
