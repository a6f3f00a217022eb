"""A machine's whole life on one page: its steps in order, one table per role, and the order
between machines.

Every resource of a machine's component (`stubernetes:machine:Machine`) is one row below, in
the order the program makes it; components/step_wiring.py makes them from these rows and from
nothing else, and docs/machine-steps.md is printed from them (components/machine_steps_doc.py).
A new step (an upgrade, a backup) is a new row, a script in components/scripts/ and, for an
install step, its environment in components/step_environments.py.

A row says:
- `name`: the step; its resource is `<cluster>-<machine>-<name>` (a Matchbox object's is
  `<cluster>-<machine>`: its id is its name);
- `kind`: what is made (a `Kind`: its Pulumi type, what deleting it does);
- `stage`: when, among the other machines' steps (STAGES);
- `script`: what its create runs, components/scripts/<script>;
- `after`: the steps of this machine it waits for;
- `elsewhere`: what it waits for outside this machine: the cluster's API gate, kubeadm's
  RBAC for the certificates' upload, or a step of another controller;
- `reads`: the outputs it is given, `<step>.<output>` of an earlier step of this machine or
  `cluster.<output>`, and no others;
- `replaced`: what replaces it;
- `delete`: the script its delete runs, components/scripts/<delete>; None: its kind says;
- `note`: why it is there, or is as it is.

This module is plain data (no Pulumi): `stubernetes` and the docs read it offline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from ignition.kubeadm import founds_cluster
from stackconfig import Machine, StackConfig


class Role(StrEnum):
    # Runs `kubeadm init` with the cluster's CA keys in its Ignition: the init controller until
    # the cluster has answered (ignition.kubeadm.founds_cluster).
    FOUNDING_CONTROLLER = "founding controller"
    # Joins the control plane with a certificate key of its own install.
    JOINING_CONTROLLER = "joining controller"
    WORKER = "worker"


def role_of(stack: StackConfig, machine: Machine, cluster_exists: bool) -> Role:
    if founds_cluster(stack, machine, cluster_exists):
        return Role.FOUNDING_CONTROLLER
    return Role.JOINING_CONTROLLER if machine.is_controller else Role.WORKER


@dataclass(frozen=True)
class Kind:
    name: str
    type: str
    deleted: str


INSTALL_ANCHOR: Final = Kind(
    "install anchor", "random:index/randomId:RandomId", "nothing outside Pulumi's state"
)
INSTALL_STEP: Final = Kind("install step", "command:local:Command", "runs nothing")
BOOTSTRAP_TOKEN: Final = Kind(
    "bootstrap token", "stubernetes:cluster:BootstrapToken", "nothing outside Pulumi's state"
)
CERTIFICATE_KEY: Final = Kind(
    "certificate key",
    "random:index/randomPassword:RandomPassword",
    "nothing outside Pulumi's state",
)
MATCHBOX_PROFILE: Final = Kind(
    "Matchbox profile", "matchbox:index/profile:Profile", "Matchbox forgets the Ignition"
)
MATCHBOX_GROUP: Final = Kind(
    "Matchbox group", "matchbox:index/group:Group", "Matchbox serves the MAC nothing"
)
TOKEN_SECRET: Final = Kind(
    "bootstrap token Secret",
    "kubernetes:core/v1:Secret",
    "the token stops authenticating; the kubeadm-certs upload it owns goes with it",
)
STATUS_REPORT: Final = Kind(
    "status report",
    "stubernetes:machine:StatusReport",
    "its ConfigMap, Role and RoleBinding leave the cluster",
)
MEMBERSHIP: Final = Kind(
    "membership", "command:local:Command", "runs its delete: the machine leaves the cluster"
)
UPGRADE_CHANNEL: Final = Kind(
    "upgrade channel",
    "stubernetes:machine:UpgradeChannel",
    "its ConfigMap, Role and RoleBinding leave the cluster",
)
UPGRADE_STEP: Final = Kind("upgrade step", "command:local:Command", "runs nothing")


class Replaced(StrEnum):
    BY_GENERATION = "when `generation` changes, or by `pulumi up --replace` of it"
    WITH_ANCHOR = "with the install anchor"
    # A Matchbox object's id is its name: created first, its successor would be deleted with it.
    WITH_ANCHOR_DELETED_FIRST = "with the install anchor, deleted first"
    WITH_TOKEN = "with the token: its name holds the token's id"
    # The report's ConfigMap has a fixed name, and a new install starts with an empty report.
    REPORT_WITH_ANCHOR = "its ConfigMap with the install anchor, deleted first"
    # components/membership.py says why: a replacement would take a rejoined machine out.
    NEVER = "never: a change of its inputs runs nothing"
    # components/upgrade_step.py: runs again for a new release, and with a new install.
    BY_RELEASE = "when the Kubernetes release changes, and with the install anchor"


@dataclass(frozen=True)
class Stage:
    name: str
    # The machines in the stack's order, or the controllers (in it) before the workers.
    controllers_first: bool
    why: str
    # The init controller first (kubeadm's `upgrade apply` machine), then as controllers_first.
    init_first: bool = False

    @property
    def machines(self) -> str:
        if self.init_first:
            return "the init controller, the other controllers in the stack's order, the workers"
        if self.controllers_first:
            return "the controllers in the stack's order, then the workers"
        return "every machine, in the stack's order"


# The order between machines: each stage is made for every machine, in the order `machines`
# says, before the next stage; the cluster's API gate, its Kubernetes provider and kubeadm's
# RBAC for the certificates are made between the first two.
SERVED: Final = Stage(
    "served",
    controllers_first=False,
    why="each machine's Ignition on Matchbox; nothing here waits for the cluster, and the API "
    "gate waits for the init controller's group",
)
JOINS: Final = Stage(
    "joins",
    controllers_first=False,
    why="after the API gate: the steps that need the cluster, machine by machine, so that each "
    "controller's upload waits for the controller before it to have joined (the kubeadm-certs "
    "Secret has one name)",
)
MEMBER: Final = Stage(
    "member",
    controllers_first=True,
    why="after every machine's install chain: a destroy deletes in the other order, so the "
    "workers leave first, then the controllers one at a time, the first in the stack last",
)
UPGRADES: Final = Stage(
    "upgrades",
    controllers_first=True,
    init_first=True,
    why="after every membership, one machine at a time in kubeadm's order: `kubeadm upgrade "
    "apply` on one controller, `kubeadm upgrade node` on each other controller, then the "
    "workers (kubeadm-upgrade; kubespray playbooks/upgrade_cluster.yml)",
)
STAGES: Final = (SERVED, JOINS, MEMBER, UPGRADES)
# The API gate waits for this step of the init controller: the API server comes with it alone.
API_GATE_AFTER: Final = "group"
# The readiness gates `registered` and `ready` wait for these steps of every machine: so a
# destroy deletes the releases (after those gates) before any machine leaves the cluster.
GATES_AFTER: Final = ("group", "membership")


CLUSTER: Final = "cluster"
PREVIOUS_CONTROLLER: Final = "previous controller"
# The machine before this one in the order of its stage (UPGRADES: init controller first).
PREVIOUS_IN_STAGE: Final = "previous machine in the stage's order"
LAST_CONTROLLER: Final = "last controller"


@dataclass(frozen=True)
class Elsewhere:
    """A wait outside the machine: a resource of the cluster, or a step of another controller,
    the one before this machine in the stack's order or the last one."""

    what: str
    of: str = CLUSTER


