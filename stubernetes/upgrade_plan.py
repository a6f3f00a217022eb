"""The rolling upgrade as the program registered it: each machine's upgrade step, in the order
their dependencies chain them, with the kubeadm command each machine runs.

Read from the registrations (what `pulumi preview` would show), not from the stack, so the line
`stubernetes check` prints is the plan the program made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.upgrade_step import upgrade_order_text, upgrade_plan_text
from stackconfig.upgrade_rules import KUBERNETES_RELEASE_OUTPUT
from stubernetes.mocks import Registration

UPGRADE_SUFFIX = "-upgrade"
COMMAND = "command:local:Command"


def upgrade_chain(registrations: Sequence[Registration]) -> list[Registration]:
    """The upgrade steps, first to last: each one waits for the one before it."""
    steps = {
        r.urn: r
        for r in registrations
        if r.type == COMMAND and r.name.endswith(UPGRADE_SUFFIX) and "KUBEADM_UPGRADE" in _env(r)
    }
    after = {urn: [d for d in r.dependencies if d in steps] for urn, r in steps.items()}
    firsts = [urn for urn, before in after.items() if not before]
    if len(firsts) > 1 or any(len(before) > 1 for before in after.values()):
        raise ValueError("the upgrade steps do not form one chain")
    chain: list[Registration] = []
    following = {before[0]: urn for urn, before in after.items() if before}
    urn = firsts[0] if firsts else None
    while urn is not None:
        chain.append(steps[urn])
        urn = following.get(urn)
    if len(chain) != len(steps):
        raise ValueError("the upgrade steps do not form one chain")
    return chain


def _env(registration: Registration) -> dict[str, Any]:
    """The step's environment, the names of its variables as sent (the kubeconfig in it makes
    it secret as a whole in `inputs`; `inputs_in_place` marks only that variable)."""
    environment = registration.inputs_in_place.get("environment")
    return environment if isinstance(environment, dict) else {}


def upgrade_order(registrations: Sequence[Registration]) -> list[tuple[str, str]]:
    """(machine, its kubeadm upgrade command), in the steps' order."""
    return [(_env(r)["MACHINE"], _env(r)["KUBEADM_UPGRADE"]) for r in upgrade_chain(registrations)]


def plan_line(registrations: Sequence[Registration]) -> str:
    """`c1 (kubeadm upgrade apply) -> c2 (kubeadm upgrade node) -> ...`, one machine at a time."""
    return upgrade_order_text(upgrade_order(registrations))


def bump_text(registrations: Sequence[Registration], previous: dict[str, Any], release: str) -> str:
    """The line `pulumi preview` prints for a bump from the release the previous outputs record
    (components/upgrade_step.py announce_upgrade), or "" when the release is the same."""
    running = previous.get(KUBERNETES_RELEASE_OUTPUT)
    order = upgrade_order(registrations)
    return upgrade_plan_text(running if isinstance(running, str) else None, release, order)
