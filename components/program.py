"""The whole program: machines on Matchbox, the cluster's secrets, gates, then the releases."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_matchbox as matchbox

from components.cluster import Cluster
from components.config import load_stack_config
from components.gates import ReadinessGate, ReadinessGateArgs
from components.machine import MachineArgs, MachineResources, matchbox_id
from components.previous import INSTALLED_OUTPUT, PreviousState
from components.releases import chart_version, helm_release
from components.status_report import StatusReport, StatusReportArgs
from components.token import bootstrap_token_secret
from stackconfig import StackConfig
from stackconfig.releases import CORE_CHART_PATH, core_release, system_releases


def matchbox_provider(stack: StackConfig) -> matchbox.Provider:
    settings = stack.matchbox
    return matchbox.Provider(
        "matchbox",
        endpoint=settings.rpc_endpoint,
        client_cert=pulumi.Output.secret(settings.client_cert),
        client_key=pulumi.Output.secret(settings.client_key),
        ca=pulumi.Output.secret(settings.ca_cert),
    )


def build_cluster(stack: StackConfig, project_dir: Path = Path()) -> None:
    name = stack.cluster.name
    cluster = Cluster(name, stack)
    material = cluster.pki.material
    kubeconfig = cluster.pki.admin_kubeconfig
    provider = matchbox_provider(stack)
    previous = PreviousState(parent=cluster)
    machines = {
        machine.name: MachineResources(
            matchbox_id(stack, machine),
            MachineArgs(
                stack=stack,
                machine=machine,
                material=material,
                kubeconfig=kubeconfig,
                provider=provider,
                previous=previous,
            ),
        )
        for machine in stack.machines
    }
    groups: list[pulumi.Resource] = [m.group for m in machines.values()]
    node_names = [machine.name for machine in stack.machines]
    gates = stack.gates

    kubernetes = k8s.Provider(
        "cluster",
        kubeconfig=kubeconfig,
        # Only a different cluster replaces the provider (and with it every release); a renewed
        # admin certificate in the kubeconfig is an update.
        cluster_identifier=f"stubernetes-{name}",
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    # The API server comes with the init controller alone; every machine's token is added as
    # soon as it answers, the init controller's too: kubeadm init does not need it, but a
    # reinstalled or accidentally network-booted init controller joins its cluster with it.
    api = ReadinessGate(
        f"{name}-api-server",
        ReadinessGateArgs(
            "api", [], kubeconfig, gates.registered_timeout_seconds, gates.poll_seconds
        ),
        depends_on=[machines[stack.init_controller.name].group],
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    for machine in stack.machines:
        resources = machines[machine.name]
        # A machine that founds the cluster does not need its token to come up, and on a rebuild
        # the old API server is gone until it is back: its token waits for it.
        founding = [resources.rejoined] if stack.bootstraps_cluster(machine) else []
        bootstrap_token_secret(
            f"{name}-{machine.name}-bootstrap-token",
            machine.name,
            resources.token,
            kubernetes,
            parent=resources,
            depends_on=[api.command, *founding],
        )
        # Where the machine reports its setup status, writable with its token alone.
        StatusReport(
            f"{name}-{machine.name}-status",
            StatusReportArgs(machine.name, resources.token.token_id, resources.anchor, kubernetes),
            depends_on=[api.command, *founding],
            opts=pulumi.ResourceOptions(parent=resources),
        )
    registered = ReadinessGate(
        f"{name}-registered",
        ReadinessGateArgs(
            "registered",
            node_names,
            kubeconfig,
            gates.registered_timeout_seconds,
            gates.poll_seconds,
        ),
        # Not on the token Secrets: a new machine's Secret must not change this shared gate.
        # The gate polls until the machines joined, which they can only do with their tokens.
        depends_on=[*groups, api.command],
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    core = helm_release(
        core_release(stack, chart_version(project_dir / CORE_CHART_PATH)),
        kubernetes,
        registered.command,
        parent=cluster,
    )
    ready = ReadinessGate(
        f"{name}-ready",
        ReadinessGateArgs(
            "ready",
            node_names,
            kubeconfig,
            gates.ready_timeout_seconds,
            gates.poll_seconds,
        ),
        # Nodes turn Ready only once the pod network (in the core release) runs.
        depends_on=[*groups, core],
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    for spec in system_releases(stack):
        gate = ready.command if spec.after == "ready" else registered.command
        helm_release(spec, kubernetes, gate, parent=cluster)

    pulumi.export("kubeconfig", kubeconfig)
    # system:masters, outside RBAC: for when RBAC itself is broken. Keep it out of daily use.
    pulumi.export("breakGlassKubeconfig", cluster.pki.break_glass_kubeconfig)
    # Known only once each machine's install chain has finished; read back by PreviousState.
    pulumi.export(
        INSTALLED_OUTPUT,
        {
            name: pulumi.Output.all(m.rejoined.stdout, m.anchor.hex).apply(lambda v: v[1])
            for name, m in machines.items()
        },
    )
    pulumi.export(
        "machines",
        {
            m.name: {"mac": m.mac, "role": m.role, "matchbox_id": matchbox_id(stack, m)}
            for m in stack.machines
        },
    )


def pulumi_program() -> None:
    """The whole program: what `__main__.py` runs and what an Automation API inline program
    runs, so the real engine's tests exercise exactly this code."""
    build_cluster(load_stack_config())
