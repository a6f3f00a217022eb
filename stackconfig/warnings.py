"""Warnings: a stack that is valid but probably not what was meant. They are printed (by
`stubernetes`) or logged (by the Pulumi program); nothing stops because of them."""

from __future__ import annotations

import ipaddress

from pydantic.alias_generators import to_camel

from stackconfig.lan_warnings import lan_warnings
from stackconfig.model import Machine, StackConfig
from stackconfig.parse import NAMESPACE
from stackconfig.pinned_digests import CNI_PLUGINS_VERSION, CRICTL_VERSION
from stackconfig.problems import Problem, machine_where
from stackconfig.release_digests import CNI_PLUGINS, CRICTL, pinned_digests, supplied_digests


def _network_warnings(machine: Machine) -> list[Problem]:
    if machine.address is None:
        return []
    where = machine_where(machine.name)
    warnings = []
    if machine.gateway is None:
        warnings.append(
            Problem(
                where,
                "gateway",
                f"a static address ({machine.address}) without a gateway: the machine reaches "
                "only its own subnet, so the container image pulls of its kubelet fail "
                "unless they are served there",
            )
        )
    if not machine.dns:
        warnings.append(
            Problem(
                where,
                "dns",
                f"a static address ({machine.address}) without dns servers: the machine "
                "cannot resolve names, so the container image pulls of its kubelet fail",
            )
        )
    return warnings


def _controller_address_warnings(machine: Machine) -> list[Problem]:
    """A controller without a static address: kubeadm takes the address of the interface with
    the default route when the controller joins (`SetAPIEndpointDynamicDefaults`, kubernetes
    cmd/kubeadm/app/util/config/initconfiguration.go) and writes it into the static pods: the
    API server's `--advertise-address` (cmd/kubeadm/app/phases/controlplane/manifests.go
    getAPIServerCommand) and etcd's `--listen-peer-urls` and `--initial-advertise-peer-urls`
    (cmd/kubeadm/app/phases/etcd/local.go getEtcdCommand). A later lease with another address
    leaves etcd unable to bind its peer URL, and a member's peer URL changes only through the
    members API (etcd-io/website content/en/docs/v3.6/op-guide/runtime-configuration.md,
    "Update advertise peer URLs"). A DHCP reservation is a fair choice, so this only warns."""
    if not machine.is_controller or machine.address is not None:
        return []
    return [
        Problem(
            machine_where(machine.name),
            "address",
            "a controller without a static address (DHCP): kubeadm writes the address it has "
            "when it joins into its API server's --advertise-address and its etcd's "
            "--listen-peer-urls and --initial-advertise-peer-urls, so a later lease with "
            "another address leaves its etcd unable to bind and its member unreachable until "
            "`etcdctl member update`; give it a static address, or a DHCP reservation for its "
            f"MAC {machine.mac}",
        )
    ]


def _api_endpoint_warnings(stack: StackConfig) -> list[Problem]:
    if len(stack.controllers) != 1:
        return []
    host = stack.cluster.api_host
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return []  # A DNS name: where it points is not for the config to know.
    controller = stack.controllers[0]
    if controller.address is not None and controller.address.ip == address:
        return []
    if stack.vip is not None and stack.vip.address == address:
        return []  # The controller holds the VIP (stackconfig.vip).
    if controller.address is None:
        why = (
            f"controller '{controller.name}' has no static address (DHCP), so unless DHCP "
            "always gives it that address"
        )
    else:
        why = f"it is not the address of the only controller '{controller.name}' "
        why += f"({controller.address.ip}), so unless it forwards there"
    return [
        Problem(
            f"{NAMESPACE}:cluster",
            "apiEndpoint",
            f"{host} is an IP address and {why}, the nodes will not reach the API server "
            "and never join; use the controller's address or a DNS name",
        )
    ]


def _pinned_origin(name: str, release: str) -> str:
    """What a pinned digest is of, and where it was published (stackconfig/pinned_digests.py)."""
    if name == CNI_PLUGINS:
        return f"the CNI plugins' archive v{CNI_PLUGINS_VERSION} (from its GitHub release)"
    if name == CRICTL:
        return f"crictl's archive v{CRICTL_VERSION} (from cri-tools' GitHub release)"
    return f"{name} of Kubernetes {release} (from dl.k8s.io)"


def _binary_digest_warnings(stack: StackConfig) -> list[Problem]:
    """A supplied digest that replaces a pinned one: right for binaries of one's own build,
    a mistake (or a tampered download) otherwise."""
    release = stack.cluster.kubernetes_release
    pinned = pinned_digests(release)
    return [
        Problem(
            f"{NAMESPACE}:cluster",
            f"binarySha256.{to_camel(name.replace('-', '_'))}",
            f"replaces the digest pinned for {_pinned_origin(name, release)}; "
            "nodes will run only a binary with the digest given here",
        )
        for name, digest in supplied_digests(stack.cluster.binary_sha256).items()
        if name in pinned and pinned[name] != digest
    ]


def stack_warnings(stack: StackConfig) -> list[Problem]:
    """The warnings of a valid stack. (Secrets given in plain text are refused, not warned
    about: stackconfig.secrets.)"""
    warnings = _api_endpoint_warnings(stack) + _binary_digest_warnings(stack)
    warnings += lan_warnings(stack)
    for machine in stack.machines:
        warnings += _network_warnings(machine)
        warnings += _controller_address_warnings(machine)
    return warnings