# The cluster's API server answers (components/gates.py, condition `api`).
API_GATE: Final = Elsewhere("API server gate")
# The Role and RoleBinding that let a bootstrap token read the kubeadm-certs Secret.
KUBEADM_CERTS_RBAC: Final = Elsewhere("kubeadm-certs RBAC")
# Controllers join one at a time: the kubeadm-certs Secret has one name.
PREVIOUS_CONTROLLER_JOINED: Final = Elsewhere("control-plane-joined", PREVIOUS_CONTROLLER)
# Memberships chain the controllers, and every worker's follows the last controller's.
PREVIOUS_CONTROLLER_MEMBERSHIP: Final = Elsewhere("membership", PREVIOUS_CONTROLLER)
LAST_CONTROLLER_MEMBERSHIP: Final = Elsewhere("membership", LAST_CONTROLLER)
# Machines upgrade one at a time.
PREVIOUS_UPGRADE: Final = Elsewhere("upgrade", PREVIOUS_IN_STAGE)

# What every machine's steps may read of the cluster.
KUBECONFIG: Final = "cluster.kubeconfig"
MATERIAL: Final = "cluster.material"


@dataclass(frozen=True)
class Step:
    name: str
    kind: Kind
    stage: Stage
    replaced: Replaced
    script: str | None = None
    after: tuple[str, ...] = ()
    elsewhere: tuple[Elsewhere, ...] = ()
    reads: tuple[str, ...] = ()
    delete: str | None = None
    # Why the step is there, or is as it is: for the reader (and the docs).
    note: str = ""


