"""A machine's upgrade step: a local Command that runs once per release and install.

Like an install step (components/install_step.py) its `update` re-runs nothing, and a new
install (the anchor, the generation) replaces it; unlike one, a new Kubernetes release also
replaces it (`triggers`: the command provider replaces a Command whose triggers change,
pulumi/pulumi-command provider/pkg/provider/local/command.go `Triggers` replaceOnChanges). Its
script (components/scripts/upgrade-machine) upgrades only a machine whose Node's kubelet runs an
older release; a new install boots the stack's release from its Ignition, and its step finds
nothing to do. Its inputs hold nothing read from the previous outputs, so an update that changes
nothing changes no upgrade step.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.install_step import KEEP_LAST_OUTPUT, SCRIPTS
from ignition.node_binaries import download_url, node_downloads
from stackconfig import Machine, StackConfig
from stackconfig.pinned_digests import KUBERNETES_BINARIES


def binaries_line(stack: StackConfig) -> str:
    """`name url sha256` for each Kubernetes binary of the stack's release, `;`-separated:
    what the machine downloads and checks (the same URLs and digests as its Ignition's)."""
    return ";".join(
        f"{d.name} {download_url(stack, d)} {d.sha256}"
        for d in node_downloads(stack)
        if d.name in KUBERNETES_BINARIES
    )


def upgrade_command(stack: StackConfig, machine: Machine) -> str:
    """kubeadm's order: `upgrade apply` on one controller (the init controller), `upgrade node`
    on every other machine (kubernetes.io/docs/tasks/administer-cluster/kubeadm/
    kubeadm-upgrade/)."""
    return "apply" if machine == stack.init_controller else "node"


def upgrade_step(
    name: str,
    script: str,
    environment: dict[str, pulumi.Input[str]],
    generation: int,
    release: str,
    anchor: pulumi.Resource,
    after: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> command.local.Command:
    return command.local.Command(
        name,
        create=f"bash {SCRIPTS}/{script}",
        update=KEEP_LAST_OUTPUT,
        environment=environment,
        triggers=[generation, release],
        opts=pulumi.ResourceOptions(parent=parent, replace_with=[anchor], depends_on=list(after)),
    )


def upgrade_order_text(order: Sequence[tuple[str, str]]) -> str:
    """`c1 (kubeadm upgrade apply) -> c2 (kubeadm upgrade node) -> ...`, one machine at a time."""
    return " -> ".join(f"{machine} (kubeadm upgrade {how})" for machine, how in order)


def upgrade_plan_text(running: str | None, release: str, order: Sequence[tuple[str, str]]) -> str:
    """What an update that changes the release will do, machine by machine, or "" when it
    changes none. `order`: (machine, kubeadm upgrade command) in the steps' order."""
    if running is None or running == release:
        return ""
    steps = upgrade_order_text(order)
    return (
        f"Kubernetes {running} -> {release}, one machine at a time, each drained, upgraded by "
        f"its own upgrade service and uncordoned: {steps}"
    )


def announce_upgrade(running: str | None, release: str, order: Sequence[tuple[str, str]]) -> None:
    """Say the plan in `pulumi preview` and `pulumi up` (an info diagnostic of the stack)."""
    text = upgrade_plan_text(running, release, order)
    if text:
        pulumi.log.info(text)
