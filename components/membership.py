"""A machine's membership of the cluster: a step that lives as long as the machine is in the stack.

Created once, when the machine has first joined (after its install chain's rejoin wait), it
prints that the machine is a member. An update re-runs nothing (install_step's KEEP_LAST_OUTPUT):
it only records the step's new inputs, a renewed kubeconfig or a new list of controllers. Its
`delete` is what takes the machine out of the cluster, components/scripts/remove-machine: the
drain, the Node's deletion and a controller's etcd member. The command provider runs `delete`
with the inputs recorded in the state by the last update (pulumi/pulumi-command
provider/pkg/provider/local/commandController.go, `Delete`: `req.State`'s inputs), so it runs
when the machine's entry leaves the stack, and in `pulumi destroy`, with the kubeconfig and
controllers of the last update that had it.

It is outside the install chain on purpose: no `replace_with` the install anchor and no
generation among its triggers. A reinstall replaces the chain create-before-delete, so its old
links are deleted after the new ones rejoined; a membership step in the chain would drain and
delete the freshly rejoined machine. For the same reason it has no triggers: a replacement would
create its successor and then run the old one's delete on a machine that stays. Every change
of its inputs (a role, a kubeconfig, the controllers) is an in-place update that only records
them for the delete.

The controllers' membership steps depend on each other in the stack's order, and every worker's
on the last controller's (components/machine_steps.py, the stage `member`): the engine deletes
dependents before what they depend on, so in a `pulumi destroy` the workers leave first (while
every controller still serves the API), then the controllers one at a time, the first in the
stack last (etcd asks for one membership change at a time,
etcd.io/docs/v3.6/op-guide/runtime-configuration/); remove-machine leaves that last one alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.install_step import KEEP_LAST_OUTPUT
from stackconfig import Machine, StackConfig


def membership_step(
    name: str,
    stack: StackConfig,
    machine: Machine,
    delete: str,
    environment: dict[str, pulumi.Input[str]],
    after: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> command.local.Command:
    """The step whose `delete` takes `machine` out of the cluster, created after `after`."""
    said = f"{machine.name} ({machine.role}) is a member of the cluster {stack.cluster.name}"
    return command.local.Command(
        name,
        create=f"echo '{said}'",
        update=KEEP_LAST_OUTPUT,
        delete=delete,
        environment=environment,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )
