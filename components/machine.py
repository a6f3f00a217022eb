"""One machine and its install chain.

The chain, in order: an install anchor (replaced when `generation` changes, or with
`pulumi up --replace` of it), a new bootstrap token, the cleaning of the old Node and
etcd member, the Ignition (a secret) in a Matchbox profile, a Matchbox group by MAC, a
one-time network boot with a power cycle, and the wait for the machine to rejoin. Every link
is replaced with the anchor, and nothing outside this component is.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

import pulumi
import pulumi_command as command
import pulumi_random as random
import pulumiverse_matchbox as matchbox

from components.install_step import install_step
from components.previous import PreviousState
from components.token import BootstrapToken, BootstrapTokenArgs
from ignition import ClusterMaterial, machine_ignition_json
from ignition.pxe import fcos_install_boot
from ignition.validate import check_structure
from stackconfig import Machine, StackConfig


def matchbox_id(stack: StackConfig, machine: Machine) -> str:
    """A Matchbox object's id is its name, and the Ignition file is `<id>.ign`."""
    return f"{stack.cluster.name}-{machine.name}"


def anchor_name(stack: StackConfig, machine: Machine) -> str:
    return f"{matchbox_id(stack, machine)}-install"


@dataclass(frozen=True)
class MachineArgs:
    stack: StackConfig
    machine: Machine
    material: pulumi.Output[ClusterMaterial]
    kubeconfig: pulumi.Output[str]
    provider: pulumi.ProviderResource
    previous: PreviousState


class MachineResources(pulumi.ComponentResource):
    anchor: random.RandomId
    clock: command.local.Command
    token: BootstrapToken
    ignition: pulumi.Output[str]
    profile: matchbox.Profile
    group: matchbox.Group
    rejoined: command.local.Command
    installed_before: pulumi.Output[str]

    def __init__(
        self, name: str, args: MachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:machine:Machine", name, None, opts)
        stack, machine = args.stack, args.machine
        object_id = matchbox_id(stack, machine)
        self._generation = machine.generation
        generation = {"generation": str(machine.generation)}
        self.anchor = random.RandomId(
            anchor_name(stack, machine),
            byte_length=4,
            keepers=generation,
            opts=pulumi.ResourceOptions(parent=self),
        )
        chain = pulumi.ResourceOptions(parent=self, replace_with=[self.anchor])
        # When this install started, kept in the state: its credentials expire after it.
        self.clock = self._step(
            f"{object_id}-install-clock", "install-clock", {}, after=self.anchor
        )
        self.token = BootstrapToken(
            f"{object_id}-token",
            BootstrapTokenArgs(
                generation=machine.generation,
                anchor=self.anchor,
                started=self.clock.stdout,
                lifetime_hours=stack.cluster.install_credential_hours,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Whether this install replaces one that had joined: recorded in the stack's outputs.
        self.installed_before = args.previous.installed_before(machine.name, self.anchor.hex)
        clean = self._step(
            f"{object_id}-clean",
            "clean-before-rejoin",
            {
                "KUBECONFIG_CONTENT": args.kubeconfig,
                "MACHINE": machine.name,
                "ROLE": machine.role,
                "CONTROLLERS": " ".join(m.name for m in stack.controllers),
                "ALLOW_CLUSTER_REBUILD": str(stack.cluster.allow_cluster_rebuild).lower(),
                # Whether an earlier update saw this machine join: then an API server that does
                # not answer is a failure, never a first install.
                "INSTALLED_BEFORE": self.installed_before,
                "DRAIN_TIMEOUT_SECONDS": str(stack.gates.drain_timeout_seconds),
            },
            after=self.anchor,
        )

        def render(material: ClusterMaterial, token: str) -> str:
            config = machine_ignition_json(stack, machine, material, token)
            # Matchbox serves even a config it failed to parse: refuse it before the upload.
            check_structure(f"machine '{machine.name}'", config)
            return config.decode()

        self.ignition = pulumi.Output.secret(
            pulumi.Output.all(args.material, self.token.token).apply(lambda v: render(v[0], v[1]))
        )
        boot = fcos_install_boot(stack, machine)
        # A Matchbox object's id is its name: a create-before-delete replacement would delete
        # its own successor, so these two are always deleted first.
        matchbox_opts = chain.merge(
            pulumi.ResourceOptions(provider=args.provider, delete_before_replace=True)
        )
        self.profile = matchbox.Profile(
            object_id,
            name=object_id,
            kernel=boot.kernel,
            initrds=list(boot.initrds),
            args=list(boot.args),
            raw_ignition=self.ignition,
            opts=matchbox_opts.merge(pulumi.ResourceOptions(depends_on=[clean])),
        )
        self.group = matchbox.Group(
            object_id,
            name=object_id,
            profile=self.profile.name,
            selector={"mac": machine.mac},
            metadata={"stubernetes_machine": machine.name},
            opts=matchbox_opts,
        )
        network_boot = self._step(
            f"{object_id}-network-boot",
            "network-boot-once",
            boot_environment(machine),
            after=self.group,
        )
        self.rejoined = self._step(
            f"{object_id}-rejoin",
            "wait-for-rejoin",
            {
                "KUBECONFIG_CONTENT": args.kubeconfig,
                "MACHINE": machine.name,
                "CLEAN_OUTPUT": clean.stdout,
                "TIMEOUT_SECONDS": str(stack.gates.reinstall_timeout_seconds),
                "POLL_SECONDS": str(stack.gates.poll_seconds),
            },
            after=network_boot,
        )
        self.register_outputs({"profile": self.profile.name, "group": self.group.name})

    def _step(
        self,
        name: str,
        script: str,
        environment: dict[str, pulumi.Input[str]],
        after: pulumi.Resource,
    ) -> command.local.Command:
        return install_step(
            name, script, environment, self._generation, self.anchor, after, parent=self
        )


def boot_environment(machine: Machine) -> dict[str, pulumi.Input[str]]:
    """How the install step reaches the machine; the BMC password only as a secret variable."""
    if machine.bmc is not None:
        return {
            "MACHINE": machine.name,
            "BOOT_METHOD": machine.bmc.kind,
            "BMC_ADDRESS": machine.bmc.address,
            "BMC_USER": machine.bmc.user,
            "BMC_PASSWORD": pulumi.Output.secret(machine.bmc.password),
            "REDFISH_SYSTEM": machine.bmc.system_path,
            "EFI_BOOT": str(machine.bmc.efi_boot).lower(),
        }
    if machine.pxe_command is not None:
        address = str(machine.address.ip) if machine.address else ""
        command_line = Template(machine.pxe_command).safe_substitute(
            name=machine.name, mac=machine.mac, address=address
        )
        return {"MACHINE": machine.name, "BOOT_METHOD": "command", "PXE_COMMAND": command_line}
    return {"MACHINE": machine.name, "BOOT_METHOD": "manual"}