# The anchor: every other step of an install is replaced with it.
ANCHOR: Final = "install"

# ------------------------------------------------------------------------------------------
# The steps every machine starts with, on Matchbox before the cluster answers.

INSTALL: Final = Step(
    "install",
    INSTALL_ANCHOR,
    SERVED,
    Replaced.BY_GENERATION,
    note="a new install of the machine is a new anchor",
)
INSTALL_CLOCK: Final = Step(
    "install-clock",
    INSTALL_STEP,
    SERVED,
    Replaced.WITH_ANCHOR,
    script="install-clock",
    after=("install",),
    note="when the install started: its credentials expire `installCredentialHours` after it",
)
TOKEN: Final = Step(
    "token",
    BOOTSTRAP_TOKEN,
    SERVED,
    Replaced.WITH_ANCHOR,
    reads=("install-clock.stdout",),
    note="the machine's own join credential, in its Ignition; it expires",
)
CONTROLLER_KEY: Final = Step(
    "certificate-key",
    CERTIFICATE_KEY,
    SERVED,
    Replaced.WITH_ANCHOR,
    note="a new key for every install of a controller: it decrypts that install's upload only",
)
CLEAN: Final = Step(
    "clean",
    INSTALL_STEP,
    SERVED,
    Replaced.WITH_ANCHOR,
    script="clean-before-rejoin",
    after=("install",),
    reads=(KUBECONFIG, "install.hex"),
    note="the old Node and etcd member go before the new install joins under the same name",
)


def profile(reads: tuple[str, ...]) -> Step:
    return Step(
        "profile",
        MATCHBOX_PROFILE,
        SERVED,
        Replaced.WITH_ANCHOR_DELETED_FIRST,
        after=("clean",),
        reads=(MATERIAL, *reads),
        note="the machine's Ignition, served once the old install is cleaned away",
    )


GROUP: Final = Step(
    "group",
    MATCHBOX_GROUP,
    SERVED,
    Replaced.WITH_ANCHOR_DELETED_FIRST,
    reads=("profile.name",),
    note="the machine's MAC to its profile",
)

# ------------------------------------------------------------------------------------------
# The steps after the API gate, and the membership.


def token_secret(after: tuple[str, ...], note: str) -> Step:
    return Step(
        "bootstrap-token",
        TOKEN_SECRET,
        JOINS,
        Replaced.WITH_TOKEN,
        after=after,
        elsewhere=(API_GATE,),
        reads=("token.token", "token.token_id", "token.expiration"),
        note=note,
    )


def upload_certs(after: tuple[str, ...], note: str) -> Step:
    return Step(
        "upload-certs",
        INSTALL_STEP,
        JOINS,
        Replaced.WITH_ANCHOR,
        script="upload-control-plane-certs",
        after=after,
        elsewhere=(KUBEADM_CERTS_RBAC, PREVIOUS_CONTROLLER_JOINED),
        reads=(KUBECONFIG, MATERIAL, "certificate-key.key", "token.token_id"),
        note=note,
    )


def network_boot(after: tuple[str, ...], note: str = "") -> Step:
    return Step(
        "network-boot",
        INSTALL_STEP,
        JOINS,
        Replaced.WITH_ANCHOR,
        script="network-boot-once",
        after=after,
        note=note or "a one-time network boot: by its BMC, its pxeCommand, or by hand",
    )


