"""One machine: its component, and each kind of step as it is made.

Which steps a machine has, in what order and waiting for what, is declared in
components/machine_steps.py and wired by components/step_wiring.py; here is what each kind of
step is made of. Every step of an install is replaced with the machine's install anchor (or, the
anchor itself, when its `generation` changes), and nothing outside the machine's component is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
import pulumiverse_matchbox as matchbox

from components.certificate_join import certificate_key_secret
from components.install_step import SCRIPTS, install_step
from components.machine_steps import (
    BOOTSTRAP_TOKEN,
    CERTIFICATE_KEY,
    FLATCAR_INSTALL_GROUP,
    FLATCAR_INSTALL_PROFILE,
    INSTALL_ANCHOR,
    INSTALL_STEP,
    MATCHBOX_GROUP,
    MATCHBOX_PROFILE,
    MATERIAL,
    MEMBERSHIP,
    STATUS_REPORT,
    TOKEN_SECRET,
    UPGRADE_CHANNEL,
    UPGRADE_STEP,
    Kind,
    Replaced,
    Step,
)
from components.membership import membership_step
from components.status_report import StatusReport, StatusReportArgs
from components.step_environments import ENVIRONMENTS, StepInputs
from components.token import BootstrapToken, BootstrapTokenArgs, bootstrap_token_secret
from components.upgrade_channel import UpgradeChannel, UpgradeChannelArgs
from components.upgrade_step import upgrade_step
from ignition import ClusterMaterial, machine_ignition_json
from ignition.flatcar_install import INSTALLED_SELECTOR, flatcar_install
from ignition.pxe import Boot, fcos_install_boot
from ignition.validate import check_structure
from stackconfig import Machine, StackConfig

MACHINE_TYPE = "stubernetes:machine:Machine"


def matchbox_id(stack: StackConfig, machine: Machine) -> str:
    """A Matchbox object's id is its name, and the Ignition file is `<id>.ign`."""
    return f"{stack.cluster.name}-{machine.name}"


def anchor_name(stack: StackConfig, machine: Machine) -> str:
    return f"{matchbox_id(stack, machine)}-install"


class MachineResources(pulumi.ComponentResource):
    """A machine's component: the parent of every step of its (components/machine_steps.py)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MACHINE_TYPE, name, None, opts)

    def close(self, outputs: Mapping[str, pulumi.Output[Any]]) -> None:
        """Its outputs, once every step is made: the names of its Matchbox objects."""
        self.register_outputs({"profile": outputs["profile.name"], "group": outputs["group.name"]})


@dataclass(frozen=True)
class StepMaking:
    """Everything one step is made from: its row, what its row reads, what it waits for."""

    name: str
    step: Step
    inputs: StepInputs
    component: MachineResources
    # The machine's install anchor; None while the anchor itself is made.
    anchor: pulumi.Resource | None
    waits: Sequence[pulumi.Resource]
    matchbox: pulumi.ProviderResource
    # The cluster's provider; None before the API gate.
    kubernetes: pulumi.ProviderResource | None


@dataclass(frozen=True)
class Made:
    resource: pulumi.Resource
    # What later steps may read of it, by output name (`<step>.<output>` in their rows).
    outputs: dict[str, pulumi.Output[Any]]


def _anchor(making: StepMaking) -> pulumi.Resource:
    if making.anchor is None:
        raise ValueError(f"step {making.step.name}: made before the install anchor")
    return making.anchor


def _kubernetes(making: StepMaking) -> pulumi.ProviderResource:
    if making.kubernetes is None:
        raise ValueError(f"step {making.step.name}: made before the API gate")
    return making.kubernetes


def _options(making: StepMaking) -> pulumi.ResourceOptions:
    """A custom resource's options as its row says: replaced with the anchor, deleted first."""
    with_anchor = making.step.replaced in (
        Replaced.WITH_ANCHOR,
        Replaced.WITH_ANCHOR_DELETED_FIRST,
    )
    first = making.step.replaced is Replaced.WITH_ANCHOR_DELETED_FIRST
    return pulumi.ResourceOptions(
        parent=making.component,
        replace_with=[_anchor(making)] if with_anchor else None,
        delete_before_replace=True if first else None,
    )


