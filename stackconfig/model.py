"""Typed model of a stubernetes stack: the cluster, the OS, Matchbox, the admin and the machines.

Field names follow the stack file (camelCase); Python attributes are snake_case. Every model
forbids unknown keys, so a typo in a stack file is an error rather than a silently ignored key.
Checks that span several machines live in `stackconfig.checks`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

MAC_FORMS = (
    re.compile(
        r"^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$"
    ),
    re.compile(
        r"^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$"
    ),
)
RFC1123_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
SUPPORTED_KUBERNETES_MINORS = ("1.31", "1.32", "1.33", "1.34")


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


def check_ssh_public_key(value: str) -> str:
    """An OpenSSH public key line: a known type, base64 that decodes, and the same type inside."""
    parts = value.split()
    if len(parts) < 2:
        raise ValueError("malformed SSH key: expected '<type> <base64> [comment]'")
    key_type, blob = parts[0], parts[1]
    if key_type not in SSH_KEY_TYPES:
        raise ValueError(f"malformed SSH key: unknown key type {key_type!r}")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error:
        raise ValueError("malformed SSH key: key data is not base64") from None
    length = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if raw[4 : 4 + length].decode("ascii", "replace") != key_type:
        raise ValueError(f"malformed SSH key: key data does not hold a {key_type} key")
    return value.strip()


def check_absolute_device(value: str) -> str:
    if not value.startswith("/dev/"):
        raise ValueError(f"must be an absolute device path under /dev/, got {value!r}")
    return value


def check_rfc1123_label(value: str) -> str:
    if not RFC1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 1123 label (lowercase letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit)"
        )
    return value


MacAddress = Annotated[str, AfterValidator(normalize_mac)]
SshPublicKey = Annotated[str, AfterValidator(check_ssh_public_key)]
DevicePath = Annotated[str, AfterValidator(check_absolute_device)]
Rfc1123Label = Annotated[str, AfterValidator(check_rfc1123_label)]


class StrictModel(BaseModel):
    """Stack-file keys are camelCase; unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class ReleaseSettings(StrictModel):
    """One entry of `stubernetes:releases`: overrides a default release or adds a new one."""

    chart: str | None = None
    repository: str | None = None
    version: str | None = None
    namespace: Rfc1123Label | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    after: Literal["registered", "ready"] | None = None


class Cluster(StrictModel):
    name: Rfc1123Label
    api_endpoint: str = Field(description="host:port where nodes and the operator reach the API")
    kubernetes_version: str = Field(description="minor version, e.g. '1.31'")
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    domain: str = Field(description="household DNS domain, e.g. lab.home.arpa")
    # Reinstalling the only controller wipes etcd, which is the cluster's whole state.
    allow_cluster_rebuild: bool = False

    @field_validator("api_endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _minor(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES_MINORS:
            raise ValueError(
                f"unsupported Kubernetes minor {value!r}; supported: "
                + ", ".join(SUPPORTED_KUBERNETES_MINORS)
            )
        return value

    @property
    def api_host(self) -> str:
        return self.api_endpoint.rpartition(":")[0]

    @property
    def fleetlock_ip(self) -> ipaddress.IPv4Address:
        """The fixed Service IP of the fleet-lock server, which Zincati reaches before DNS."""
        return self.service_cidr.network_address + 15


class OperatingSystem(StrictModel):
    flavor: Literal["fedora-coreos"] = "fedora-coreos"
    stream: Literal["stable", "testing", "next"] = "stable"
    version: str = Field(pattern=r"^[0-9][0-9.]*[0-9]$")
    cached_install: bool = False


class Matchbox(StrictModel):
    http_endpoint: str = Field(pattern=r"^https?://[^/\s]+$")
    rpc_endpoint: str = Field(pattern=r"^[^/\s:]+:[0-9]+$")
    # The gRPC API's client certificate, key and CA (PEM). Set them with
    # `pulumi config set --secret --path matchbox.clientKey "$(cat client.key)"`.
    client_cert: str = Field(min_length=1)
    client_key: str = Field(min_length=1)
    ca_cert: str = Field(min_length=1)


class Gates(StrictModel):
    """How long `pulumi up` waits for the machines before it gives up, naming the laggards."""

    registered_timeout_seconds: int = Field(default=3600, ge=10)
    ready_timeout_seconds: int = Field(default=1800, ge=10)
    # A reinstall: PXE, install to disk, reboot, layer packages, reboot, join.
    reinstall_timeout_seconds: int = Field(default=3600, ge=10)
    poll_seconds: int = Field(default=10, ge=1)


class Admin(StrictModel):
    user: Rfc1123Label
    ssh_authorized_keys: list[SshPublicKey] = Field(min_length=1)
    password_hash: str | None = None


class Taint(StrictModel):
    key: str = Field(min_length=1)
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Bmc(StrictModel):
    """A machine's baseboard management controller, for a one-time network boot and a power
    cycle when the machine is (re)installed. The password is a secret: set it with
    `pulumi config set --secret --path 'machines.w1.bmc.password' ...`."""

    kind: Literal["ipmi", "redfish"]
    address: str = Field(min_length=1, pattern=r"^[^\s/]+$")
    user: str = Field(min_length=1)
    password: str = Field(min_length=1)
    # Redfish only: the ComputerSystem to act on.
    system_path: str = Field(
        default="/redfish/v1/Systems/1", pattern=r"^/redfish/v1/Systems/[^\s]+$"
    )


class Machine(StrictModel):
    name: Rfc1123Label
    mac: MacAddress
    role: Literal["controller", "worker"]
    install_disk: DevicePath
    init: bool = False
    address: ipaddress.IPv4Interface | None = None
    gateway: ipaddress.IPv4Address | None = None
    dns: list[ipaddress.IPv4Address] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    kernel_args: list[str] = Field(default_factory=list)
    snippets: list[dict[str, Any]] = Field(default_factory=list)
    # Bump to reinstall the machine from scratch: new token, new Ignition, new Matchbox objects.
    generation: int = Field(default=1, ge=1)
    # How to network-boot the machine once and power-cycle it: a BMC, or a command of your own
    # with $name, $mac and $address (e.g. a smart plug, wake-on-LAN). Neither: by hand.
    bmc: Bmc | None = None
    pxe_command: str | None = Field(default=None, min_length=1)

    @property
    def is_controller(self) -> bool:
        return self.role == "controller"


class StackConfig(StrictModel):
    cluster: Cluster
    os: OperatingSystem
    matchbox: Matchbox
    admin: Admin
    machines: tuple[Machine, ...]
    gates: Gates = Gates()
    releases: dict[str, ReleaseSettings] = Field(default_factory=dict)

    @cached_property
    def controllers(self) -> tuple[Machine, ...]:
        # Cached: asked once per machine, it would otherwise cost O(machines^2).
        return tuple(m for m in self.machines if m.is_controller)

    def bootstraps_cluster(self, machine: Machine) -> bool:
        """Whether this machine runs `kubeadm init`: the init controller on its first install,
        or on a rebuild when it is the only controller. A reinstalled init controller with
        peers joins them instead."""
        return machine.init and (machine.generation == 1 or len(self.controllers) == 1)

    @property
    def init_controller(self) -> Machine:
        """The controller that runs `kubeadm init` (validated to exist exactly once)."""
        return next(m for m in self.machines if m.init)

    def machine(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)
