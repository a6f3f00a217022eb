"""Typed model of a stubernetes stack: the cluster, the OS, Matchbox, the admin and the machines.

Field names follow the stack file (camelCase); Python attributes are snake_case. Every model
forbids unknown keys, so a typo in a stack file is an error rather than a silently ignored key.
Checks that span several machines live in `stackconfig.checks`; the rules for single values
live beside their subject (`addresses`, `host_names`, `boot_args`, `ssh_keys`, `admin_checks`,
`os_version`, `labels`).
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from stackconfig.address_pool import LanRange
from stackconfig.addresses import check_service_cidr, check_unicast_mac
from stackconfig.admin_checks import check_admin_user, check_password_hash
from stackconfig.backups import Backups
from stackconfig.boot_args import (
    check_install_disk,
    check_installed_kernel_arg,
    check_installer_kernel_arg,
)
from stackconfig.host_names import check_api_endpoint, check_domain, check_machine_name
from stackconfig.labels import (
    check_label_key,
    check_label_value,
    check_taint_key,
    check_taint_value,
)
from stackconfig.os_flavor import flatcar_version_problem, other_flavor_field_problem
from stackconfig.os_version import build_id_problem
from stackconfig.release_digests import (
    missing_digests,
    newest_pinned_patch,
    node_binary_digests,
    resolved_release,
)
from stackconfig.ssh_keys import check_ssh_public_key
from stackconfig.strict_model import StrictModel, WholeNumber
from stackconfig.vip import Vip

MAC_FORMS = (
    re.compile(
        r"^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$"
    ),
    re.compile(
        r"^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$"
    ),
)
RFC1123_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# The minors supported upstream (Kubernetes' release-support window, 2026-12).
SUPPORTED_KUBERNETES_MINORS = ("1.35", "1.36", "1.37")
# "1.36" (a minor: its newest patch) or "1.36.3" (that exact patch release).
KUBERNETES_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?$")


def normalize_mac(value: str) -> str:
    """Lowercase, colon-separated, as Matchbox stores a `mac` selector (Go's net.ParseMAC forms)."""
    text = value.strip().lower()
    for form in MAC_FORMS:
        found = form.match(text)
        if found:
            return ":".join(found.groups())
    raise ValueError(
        f"malformed MAC address {value!r} (expected six hex octets, e.g. 52:54:00:a1:00:01)"
    )


def check_rfc1123_label(value: str) -> str:
    if not RFC1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 1123 label (lowercase letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit)"
        )
    return value


MacAddress = Annotated[str, AfterValidator(normalize_mac), AfterValidator(check_unicast_mac)]
Role = Literal["controller", "worker"]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
TaintKey = Annotated[str, AfterValidator(check_taint_key)]
TaintValue = Annotated[str, AfterValidator(check_taint_value)]
InstalledKernelArg = Annotated[str, AfterValidator(check_installed_kernel_arg)]
InstallerKernelArg = Annotated[str, AfterValidator(check_installer_kernel_arg)]
SshPublicKey = Annotated[str, AfterValidator(check_ssh_public_key)]
DevicePath = Annotated[str, AfterValidator(check_install_disk)]
Rfc1123Label = Annotated[str, AfterValidator(check_rfc1123_label)]
MachineName = Annotated[Rfc1123Label, AfterValidator(check_machine_name)]
AdminUser = Annotated[Rfc1123Label, AfterValidator(check_admin_user)]
PasswordHash = Annotated[str, AfterValidator(check_password_hash)]
ServiceCidr = Annotated[ipaddress.IPv4Network, AfterValidator(check_service_cidr)]


class ReleaseSettings(StrictModel):
    """One entry of `stubernetes:releases`: overrides a default release or adds a new one."""

    chart: str | None = None
    """The chart's name in its repository (or a path); needed for a new release."""
    repository: str | None = None
    """The Helm repository's URL."""
    version: str | None = None
    """The chart version; needed for a new release."""
    namespace: Rfc1123Label | None = None
    """The namespace it is installed into (created if missing); needed for a new release."""
    values: dict[str, Any] = Field(default_factory=dict)
    """Chart values, merged key by key into a default release's."""
    enabled: bool = True
    """`false` turns a default release off."""
    after: Literal["registered", "ready"] | None = None
    """The gate it waits for: every machine a Node (`registered`) or every Node Ready."""