def _generation(making: StepMaking) -> dict[str, str]:
    return {"generation": str(making.inputs.machine.generation)}


def make_anchor(making: StepMaking) -> Made:
    anchor = random.RandomId(
        making.name,
        byte_length=4,
        keepers=_generation(making),
        opts=pulumi.ResourceOptions(parent=making.component),
    )
    return Made(anchor, {"hex": anchor.hex})


def _script(name: str | None) -> str | None:
    return f"bash {SCRIPTS}/{name}" if name is not None else None


def make_install_step(making: StepMaking) -> Made:
    step = making.step
    if step.script is None:
        raise ValueError(f"step {step.name}: an install step runs a script")
    command = install_step(
        making.name,
        step.script,
        ENVIRONMENTS[step.script](making.inputs),
        making.inputs.machine.generation,
        _anchor(making),
        making.waits,
        parent=making.component,
        delete=_script(step.delete),
    )
    return Made(command, {"stdout": command.stdout})


def make_token(making: StepMaking) -> Made:
    token = BootstrapToken(
        making.name,
        BootstrapTokenArgs(
            generation=making.inputs.machine.generation,
            anchor=_anchor(making),
            started=making.inputs.reads["install-clock.stdout"],
            lifetime_hours=making.inputs.stack.cluster.install_credential_hours,
        ),
        opts=pulumi.ResourceOptions(parent=making.component),
    )
    outputs = {"token": token.token, "token_id": token.token_id, "expiration": token.expiration}
    return Made(token, outputs)


def make_certificate_key(making: StepMaking) -> Made:
    secret, key = certificate_key_secret(making.name, _generation(making), _options(making))
    return Made(secret, {"key": key})


def make_profile(making: StepMaking) -> Made:
    if making.step == FLATCAR_INSTALL_PROFILE:
        return _flatcar_install_profile(making)
    inputs = making.inputs
    stack, machine, reads = inputs.stack, inputs.machine, inputs.reads
    cluster_exists = inputs.previous.cluster_exists

    def render(material: ClusterMaterial, token: str, key: str | None) -> str:
        config = machine_ignition_json(
            stack, machine, material, token, certificate_key=key, cluster_exists=cluster_exists
        )
        # Matchbox serves even a config it failed to parse: refuse it before the upload.
        check_structure(f"machine '{machine.name}'", config)
        return config.decode()

    ignition: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(
            reads[MATERIAL], reads["token.token"], reads.get("certificate-key.key")
        ).apply(lambda v: render(v[0], v[1], v[2]))
    )
    # A Flatcar machine's installed system boots from its disk: its profile is its Ignition
    # alone, as Typhoon's Flatcar node profile (bare-metal/flatcar-linux/kubernetes/profiles.tf).
    boot = None if stack.os.is_flatcar else fcos_install_boot(stack, machine)
    return _profile(making, boot, ignition)


def _flatcar_install_profile(making: StepMaking) -> Made:
    """Flatcar's live system by PXE and its install Ignition: the admin's SSH key and the
    installer's script, nothing secret (the machine's own Ignition is fetched by the installer
    from the machine's profile)."""
    install = flatcar_install(making.inputs.stack, making.inputs.machine)
    check_structure(f"install '{making.inputs.machine.name}'", install.ignition)
    return _profile(making, install.boot, install.ignition.decode())