CONTROL_PLANE_JOINED: Final = Step(
    "control-plane-joined",
    INSTALL_STEP,
    JOINS,
    Replaced.WITH_ANCHOR,
    script="wait-for-control-plane-join",
    after=("network-boot", "upload-certs"),
    reads=(KUBECONFIG, "token.token_id"),
    note="deletes the upload once the machine is a control-plane Node",
)
REJOIN: Final = Step(
    "rejoin",
    INSTALL_STEP,
    JOINS,
    Replaced.WITH_ANCHOR,
    script="wait-for-rejoin",
    after=("network-boot",),
    reads=(KUBECONFIG, "clean.stdout"),
    note="a reinstall waits for the Node to be Ready as a new boot; a first install leaves "
    "the waiting to the gates",
)


def status_report(after: tuple[str, ...] = ()) -> Step:
    return Step(
        "status",
        STATUS_REPORT,
        JOINS,
        Replaced.REPORT_WITH_ANCHOR,
        after=after,
        elsewhere=(API_GATE,),
        reads=("token.token_id",),
        note="where the machine reports its setup, writable with its token alone",
    )


def membership(elsewhere: Elsewhere) -> Step:
    return Step(
        "membership",
        MEMBERSHIP,
        MEMBER,
        Replaced.NEVER,
        after=("rejoin",),
        elsewhere=(elsewhere,),
        reads=(KUBECONFIG,),
        delete="remove-machine",
        note="lives as long as the machine is in the stack; its delete drains the machine and "
        "deletes its Node (and a controller's etcd member)",
    )


UPGRADE_CHANNEL_STEP: Final = Step(
    "upgrade-channel",
    UPGRADE_CHANNEL,
    JOINS,
    Replaced.NEVER,
    elsewhere=(API_GATE,),
    note="where the upgrade step publishes the wanted release and the machine reports its "
    "upgrade, readable and writable with the machine's kubelet credentials alone",
)
UPGRADE: Final = Step(
    "upgrade",
    UPGRADE_STEP,
    UPGRADES,
    Replaced.BY_RELEASE,
    script="upgrade-machine",
    after=("membership", "upgrade-channel"),
    elsewhere=(PREVIOUS_UPGRADE,),
    reads=(KUBECONFIG,),
    note="on a running machine, for a new release: drain, publish the release, wait for the "
    "kubelet's new version, uncordon; on a new install nothing (its Ignition has the release)",
)

# ------------------------------------------------------------------------------------------
# One table per role, top to bottom. A founding controller has the steps of a joining one
# under the same names: once the cluster exists it is a joining controller (the second stage,
# ignition.kubeadm.founds_cluster), and its steps' settings change without anything being made.

ROLE_STEPS: Final[dict[Role, tuple[Step, ...]]] = {
    Role.FOUNDING_CONTROLLER: (
        INSTALL,
        INSTALL_CLOCK,
        TOKEN,
        CONTROLLER_KEY,
        CLEAN,
        profile(reads=("token.token", "certificate-key.key")),
        GROUP,
        upload_certs(after=(), note="uploads nothing: its Ignition carries the CA material"),
        network_boot(
            after=("group",), note="a one-time network boot, at once: it brings the API server up"
        ),
        CONTROL_PLANE_JOINED,
        REJOIN,
        token_secret(
            after=("rejoin",),
            note="kubeadm init does not need it, but a reinstalled founding controller joins "
            "with it; on a rebuild the old API server is gone until this machine is back",
        ),
        status_report(after=("rejoin",)),
        UPGRADE_CHANNEL_STEP,
        membership(PREVIOUS_CONTROLLER_MEMBERSHIP),
        UPGRADE,
    ),
    Role.JOINING_CONTROLLER: (
        INSTALL,
        INSTALL_CLOCK,
        TOKEN,
        CONTROLLER_KEY,
        CLEAN,
        profile(reads=("token.token", "certificate-key.key")),
        GROUP,
        token_secret(after=(), note="before its join needs it, and before the upload it owns"),
        upload_certs(
            after=("bootstrap-token",),
            note="the cluster's CA material, encrypted with this install's key, for its join",
        ),
        network_boot(
            after=("group", "upload-certs"),
            note="a one-time network boot, once its certificates are there",
        ),
        CONTROL_PLANE_JOINED,
        REJOIN,
        status_report(),
        UPGRADE_CHANNEL_STEP,
        membership(PREVIOUS_CONTROLLER_MEMBERSHIP),
        UPGRADE,
    ),
    Role.WORKER: (
        INSTALL,
        INSTALL_CLOCK,
        TOKEN,
        CLEAN,
        profile(reads=("token.token",)),
        GROUP,
        token_secret(after=(), note="before its join needs it"),
        network_boot(after=("group",)),
        REJOIN,
        status_report(),
        UPGRADE_CHANNEL_STEP,
        membership(LAST_CONTROLLER_MEMBERSHIP),
        UPGRADE,
    ),
}


