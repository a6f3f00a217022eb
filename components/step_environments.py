"""What each of a machine's scripts is told: its environment, by the script's name.

A step's environment is made from its machine, its role and the outputs its row reads
(components/machine_steps.py), and from nothing else: `StepInputs.reads` holds exactly those.
The admin kubeconfig, the CA material, a BMC password and the certificates' manifest are
secrets, and stay secret in the environment (the command provider keeps a secret input secret
in the state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

import pulumi

from components.machine_steps import KUBECONFIG, MATERIAL, Role
from components.previous import PreviousState
from components.token import token_secret_name
from components.upgrade_step import binaries_line, upgrade_command
from ignition.kubeadm_certs import SECRET_NAME, kubeadm_certs_manifest
from stackconfig import Machine, StackConfig

Environment = dict[str, pulumi.Input[str]]


@dataclass(frozen=True)
class StepInputs:
    stack: StackConfig
    machine: Machine
    role: Role
    previous: PreviousState
    # The outputs the step's row reads, by `<step>.<output>` (or `cluster.<output>`).
    reads: Mapping[str, pulumi.Output[Any]]

    @property
    def certificate_key_join(self) -> str:
        """Whether this install joins with a certificate key (a founding install uploads and
        deletes nothing), as the certificate steps' scripts read it."""
        return str(self.role is Role.JOINING_CONTROLLER).lower()


def install_clock(_: StepInputs) -> Environment:
    return {}


def clean_before_rejoin(step: StepInputs) -> Environment:
    stack, machine = step.stack, step.machine
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": machine.name,
        "ROLE": machine.role,
        "CONTROLLERS": " ".join(m.name for m in stack.controllers),
        "ALLOW_CLUSTER_REBUILD": str(stack.cluster.allow_cluster_rebuild).lower(),
        # Whether an earlier update saw this machine join: then an API server that does not
        # answer is a failure, never a first install.
        "INSTALLED_BEFORE": step.previous.installed_before(machine.name, step.reads["install.hex"]),
        "DRAIN_TIMEOUT_SECONDS": str(stack.gates.drain_timeout_seconds),
    }


def upload_control_plane_certs(step: StepInputs) -> Environment:
    """The cluster's shared CA material, encrypted with this install's certificate key, as
    kubeadm's kubeadm-certs Secret owned by the machine's token Secret (components/
    certificate_join.py)."""
    name, token_id = step.machine.name, step.reads["token.token_id"]
    manifest: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(step.reads[MATERIAL], step.reads["certificate-key.key"], token_id).apply(
            lambda v: kubeadm_certs_manifest(v[0], v[1], v[2], name)
        )
    )
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": name,
        "CERTIFICATE_KEY_JOIN": step.certificate_key_join,
        "TOKEN_SECRET": token_secret_name(token_id),
        "CERTS_MANIFEST": manifest,
    }


def network_boot_once(step: StepInputs) -> Environment:
    """How the step reaches the machine; the BMC password only as a secret variable."""
    machine = step.machine
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


def wait_for_control_plane_join(step: StepInputs) -> Environment:
    gates = step.stack.gates
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": step.machine.name,
        "CERTIFICATE_KEY_JOIN": step.certificate_key_join,
        "TOKEN_SECRET": token_secret_name(step.reads["token.token_id"]),
        "CERTS_SECRET": SECRET_NAME,
        "TIMEOUT_SECONDS": str(gates.reinstall_timeout_seconds),
        "POLL_SECONDS": str(gates.poll_seconds),
    }


def wait_for_rejoin(step: StepInputs) -> Environment:
    gates = step.stack.gates
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": step.machine.name,
        "CLEAN_OUTPUT": step.reads["clean.stdout"],
        "TIMEOUT_SECONDS": str(gates.reinstall_timeout_seconds),
        "POLL_SECONDS": str(gates.poll_seconds),
    }


def remove_machine(step: StepInputs) -> Environment:
    """The membership step's delete: it runs with the inputs of the last update that had the
    machine (components/membership.py)."""
    stack, machine = step.stack, step.machine
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": machine.name,
        "ROLE": machine.role,
        "CONTROLLERS": " ".join(m.name for m in stack.controllers),
        "DRAIN_TIMEOUT_SECONDS": str(stack.gates.drain_timeout_seconds),
    }


def upgrade_machine(step: StepInputs) -> Environment:
    """The upgrade step's (components/upgrade_step.py): the release, and the binaries the
    machine fetches and checks. Which release the machine runs, the script asks its Node."""
    stack, machine, gates = step.stack, step.machine, step.stack.gates
    return {
        "KUBECONFIG_CONTENT": step.reads[KUBECONFIG],
        "MACHINE": machine.name,
        "RELEASE": stack.cluster.kubernetes_release,
        "KUBEADM_UPGRADE": upgrade_command(stack, machine),
        "BINARIES": binaries_line(stack),
        "DRAIN_TIMEOUT_SECONDS": str(gates.drain_timeout_seconds),
        "TIMEOUT_SECONDS": str(gates.reinstall_timeout_seconds),
        "POLL_SECONDS": str(gates.poll_seconds),
    }


# By the script (components/scripts/<name>) that a step's create, or delete, runs.
ENVIRONMENTS: dict[str, Callable[[StepInputs], Environment]] = {
    "install-clock": install_clock,
    "clean-before-rejoin": clean_before_rejoin,
    "upload-control-plane-certs": upload_control_plane_certs,
    "network-boot-once": network_boot_once,
    "wait-for-control-plane-join": wait_for_control_plane_join,
    "wait-for-rejoin": wait_for_rejoin,
    "remove-machine": remove_machine,
    "upgrade-machine": upgrade_machine,
}
