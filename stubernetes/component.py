"""A stubernetes cluster inside your own Pulumi Python program.

    from stubernetes.component import build_cluster, stack_config

    stack = stack_config({"cluster": {...}, "os": {...}, "matchbox": {...}, "admin": {...},
                          "machines": {...}})
    cluster = build_cluster(stack)
    pulumi.export("kubeconfig", cluster.kubeconfig)   # already exported; shown for the name

`stack_config` takes the values of a stack file's `stubernetes:*` keys, without the namespace
(the shape the README's stack config section shows), from a dict you build or from your own
config, and raises `ConfigError` listing every problem, one per line, as `stubernetes check`
prints them. `build_cluster` registers exactly what this project's own program registers.

What the program needs at run time lives in this checkout: the install steps' and gates'
scripts (`components/scripts/`) and its own charts (`charts/`: core, LAN, household DNS). The
project's own program runs from the checkout, so it names them relative to it; inside another
project the commands and the chart paths would be resolved from that project's directory
instead. So `build_cluster` registers a stack transformation that points every stubernetes step
(`command:local:Command`, `dir`) and the releases of its own charts (`chart`) at this checkout,
and leaves every other resource alone.

One stubernetes cluster per stack: it exports `kubeconfig`, `breakGlassKubeconfig`, `installed`,
`installedOverEarlier` and `machines`, and reads its own outputs back at its start (the engine's
`pulumi:pulumi:readStackOutputs`, components/previous.py) to tell a reinstall from a first install.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.gates import GATE_SCRIPT
from components.install_step import SCRIPTS
from components.program import build_cluster as _build_cluster
from ignition.checked_stack import checked_stack_config
from stackconfig import ConfigError, StackConfig
from stackconfig.releases import (
    CORE_CHART_PATH,
    HOUSEHOLD_DNS_CHART_PATH,
    LAN_CHART_PATH,
    LOCAL_STORAGE_CHART_PATH,
)

CHECKOUT = Path(__file__).resolve().parent.parent
COMMAND = "command:local:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"
# stubernetes's own charts, which a Release names by their path in the checkout.
LOCAL_CHARTS = {
    str(path)
    for path in (
        CORE_CHART_PATH,
        LOCAL_STORAGE_CHART_PATH,
        LAN_CHART_PATH,
        HOUSEHOLD_DNS_CHART_PATH,
    )
}

__all__ = ["CHECKOUT", "Cluster", "ConfigError", "StackConfig", "build_cluster", "stack_config"]


def stack_config(values: Mapping[str, Any]) -> StackConfig:
    """Validate `values` (`{"cluster": {...}, "machines": {...}, ...}`) as a stack config, with
    the checks `stubernetes check` and the program make (snippets over the program's own files
    included). The values come from your program, not from a committed stack file, so every
    one counts as held as a secret: keep the secret ones in Pulumi secrets on your side."""
    return checked_stack_config(values, secure_paths=tuple(values))


@dataclass(frozen=True)
class Cluster:
    """What the cluster exports, for your own program to use."""

    kubeconfig: pulumi.Output[Any]
    break_glass_kubeconfig: pulumi.Output[Any]
    installed: pulumi.Output[Any]
    machines: pulumi.Output[Any]


def _ours(command: object) -> bool:
    text = str(command or "")
    return text.startswith((f"bash {SCRIPTS}/", f"bash {GATE_SCRIPT}"))


def in_checkout(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    """Point stubernetes's own steps and charts at this checkout; nothing else changes."""
    props = dict(args.props)
    ours = _ours(props.get("create")) or _ours(props.get("delete"))
    if args.type_ == COMMAND and ours and not props.get("dir"):
        props["dir"] = str(CHECKOUT)
    elif args.type_ == RELEASE and props.get("chart") in LOCAL_CHARTS:
        props["chart"] = str(CHECKOUT / str(props["chart"]))
    else:
        return None
    return pulumi.ResourceTransformationResult(props, args.opts)


def build_cluster(stack: StackConfig) -> Cluster:
    """Register the whole cluster in the current Pulumi program."""
    pulumi.runtime.register_stack_transformation(in_checkout)
    _build_cluster(stack, CHECKOUT)
    return Cluster(
        kubeconfig=_own_output("kubeconfig"),
        break_glass_kubeconfig=_own_output("breakGlassKubeconfig"),
        installed=_own_output("installed"),
        machines=_own_output("machines"),
    )


def _own_output(name: str) -> pulumi.Output[Any]:
    """A stack output the cluster exported, read back from the root stack's outputs."""
    root = pulumi.runtime.settings.get_root_resource()
    outputs: dict[str, Any] = getattr(root, "outputs", {}) if root is not None else {}
    return pulumi.Output.from_input(outputs.get(name))
