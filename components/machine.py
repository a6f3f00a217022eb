"""One machine and its install chain.

The chain, in order: an install anchor (replaced when `generation` changes, or with
`pulumi up --replace` of it), a new bootstrap token (and, on a controller, a new certificate
key), the cleaning of the old Node and etcd member, the Ignition (a secret) in a Matchbox
profile, a Matchbox group by MAC; then (`boot`, once the program has made the token's Secret) on
a controller the upload of the control-plane certificates for its join
(components/certificate_join.py), a one-time network boot with a power cycle, on a controller
the wait for its control-plane join (which deletes the upload), and the wait for the machine to
rejoin. Every link is replaced with the anchor, and nothing outside this component is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

import pulumi
import pulumi_command as command
import pulumi_random as random
import pulumiverse_matchbox as matchbox

from components.certificate_join import (
    certificate_key_secret,
    joined_environment,
    upload_environment,
)
from components.install_step import install_step
from components.previous import PreviousState
from components.token import BootstrapToken, BootstrapTokenArgs
from ignition import ClusterMaterial, machine_ignition_json
from ignition.kubeadm import joins_with_certificate_key
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


@dataclass(frozen=True)
class BootArgs:
    """What the second half of the chain waits for, made by the program between the halves."""

    # The machine's bootstrap-token Secret in the cluster (the upload's owner); None for a
    # founding install, whose token waits for it and whose upload is a no-op.
    token_secret: pulumi.Resource | None
    # The Role and RoleBinding that let a bootstrap token read the kubeadm-certs Secret.
    certs_rbac: Sequence[pulumi.Resource]
    # The previous controller's wait for its join: only one upload can exist at a time.
    previous_join: pulumi.Resource | None


class MachineResources(pulumi.ComponentResource):
    anchor: random.RandomId
    clock: command.local.Command
    token: BootstrapToken
    ignition: pulumi.Output[str]
    profile: matchbox.Profile
    group: matchbox.Group
    # A controller's certificate key for this install (hex; a secret), else None.
    certificate_key: pulumi.Output[str] | None
    # Whether this install joins with the certificate key: a controller that does not found the
    # cluster (decided from the stack's previous outputs: components/previous.py).
    certificate_key_join: bool
    upload: command.local.Command | None
    network_boot: command.local.Command
    control_plane_joined: command.local.Command | None
    rejoined: command.local.Command
    installed_before: pulumi.Output[str]

    def __init__(
        self, name: str, args: MachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("stubernetes:machine:Machine", name, None, opts)
        self._args = args
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
        # A new key for every install of a controller, like its token: it decrypts the
        # control-plane certificates uploaded for that install's join only.
        self.certificate_key = (
            certificate_key_secret(object_id, generation, chain) if machine.is_controller else None
        )
        cluster_exists = args.previous.cluster_exists
        self.certificate_key_join = joins_with_certificate_key(stack, machine, cluster_exists)
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

        def render(material: ClusterMaterial, token: str, key: str | None) -> str:
            config = machine_ignition_json(
                stack, machine, material, token, certificate_key=key, cluster_exists=cluster_exists
            )
            # Matchbox serves even a config it failed to parse: refuse it before the upload.
            check_structure(f"machine '{machine.name}'", config)
            return config.decode()

        self.ignition = pulumi.Output.secret(
            pulumi.Output.all(args.material, self.token.token, self.certificate_key).apply(
                lambda v: render(v[0], v[1], v[2])
            )
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
        self._clean = clean
        self.upload = self.control_plane_joined = None

    def boot(self, boot: BootArgs) -> None:
        """The second half of the chain: (controllers) the certificates' upload, the network
        boot, (controllers) the wait for the control-plane join, the wait for the rejoin."""
        args, stack, machine = self._args, self._args.stack, self._args.machine
        object_id = matchbox_id(stack, machine)
        before_boot: list[pulumi.Resource] = [self.group]
        if self.certificate_key is not None:
            previous = [boot.previous_join] if boot.previous_join is not None else []
            owner = [boot.token_secret] if boot.token_secret is not None else []
            self.upload = self._step(
                f"{object_id}-upload-certs",
                "upload-control-plane-certs",
                upload_environment(
                    machine.name,
                    self.certificate_key_join,
                    args.kubeconfig,
                    args.material,
                    self.certificate_key,
                    self.token.token_id,
                ),
                after=[*owner, *boot.certs_rbac, *previous],
            )
            # A joining controller boots once its certificates are there.
            if self.certificate_key_join:
                before_boot.append(self.upload)
        self.network_boot = self._step(
            f"{object_id}-network-boot",
            "network-boot-once",
            boot_environment(machine),
            after=before_boot,
        )
        if self.upload is not None:
            self.control_plane_joined = self._step(
                f"{object_id}-control-plane-joined",
                "wait-for-control-plane-join",
                joined_environment(
                    machine.name,
                    self.certificate_key_join,
                    args.kubeconfig,
                    self.token.token_id,
                    stack.gates,
                ),
                after=[self.network_boot, self.upload],
            )
        self.rejoined = self._step(
            f"{object_id}-rejoin",
            "wait-for-rejoin",
            {
                "KUBECONFIG_CONTENT": args.kubeconfig,
                "MACHINE": machine.name,
                "CLEAN_OUTPUT": self._clean.stdout,
                "TIMEOUT_SECONDS": str(stack.gates.reinstall_timeout_seconds),
                "POLL_SECONDS": str(stack.gates.poll_seconds),
            },
            after=self.network_boot,
        )
        self.register_outputs({"profile": self.profile.name, "group": self.group.name})

    def _step(
        self,
        name: str,
        script: str,
        environment: dict[str, pulumi.Input[str]],
        after: pulumi.Resource | Sequence[pulumi.Resource],
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
