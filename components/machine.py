"""One machine: its Ignition (a secret), a Matchbox profile that installs it, a group by MAC."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumiverse_matchbox as matchbox

from ignition import ClusterMaterial, machine_ignition_json
from ignition.pxe import fcos_install_boot
from ignition.validate import check_structure
from stackconfig import Machine, StackConfig


def matchbox_id(stack: StackConfig, machine: Machine) -> str:
    """A Matchbox object's id is its name, and the Ignition file is `<id>.ign`."""
    return f"{stack.cluster.name}-{machine.name}"


@dataclass(frozen=True)
class MachineArgs:
    stack: StackConfig
    machine: Machine
    material: pulumi.Output[ClusterMaterial]
    token: pulumi.Output[str]
    provider: pulumi.ProviderResource


class MachineResources(pulumi.ComponentResource):
    ignition: pulumi.Output[str]
    profile: matchbox.Profile
    group: matchbox.Group

    def __init__(
        self, name: str, args: MachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:machine:Machine", name, None, opts)
        stack, machine = args.stack, args.machine
        object_id = matchbox_id(stack, machine)

        def render(material: ClusterMaterial, token: str) -> str:
            config = machine_ignition_json(stack, machine, material, token)
            # Matchbox serves even a config it failed to parse: refuse it before the upload.
            check_structure(f"machine '{machine.name}'", config)
            return config.decode()

        self.ignition = pulumi.Output.secret(
            pulumi.Output.all(args.material, args.token).apply(lambda v: render(v[0], v[1]))
        )
        boot = fcos_install_boot(stack, machine)
        # A Matchbox object's id is its name: a create-before-delete replacement would delete
        # its own successor, so these two are always deleted first.
        matchbox_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, delete_before_replace=True
        )
        self.profile = matchbox.Profile(
            object_id,
            name=object_id,
            kernel=boot.kernel,
            initrds=list(boot.initrds),
            args=list(boot.args),
            raw_ignition=self.ignition,
            opts=matchbox_opts,
        )
        self.group = matchbox.Group(
            object_id,
            name=object_id,
            profile=self.profile.name,
            selector={"mac": machine.mac},
            metadata={"stubernetes_machine": machine.name},
            opts=matchbox_opts,
        )
        self.register_outputs({"profile": self.profile.name, "group": self.group.name})
