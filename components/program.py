"""The whole program: machines on Matchbox, the cluster's secrets, gates, then the releases."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_matchbox as matchbox

from components.cluster import Cluster
from components.config import load_stack_config
from components.gates import ReadinessGate, ReadinessGateArgs
from components.machine import BootArgs, MachineArgs, MachineResources, matchbox_id
from components.membership import membership_steps
from components.previous import (
    CLUSTER_EXISTS_OUTPUT,
    INSTALLED_OUTPUT,
    REINSTALLED_OUTPUT,
    PreviousState,
)
from components.releases import chart_version, helm_release
from components.removals import refuse_unsafe_removals
from components.status_report import StatusReport, StatusReportArgs
from components.token import bootstrap_token_secret, kubeadm_certs_rbac
from ignition.kubeadm import founds_cluster
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
    previous = PreviousState()
    refuse_unsafe_removals(stack, previous.outputs)
    cluster = Cluster(name, stack)
    material = cluster.pki.material
    kubeconfig = cluster.pki.admin_kubeconfig
    provider = matchbox_provider(stack)
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
    kubernetes = k8s.Provider(
        "cluster",
        kubeconfig=kubeconfig,
        # Only a different cluster replaces the provider (and with it every release); a renewed
        # admin certificate in the kubeconfig is an update.
        cluster_identifier=f"stubernetes-{name}",
        # Not before the API server answers: pulumi-kubernetes reads the server's schema when
        # it is configured and, finding no server, keeps the cluster unreachable for the whole
        # update (every resource through it then fails; pulumi/pulumi-kubernetes
        # provider/pkg/provider/provider.go Configure, `clusterUnreachable`).
        opts=pulumi.ResourceOptions(parent=cluster, depends_on=[api.command]),
    )
    certs_rbac = kubeadm_certs_rbac(name, kubernetes, parent=cluster, depends_on=[api.command])
    # Controllers join one at a time, in the stack's order: the kubeadm-certs Secret has one
    # name, so each upload waits until the controller before has joined with its own.
    previous_join: pulumi.Resource | None = None
    for machine in stack.machines:
        resources = machines[machine.name]

        def token_secret(
            after: list[pulumi.Resource], machine: str = machine.name
        ) -> pulumi.Resource:
            return bootstrap_token_secret(
                f"{name}-{machine}-bootstrap-token",
                machine,
                machines[machine].token,
                kubernetes,
                parent=machines[machine],
                depends_on=[api.command, *after],
            )

        founding: list[pulumi.Resource] = []
        if founds_cluster(stack, machine, previous.cluster_exists):
            # A machine that founds the cluster does not need its token to come up, and on a
            # rebuild the old API server is gone until it is back: its token waits for it. Its
            # certificates' upload is a no-op (its Ignition has the CA material).
            resources.boot(BootArgs(None, certs_rbac, previous_join))
            founding = [resources.rejoined]
            token_secret(founding)
        else:
            # Every other machine's token is there before its join needs it (and before a
            # controller's upload, which its token's Secret owns).
            resources.boot(BootArgs(token_secret([]), certs_rbac, previous_join))
        if resources.control_plane_joined is not None:
            previous_join = resources.control_plane_joined
        # Where the machine reports its setup status, writable with its token alone.
        StatusReport(
            f"{name}-{machine.name}-status",
            StatusReportArgs(machine.name, resources.token.token_id, resources.anchor, kubernetes),
            depends_on=[api.command, *founding],
            opts=pulumi.ResourceOptions(parent=resources),
        )
    # After each machine's install chain (boot() above made its rejoin step).
    members = membership_steps(stack, kubeconfig, machines)
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
        # On the membership steps, so that a destroy deletes the releases (after this gate)
        # before any machine leaves the cluster: the engine deletes dependents first.
        depends_on=[*groups, api.command, *members.values()],
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
        depends_on=[*groups, core, *members.values()],
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    for spec in system_releases(stack):
        gate = ready.command if spec.after == "ready" else registered.command
        helm_release(spec, kubernetes, gate, parent=cluster)

    pulumi.export("kubeconfig", kubeconfig)
    # system:masters, outside RBAC: for when RBAC itself is broken. Keep it out of daily use.
    pulumi.export("breakGlassKubeconfig", cluster.pki.break_glass_kubeconfig)
    # Read back by the next update: once the API gate has passed in an update that completed,
    # the cluster exists, and no machine's Ignition founds it (or carries its CA keys) again
    # unless the stack allows a rebuild of its only controller (ignition.kubeadm.founds_cluster).
    # Once true it stays true, a plain value.
    pulumi.export(
        CLUSTER_EXISTS_OUTPUT,
        True if previous.cluster_exists else api.command.stdout.apply(lambda _: True),
    )
    # Known only once each machine's install chain has finished; read back by PreviousState.
    pulumi.export(
        INSTALLED_OUTPUT,
        {
            name: pulumi.Output.all(m.rejoined.stdout, m.anchor.hex).apply(lambda v: v[1])
            for name, m in machines.items()
        },
    )
    pulumi.export(
        REINSTALLED_OUTPUT,
        {
            name: pulumi.Output.all(m.rejoined.stdout, m.installed_before).apply(
                lambda v: v[1] == "true"
            )
            for name, m in machines.items()
        },
    )
    pulumi.export(
        "machines",
        {
            m.name: {
                "mac": m.mac,
                "role": m.role,
                "matchbox_id": matchbox_id(stack, m),
                # Read back by the next update's removal rules (stackconfig/removal.py).
                "generation": m.generation,
                "init": m.init,
            }
            for m in stack.machines
        },
    )


def pulumi_program() -> None:
    """The whole program: what `__main__.py` runs and what an Automation API inline program
    runs, so the real engine's tests exercise exactly this code."""
    build_cluster(load_stack_config())