def _profile(making: StepMaking, boot: Boot | None, ignition: pulumi.Input[str]) -> Made:
    """A Matchbox profile: what it network-boots (None: nothing) and the Ignition it serves."""
    profile = matchbox.Profile(
        making.name,
        name=making.name,
        kernel=boot.kernel if boot else None,
        initrds=list(boot.initrds) if boot else None,
        args=list(boot.args) if boot else None,
        raw_ignition=ignition,
        opts=_matchbox_options(making),
    )
    return Made(profile, {"name": profile.name})


def _matchbox_options(making: StepMaking) -> pulumi.ResourceOptions:
    options = _options(making)
    options.provider = making.matchbox
    options.depends_on = list(making.waits)
    return options


def make_group(making: StepMaking) -> Made:
    machine, reads = making.inputs.machine, making.inputs.reads
    selector = {"mac": machine.mac}
    if making.step == FLATCAR_INSTALL_GROUP:
        profile = reads["install-profile.name"]
    else:
        profile = reads["profile.name"]
        if making.inputs.stack.os.is_flatcar:
            selector |= INSTALLED_SELECTOR
    group = matchbox.Group(
        making.name,
        name=making.name,
        profile=profile,
        selector=selector,
        metadata={"stubernetes_machine": machine.name},
        opts=_matchbox_options(making),
    )
    return Made(group, {"name": group.name})


def make_token_secret(making: StepMaking) -> Made:
    reads = making.inputs.reads
    secret = bootstrap_token_secret(
        making.name,
        making.inputs.machine.name,
        reads["token.token_id"],
        reads["token.token"],
        reads["token.expiration"],
        _kubernetes(making),
        parent=making.component,
        depends_on=making.waits,
    )
    return Made(secret, {})


def make_status_report(making: StepMaking) -> Made:
    report = StatusReport(
        making.name,
        StatusReportArgs(
            making.inputs.machine.name,
            making.inputs.reads["token.token_id"],
            _anchor(making),
            _kubernetes(making),
        ),
        depends_on=making.waits,
        opts=pulumi.ResourceOptions(parent=making.component),
    )
    return Made(report, {})


def make_membership(making: StepMaking) -> Made:
    step, inputs = making.step, making.inputs
    if step.delete is None:
        raise ValueError(f"step {step.name}: a membership's delete runs a script")
    command = membership_step(
        making.name,
        inputs.stack,
        inputs.machine,
        f"bash {SCRIPTS}/{step.delete}",
        ENVIRONMENTS[step.delete](inputs),
        making.waits,
        making.component,
    )
    return Made(command, {})


def make_upgrade_channel(making: StepMaking) -> Made:
    channel = UpgradeChannel(
        making.name,
        UpgradeChannelArgs(making.inputs.machine.name, _kubernetes(making)),
        depends_on=making.waits,
        opts=pulumi.ResourceOptions(parent=making.component),
    )
    return Made(channel, {})


def make_upgrade_step(making: StepMaking) -> Made:
    step, inputs = making.step, making.inputs
    if step.script is None:
        raise ValueError(f"step {step.name}: an upgrade step runs a script")
    command = upgrade_step(
        making.name,
        step.script,
        ENVIRONMENTS[step.script](inputs),
        inputs.machine.generation,
        inputs.stack.cluster.kubernetes_release,
        _anchor(making),
        making.waits,
        parent=making.component,
    )
    return Made(command, {"stdout": command.stdout})


# What the wiring makes for each kind of row.
MAKERS: dict[Kind, Callable[[StepMaking], Made]] = {
    INSTALL_ANCHOR: make_anchor,
    INSTALL_STEP: make_install_step,
    BOOTSTRAP_TOKEN: make_token,
    CERTIFICATE_KEY: make_certificate_key,
    MATCHBOX_PROFILE: make_profile,
    MATCHBOX_GROUP: make_group,
    TOKEN_SECRET: make_token_secret,
    STATUS_REPORT: make_status_report,
    MEMBERSHIP: make_membership,
    UPGRADE_CHANNEL: make_upgrade_channel,
    UPGRADE_STEP: make_upgrade_step,
}