# ------------------------------------------------------------------------------------------
# A Flatcar machine boots twice from Matchbox, as poseidon/typhoon's Flatcar module serves it
# (bare-metal/flatcar-linux/kubernetes/profiles.tf, groups.tf): the PXE boot into Flatcar's live
# system, whose install Ignition runs flatcar-install and reboots (ignition/flatcar_install.py),
# then the installed system's first boot, which fetches `?mac=<mac>&os=installed`. Matchbox
# answers a request with the group of the most selectors that match (poseidon/matchbox
# matchbox/server/server.go SelectGroup), so the install group selects the MAC alone and the
# machine's own group the MAC and `os: installed`. Its rows are a Fedora CoreOS machine's with
# these two before its group, and its group after them.

FLATCAR_INSTALL_PROFILE: Final = Step(
    "install-profile",
    MATCHBOX_PROFILE,
    SERVED,
    Replaced.WITH_ANCHOR_DELETED_FIRST,
    after=("clean",),
    note="Flatcar: the PXE boot into the live system and its install Ignition, which writes "
    "the disk and reboots into the machine's own profile",
)
FLATCAR_INSTALL_GROUP: Final = Step(
    "install-group",
    MATCHBOX_GROUP,
    SERVED,
    Replaced.WITH_ANCHOR_DELETED_FIRST,
    reads=("install-profile.name",),
    note="Flatcar: the machine's MAC to its install profile",
)
FLATCAR_GROUP: Final = replace(
    GROUP,
    after=("install-group",),
    note="Flatcar: the MAC with `os: installed` to the machine's own profile, once the install "
    "group is there",
)


def steps_of(stack: StackConfig, role: Role) -> tuple[Step, ...]:
    """The rows of `role` for the stack's OS flavor."""
    steps = ROLE_STEPS[role]
    if not stack.os.is_flatcar:
        return steps
    flatcar: list[Step] = []
    for step in steps:
        if step.name == GROUP.name:
            flatcar += [FLATCAR_INSTALL_PROFILE, FLATCAR_INSTALL_GROUP, FLATCAR_GROUP]
        else:
            flatcar.append(step)
    return tuple(flatcar)


# The Matchbox ids of a Flatcar machine's install profile and group, beside its own.
FLATCAR_INSTALL_SUFFIX: Final = "flatcar-install"


def resource_name(object_id: str, step: Step) -> str:
    """A step's resource name: a Matchbox object's id is the machine's Matchbox id (a Flatcar
    install profile's and group's, that id and FLATCAR_INSTALL_SUFFIX)."""
    if step in (FLATCAR_INSTALL_PROFILE, FLATCAR_INSTALL_GROUP):
        return f"{object_id}-{FLATCAR_INSTALL_SUFFIX}"
    if step.kind in (MATCHBOX_PROFILE, MATCHBOX_GROUP):
        return object_id
    return f"{object_id}-{step.name}"


def needs(step: Step) -> tuple[str, ...]:
    """The steps of this machine that must come before `step`: those it waits for and those
    it reads from."""
    read = tuple(r.split(".")[0] for r in step.reads if not r.startswith("cluster."))
    return tuple(dict.fromkeys((*step.after, *read)))