# A sha256 digest as dl.k8s.io's `.sha256` files give it: 64 lowercase hex digits.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class BinarySha256(StrictModel):
    """Digests the stack supplies for the binaries a node downloads, for a Kubernetes release
    this version of stubernetes has not pinned (stackconfig/pinned_digests.py), or to serve
    binaries of your own build. A digest given here replaces the pinned one."""

    kubeadm: Sha256Hex | None = None
    """sha256 of linux/amd64 kubeadm at `kubernetesVersion` (dl.k8s.io's kubeadm.sha256)."""
    kubectl: Sha256Hex | None = None
    """sha256 of linux/amd64 kubectl at `kubernetesVersion`."""
    kubelet: Sha256Hex | None = None
    """sha256 of linux/amd64 kubelet at `kubernetesVersion`."""
    cni_plugins: Sha256Hex | None = None
    """sha256 of the CNI plugins' archive, cni-plugins-linux-amd64-v<version>.tgz."""
    crictl: Sha256Hex | None = None
    """sha256 of crictl's archive, crictl-v<version>-linux-amd64.tar.gz."""


class Cluster(StrictModel):
    name: Rfc1123Label
    """The cluster's name (an RFC 1123 label); it prefixes every Matchbox object."""
    api_endpoint: str
    """`host:port` where the nodes and the operator reach the API server."""
    # Before kubernetes_version, whose validator reads it: a field validated from its default
    # is reported under its Python name, not its stack-file key (pydantic), so the check
    # that a release has every digest belongs to the field that is always written.
    binary_sha256: BinarySha256 | None = None
    """Digests of the node's binaries for a release without pinned ones (see BinarySha256)."""
    kubernetes_version: str
    """The text as written: a minor (`"1.36"`: its newest patch with pinned digests) or an
    exact patch release (`"1.36.3"`); see `kubernetes_release`."""
    pod_cidr: ipaddress.IPv4Network
    """The pod network (flannel's), e.g. 10.244.0.0/16."""
    service_cidr: ServiceCidr
    """The Service network, e.g. 10.96.0.0/12."""
    domain: Annotated[str, AfterValidator(check_domain)]
    """The household DNS domain, e.g. lab.home.arpa."""
    allow_cluster_rebuild: bool = False
    """Allow reinstalling the only controller, which wipes etcd, the cluster's whole state."""
    install_credential_hours: WholeNumber = Field(default=6, ge=1, le=168)
    """How long a machine's bootstrap token works, counted from the start of its install:
    long enough to PXE-boot, install and join (a manual network boot included), short enough
    that an Ignition fetched from Matchbox later holds nothing that still opens the cluster."""
    load_balancer_pool: LanRange | None = None
    """LAN addresses for LoadBalancer Services, `first-last` or a CIDR, on the machines' subnet
    (stackconfig/address_pool.py): the first is the household DNS server's, the second the
    default Gateway's. Without it the cluster has neither."""
    dhcp_range: LanRange | None = None
    """The range the LAN's DHCP server hands out, which the pool must stay clear of."""

    @field_validator("api_endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return check_api_endpoint(value)

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str, info: ValidationInfo) -> str:
        found = KUBERNETES_VERSION.match(value)
        if not found:
            raise ValueError(
                f"expected a Kubernetes minor such as '1.36' or a patch release such as "
                f"'1.36.3', got {value!r}"
            )
        minor = f"{found[1]}.{found[2]}"
        if minor not in SUPPORTED_KUBERNETES_MINORS:
            raise ValueError(
                f"unsupported Kubernetes minor {minor!r}; supported: "
                + ", ".join(SUPPORTED_KUBERNETES_MINORS)
            )
        if found[3] is None and newest_pinned_patch(minor) is None:
            raise ValueError(
                f"no {minor} release has pinned digests in this version of stubernetes: name "
                f"the patch release (such as '{minor}.0') and give its digests in 'binarySha256'"
            )
        if "binary_sha256" not in info.data:
            return value  # binarySha256 was refused itself, and is reported on its own.
        release = resolved_release(value)
        missing = missing_digests(release, info.data["binary_sha256"])
        if missing:
            raise ValueError(
                f"no digests pinned for Kubernetes {release}: give "
                + ", ".join(missing)
                + " in 'binarySha256' (from dl.k8s.io's '<binary>.sha256' files beside the "
                "release binaries)"
            )
        return value

    @property
    def kubernetes_release(self) -> str:
        """The exact patch release the nodes run: as written, or a minor's newest pinned patch."""
        return resolved_release(self.kubernetes_version)

    @property
    def binary_digests(self) -> dict[str, str]:
        """sha256 of each binary a node downloads (kubeadm, kubectl, kubelet, cni-plugins)."""
        return node_binary_digests(self.kubernetes_release, self.binary_sha256)

    @property
    def kubernetes_minor(self) -> str:
        """The minor of `kubernetes_version`: "1.36" for "1.36" and for "1.36.3"."""
        major, minor = self.kubernetes_version.split(".")[:2]
        return f"{major}.{minor}"

    @property
    def api_host(self) -> str:
        return self.api_endpoint.rpartition(":")[0]

    @property
    def api_port(self) -> int:
        return int(self.api_endpoint.rpartition(":")[2])

    @property
    def fleetlock_ip(self) -> ipaddress.IPv4Address:
        """The fixed Service IP of the fleet-lock server, which Zincati reaches before DNS."""
        return self.service_cidr.network_address + 15


