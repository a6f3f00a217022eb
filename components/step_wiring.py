"""Every machine's steps, made from their declaration (components/machine_steps.py).

`MachineSteps` holds one chain per machine: its role, its component, the steps made so far and
their outputs. `make(stage)` makes every machine's rows of that stage, machine by machine in the
order the stage says, row by row in the order its role's table says; a row is given exactly the
outputs it reads, and waits for exactly the steps it names, on its machine and elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import machine_steps
from components.machine import MAKERS, MachineResources, StepMaking, matchbox_id
from components.machine_steps import (
    ANCHOR,
    CLUSTER,
    KUBECONFIG,
    MATERIAL,
    PREVIOUS_CONTROLLER,
    PREVIOUS_IN_STAGE,
    STAGES,
    Elsewhere,
    Role,
    Stage,
    Step,
    resource_name,
    role_of,
)
from components.previous import PreviousState
from components.step_environments import StepInputs
from ignition import ClusterMaterial
from stackconfig import Machine, StackConfig


@dataclass(frozen=True)
class ClusterInputs:
    """What every machine's steps are made with."""

    stack: StackConfig
    material: pulumi.Output[ClusterMaterial]
    kubeconfig: pulumi.Output[str]
    matchbox: pulumi.ProviderResource
    previous: PreviousState


@dataclass(frozen=True)
class InCluster:
    """What the steps after the API gate are made with: the cluster's provider, and the
    cluster's resources a step may wait for, by their name in the declaration."""

    kubernetes: pulumi.ProviderResource
    waits: Mapping[str, Sequence[pulumi.Resource]]


@dataclass
class MachineChain:
    machine: Machine
    role: Role
    component: MachineResources
    stack: StackConfig
    made: dict[str, pulumi.Resource] = field(default_factory=dict)
    # By `<step>.<output>`.
    outputs: dict[str, pulumi.Output[Any]] = field(default_factory=dict)

    @property
    def steps(self) -> tuple[Step, ...]:
        # Read at each use: the declaration is the one place a machine's steps come from.
        return machine_steps.steps_of(self.stack, self.role)


# The order of a stage with the controllers first.
MEMBER_ORDER = Stage("controllers first", controllers_first=True, why="")


class MachineSteps:
    def __init__(self, inputs: ClusterInputs) -> None:
        self.inputs = inputs
        stack = inputs.stack
        self.chains = {
            machine.name: MachineChain(
                machine,
                role_of(stack, machine, inputs.previous.cluster_exists),
                MachineResources(matchbox_id(stack, machine)),
                stack,
            )
            for machine in stack.machines
        }

    def make(self, stage: Stage, cluster: InCluster | None = None) -> None:
        """Make every machine's steps of `stage`."""
        for chain in self.in_order(stage):
            for step in chain.steps:
                if step.stage == stage:
                    self._make(chain, step, cluster)
            if stage == STAGES[-1]:
                chain.component.close(chain.outputs)

    def in_order(self, stage: Stage) -> list[MachineChain]:
        chains = list(self.chains.values())
        if stage.init_first:
            init = self.inputs.stack.init_controller
            first = [c for c in chains if c.machine == init]
            rest = self.in_order(MEMBER_ORDER)
            return first + [c for c in rest if c.machine != init]
        if stage.controllers_first:
            return [c for c in chains if c.machine.is_controller] + [
                c for c in chains if not c.machine.is_controller
            ]
        return chains

    def step(self, machine: Machine, name: str) -> pulumi.Resource:
        return self.chains[machine.name].made[name]

    def every(self, names: Sequence[str]) -> list[pulumi.Resource]:
        """These steps of every machine, machine by machine."""
        return [chain.made[name] for chain in self.chains.values() for name in names]

    def output(self, machine: str, read: str) -> pulumi.Output[Any]:
        return self.chains[machine].outputs[read]

    def _make(self, chain: MachineChain, step: Step, cluster: InCluster | None) -> None:
        inputs = self.inputs
        reads = {read: self._read(chain, read) for read in step.reads}
        waits = [chain.made[name] for name in step.after]
        waits += [r for wait in step.elsewhere for r in self._elsewhere(chain, step, wait, cluster)]
        made = MAKERS[step.kind](
            StepMaking(
                name=resource_name(matchbox_id(inputs.stack, chain.machine), step),
                step=step,
                inputs=StepInputs(inputs.stack, chain.machine, chain.role, inputs.previous, reads),
                component=chain.component,
                anchor=chain.made.get(ANCHOR),
                waits=waits,
                matchbox=inputs.matchbox,
                kubernetes=cluster.kubernetes if cluster is not None else None,
            )
        )
        chain.made[step.name] = made.resource
        chain.outputs.update({f"{step.name}.{key}": value for key, value in made.outputs.items()})

    def _read(self, chain: MachineChain, read: str) -> pulumi.Output[Any]:
        cluster: dict[str, pulumi.Output[Any]] = {
            KUBECONFIG: self.inputs.kubeconfig,
            MATERIAL: self.inputs.material,
        }
        return cluster[read] if read in cluster else chain.outputs[read]

    def _elsewhere(
        self, chain: MachineChain, step: Step, wait: Elsewhere, cluster: InCluster | None
    ) -> list[pulumi.Resource]:
        if wait.of == CLUSTER:
            if cluster is None:
                raise ValueError(f"{wait.what}: waited for before it is made")
            return list(cluster.waits[wait.what])
        if wait.of == PREVIOUS_IN_STAGE:
            order = [c.machine for c in self.in_order(step.stage)]
            before = order[: order.index(chain.machine)][-1:]
            return [self.chains[other.name].made[wait.what] for other in before]
        controllers = list(self.inputs.stack.controllers)
        if wait.of == PREVIOUS_CONTROLLER:
            others = controllers[: controllers.index(chain.machine)][-1:]
        else:
            others = controllers[-1:]
        return [self.chains[other.name].made[wait.what] for other in others]
