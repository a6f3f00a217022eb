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
from stackconfig import StackConfig
from stackconfig.pinned_digests import KUBERNETES_BINARIES


def binaries_line(stack: StackConfig) -> str:
    """`name url sha256` for each Kubernetes binary of the stack's release, `;`-separated:
    what the machine downloads and checks (the same URLs and digests as its Ignition's)."""
    return ";".join(
        f"{d.name} {download_url(stack, d)} {d.sha256}"
        for d in node_downloads(stack)
        if d.name in KUBERNETES_BINARIES
    )


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
