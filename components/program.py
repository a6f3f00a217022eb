"""The whole program: machines on Matchbox, the cluster's secrets, gates, then the releases."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_matchbox as matchbox

from components.cluster import Cluster
from components.cluster_facts import read_cluster_facts, say_backups
from components.config import load_stack_config
from components.gates import ReadinessGate, ReadinessGateArgs
from components.machine import matchbox_id
from components.machine_steps import (
    ANCHOR,
    API_GATE,
    API_GATE_AFTER,
    GATES_AFTER,
    JOINS,
    KUBEADM_CERTS_RBAC,
    MEMBER,
    SERVED,
    UPGRADES,
)
from components.previous import (
    CLUSTER_EXISTS_OUTPUT,
    INSTALLED_OUTPUT,
    REINSTALLED_OUTPUT,
    PreviousState,
)
from components.releases import chart_version, helm_release
from components.removals import refuse_unsafe_removals
from components.step_wiring import ClusterInputs, InCluster, MachineSteps
from components.token import kubeadm_certs_rbac
from components.upgrade_step import announce_upgrade, upgrade_command
from stackconfig import StackConfig
from stackconfig.releases import CORE_CHART_PATH, core_release, system_releases
from stackconfig.upgrade_rules import KUBERNETES_RELEASE_OUTPUT, previous_release


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
    # What the running cluster says: a release it cannot take is refused with the rest.
    facts = read_cluster_facts(previous)
    refuse_unsafe_removals(stack, previous.outputs, facts)
    say_backups(stack, facts)
    cluster = Cluster(name, stack)
    kubeconfig = cluster.pki.admin_kubeconfig
    # Every machine's steps, as components/machine_steps.py declares them, stage by stage.
    machines = MachineSteps(
        ClusterInputs(stack, cluster.pki.material, kubeconfig, matchbox_provider(stack), previous)
    )
    machines.make(SERVED)
    node_names = [machine.name for machine in stack.machines]
    gates = stack.gates

    # The API server comes with the init controller alone; every machine's token is added as
    # soon as it answers (the stage `joins`).
    api = ReadinessGate(
        f"{name}-api-server",
        ReadinessGateArgs(
            "api", [], kubeconfig, gates.registered_timeout_seconds, gates.poll_seconds
        ),
        depends_on=[machines.step(stack.init_controller, API_GATE_AFTER)],
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
    in_cluster = InCluster(
        kubernetes, {API_GATE.what: [api.command], KUBEADM_CERTS_RBAC.what: certs_rbac}
    )
    machines.make(JOINS, in_cluster)
    machines.make(MEMBER, in_cluster)
    # One machine at a time, when the release changes (components/upgrade_step.py).
    machines.make(UPGRADES, in_cluster)
    announce_upgrade(
        previous_release(previous.outputs),
        stack.cluster.kubernetes_release,
        [(c.machine.name, upgrade_command(stack, c.machine)) for c in machines.in_order(UPGRADES)],
    )
    # Every machine's Matchbox group and membership (after its install chain).
    every_machine = machines.every(GATES_AFTER)
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
        depends_on=[*every_machine, api.command],
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
        depends_on=[*every_machine, core],
        opts=pulumi.ResourceOptions(parent=cluster),
    )
    installed: dict[str, pulumi.Resource] = {}
    for spec in system_releases(stack):
        gate = ready.command if spec.after == "ready" else registered.command
        # After the releases it needs (their CRDs, controllers, addresses), where enabled.
        needed = [installed[name] for name in spec.needs if name in installed]
        installed[spec.name] = helm_release(spec, kubernetes, gate, parent=cluster, needs=needed)

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
    rejoined = {m: machines.output(m, "rejoin.stdout") for m in node_names}
    anchors = {m: machines.output(m, f"{ANCHOR}.hex") for m in node_names}
    pulumi.export(
        INSTALLED_OUTPUT,
        {m: pulumi.Output.all(rejoined[m], anchors[m]).apply(lambda v: v[1]) for m in node_names},
    )
    pulumi.export(
        REINSTALLED_OUTPUT,
        {
            m: pulumi.Output.all(rejoined[m], previous.installed_before(m, anchors[m])).apply(
                lambda v: v[1] == "true"
            )
            for m in node_names
        },
    )
    # Read back by the next update's release rules (stackconfig/upgrade_rules.py) and upgrade
    # steps: the release every machine runs once this update has completed. Known only once
    # every machine's upgrade step has finished: the engine saves a plain output even when a
    # step fails (the real engine recorded 1.36.4 after a rollout stopped at its second
    # machine: tests/engine/test_engine_stack.py 5f), while an output that waits on a failed
    # step is never registered, and the last completed update's value stays.
    upgraded = [machines.output(m, "upgrade.stdout") for m in node_names]
    release = stack.cluster.kubernetes_release
    pulumi.export(KUBERNETES_RELEASE_OUTPUT, pulumi.Output.all(*upgraded).apply(lambda _: release))
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