class OperatingSystem(StrictModel):
    flavor: Literal["fedora-coreos", "flatcar"] = "fedora-coreos"
    """The operating system installed: Fedora CoreOS, or Flatcar Container Linux."""
    stream: Literal["stable", "testing", "next"] = "stable"
    """Fedora CoreOS only: the stream the build comes from."""
    channel: Literal["stable", "beta", "alpha"] | None = None
    """Flatcar only: the channel the release comes from (none: stable)."""
    version: str
    """The exact release the machines install. Fedora CoreOS: a build of `stream`, e.g.
    42.20250721.3.0 (its third field is the stream's number: next 1, testing 2, stable 3).
    Flatcar: a release of `channel`, e.g. 4593.2.5 (its second field is the channel's number:
    alpha 0, beta 1, stable 2)."""
    cached_install: bool = False
    """Serve the boot files from Matchbox's /assets/fedora-coreos/ (Flatcar: /assets/flatcar/)."""

    # `flavor` is validated first (field order): a field of the other flavor is refused by
    # name; when the flavor is itself refused it is absent, and the fields are checked alone.
    @field_validator("stream")
    @classmethod
    def _fcos_stream(cls, value: str, info: ValidationInfo) -> str:
        problem = other_flavor_field_problem("stream", info.data.get("flavor"))
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("channel")
    @classmethod
    def _flatcar_channel(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = other_flavor_field_problem("channel", info.data.get("flavor"))
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("version")
    @classmethod
    def _release_of_stream(cls, value: str, info: ValidationInfo) -> str:
        # `stream` and `channel` come first; when one is itself refused it is absent, and the
        # version is checked on its own.
        flavor = info.data.get("flavor")
        if flavor == "flatcar":
            channel = (info.data["channel"] or "stable") if "channel" in info.data else None
            problem = flatcar_version_problem(value, channel)
        elif flavor == "fedora-coreos":
            problem = build_id_problem(value, info.data.get("stream"))
        else:
            problem = None
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def is_flatcar(self) -> bool:
        return self.flavor == "flatcar"

    @property
    def flatcar_channel(self) -> str:
        """The Flatcar channel the release comes from: `channel`, or stable."""
        return self.channel or "stable"


class Matchbox(StrictModel):
    http_endpoint: str = Field(pattern=r"^https?://[^/\s]+$")
    """Matchbox's HTTP API, which machines boot from, e.g. http://matchbox.home.arpa:8080."""
    rpc_endpoint: str = Field(pattern=r"^[^/\s:]+:[0-9]+$")
    """Matchbox's gRPC API (`host:8081`), which the program writes through."""
    # Set them with `pulumi config set --secret --path matchbox.clientKey < client.key` (on the
    # command line a PEM value would start with `-----`, which the CLI reads as a flag).
    client_cert: str = Field(min_length=1)
    """The gRPC API's client certificate (PEM; a secret)."""
    client_key: str = Field(min_length=1)
    """The gRPC API's client key (PEM; a secret)."""
    ca_cert: str = Field(min_length=1)
    """The CA that signed Matchbox's server certificate (PEM; a secret)."""


class Gates(StrictModel):
    """How long `pulumi up` waits for the machines before it gives up, naming the laggards."""

    registered_timeout_seconds: WholeNumber = Field(default=3600, ge=10)
    """Gate 1: how long until every machine is a Node."""
    ready_timeout_seconds: WholeNumber = Field(default=1800, ge=10)
    """Gate 2: how long until every Node is Ready."""
    reinstall_timeout_seconds: WholeNumber = Field(default=3600, ge=10)
    """How long a reinstalled machine has to come back Ready as a new boot: PXE, install to
    disk, reboot, join."""
    drain_timeout_seconds: WholeNumber = Field(default=600, ge=10)
    """How long a reinstall waits for the machine's Node to drain before it goes on."""
    poll_seconds: WholeNumber = Field(default=10, ge=1)
    """How often the gates ask the cluster."""


class Admin(StrictModel):
    user: AdminUser
    """The admin user on every machine: a passwordless sudoer."""
    ssh_authorized_keys: list[SshPublicKey] = Field(min_length=1)
    """Its OpenSSH public keys, one or more."""
    password_hash: PasswordHash | None = None
    """Its password hash for the console (crypt(3) form), if any."""


class Taint(StrictModel):
    """A taint kubeadm puts on the machine's Node when it registers (nodeRegistration.taints)."""

    key: TaintKey
    """A Kubernetes label key: a name with an optional DNS-subdomain prefix, `example.com/gpu`."""
    value: TaintValue | None = None
    """A Kubernetes label value (at most 63 characters, may be empty), or none."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    """What the taint does to pods that do not tolerate it (Kubernetes' three effects)."""


class Bmc(StrictModel):
    """A machine's baseboard management controller, for a one-time network boot and a power
    cycle when the machine is (re)installed. The password is a secret: set it with
    `pulumi config set --secret --path 'machines.w1.bmc.password' ...`."""

    kind: Literal["ipmi", "redfish"]
    """`ipmi` (ipmitool over LAN) or `redfish` (its REST API over HTTPS)."""
    address: str = Field(min_length=1, pattern=r"^[^\s/]+$")
    """The BMC's host name or IP address (with `:port` for Redfish if not 443)."""
    user: str = Field(min_length=1)
    """The BMC user."""
    password: str = Field(min_length=1)
    """The BMC password; a secure value (`pulumi config set --secret --path ...`)."""
    system_path: str = Field(
        default="/redfish/v1/Systems/1", pattern=r"^/redfish/v1/Systems/[^\s]+$"
    )
    """Redfish only: the ComputerSystem to act on."""
    efi_boot: bool = False
    """Ask the BMC for a UEFI one-time network boot (IPMI `options=efiboot`, Redfish
    `BootSourceOverrideMode: UEFI`); for UEFI machines whose BMC otherwise boots legacy PXE."""


class Machine(StrictModel):
    name: MachineName
    """The machine's key in `stubernetes:machines`: its host name and Node name."""
    mac: MacAddress
    """The MAC address it network-boots with: Matchbox picks its profile by it."""
    role: Role
    """`controller` (control plane and etcd) or `worker`."""
    install_disk: DevicePath
    """The disk Fedora CoreOS is installed to, under /dev/ (best a /dev/disk/by-id/ path)."""
    init: bool = False
    """Whether this controller runs `kubeadm init`; default: the first controller in file order."""
    address: ipaddress.IPv4Interface | None = None
    """A static address with its prefix length (192.168.10.21/24); none: DHCP."""
    gateway: ipaddress.IPv4Address | None = None
    """With a static `address`: the default gateway, inside its subnet."""
    dns: list[ipaddress.IPv4Address] = Field(default_factory=list)
    """With a static `address`: the DNS servers."""
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Labels the machine's kubelet puts on its Node when it joins (`--node-labels`): Kubernetes
    label keys and values, and none in the kubernetes.io / k8s.io namespaces that kubelet
    refuses (such as node-role.kubernetes.io/*)."""
    taints: list[Taint] = Field(default_factory=list)
    """Taints kubeadm puts on the Node when it registers."""
    kernel_args: list[InstalledKernelArg] = Field(default_factory=list)
    """Kernel arguments of the installed system (they go to Ignition `kernelArguments`, which
    costs one extra reboot on the first boot); no coreos.inst.*, coreos.live.* or ignition.*."""
    installer_kernel_args: list[InstallerKernelArg] = Field(default_factory=list)
    """Kernel arguments of the live installer only (its PXE boot), e.g. a serial console."""
    snippets: list[dict[str, Any]] = Field(default_factory=list)
    """Ignition fragments merged into the machine's config by Ignition itself."""
    generation: WholeNumber = Field(default=1, ge=1)
    """Bump to reinstall the machine from scratch: new token, new Ignition, new Matchbox objects."""
    bmc: Bmc | None = None
    """How to network-boot the machine once and power-cycle it: its BMC."""
    pxe_command: str | None = Field(default=None, min_length=1)
    """Or a command of your own with $name, $mac and $address (a smart plug, wake-on-LAN).
    Neither: by hand."""

    @property
    def is_controller(self) -> bool:
        return self.role == "controller"


class StackConfig(StrictModel):
    cluster: Cluster
    """`stubernetes:cluster`."""
    os: OperatingSystem
    """`stubernetes:os`."""
    matchbox: Matchbox
    """`stubernetes:matchbox`."""
    admin: Admin
    """`stubernetes:admin`."""
    machines: tuple[Machine, ...]
    """`stubernetes:machines`, in file order."""
    gates: Gates = Gates()
    """`stubernetes:gates`."""
    releases: dict[str, ReleaseSettings] = Field(default_factory=dict)
    """`stubernetes:releases`."""
    vip: Vip | None = None
    """`stubernetes:vip`: the API endpoint's virtual IP, if the controllers hold one."""
    backups: Backups | None = None
    """`stubernetes:backups`: etcd snapshots, and what a reinstalled only controller restores."""

    @cached_property
    def controllers(self) -> tuple[Machine, ...]:
        # Cached: asked once per machine, it would otherwise cost O(machines^2).
        return tuple(m for m in self.machines if m.is_controller)

    def bootstraps_cluster(self, machine: Machine) -> bool:
        """Whether this machine runs `kubeadm init`: the init controller on its first install,
        or on a rebuild when it is the only controller or the stack names a snapshot to restore
        the cluster from (`backups.restore`: every controller lost). A reinstalled init
        controller with peers otherwise joins them."""
        return machine.init and (
            machine.generation == 1 or len(self.controllers) == 1 or self.restores_snapshot
        )

    @property
    def restores_snapshot(self) -> bool:
        """The stack names the snapshot a rebuilt init controller restores."""
        return self.backups is not None and self.backups.restore is not None

    @property
    def init_controller(self) -> Machine:
        """The controller that runs `kubeadm init` (validated to exist exactly once)."""
        return next(m for m in self.machines if m.init)

    def machine(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)
