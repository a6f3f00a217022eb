"""Warnings: a stack that is valid but probably not what was meant. They are printed (by
`stubernetes`) or logged (by the Pulumi program); nothing stops because of them."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from stackconfig.model import Machine, StackConfig
from stackconfig.parse import NAMESPACE
from stackconfig.problems import Problem, machine_where


def _covered(path: str, secure_paths: Collection[str]) -> bool:
    """Whether `path` (`machines.w1.bmc.password`) or a value that holds it is secure.

    `secure_paths` are in either form `stubernetes:machines.w1.bmc.password` (what
    `LoadedStack.secure_paths` records) or without the namespace; a whole top-level key
    (`stubernetes:machines`, as Pulumi lists the secret keys of `--path` secrets) covers
    everything under it.
    """
    known = {p.removeprefix(f"{NAMESPACE}:") for p in secure_paths}
    parts = path.split(".")
    return any(".".join(parts[:n]) in known for n in range(1, len(parts) + 1))


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
                "only its own subnet, so the package and image downloads of its setup fail "
                "unless they are served there",
            )
        )
    if not machine.dns:
        warnings.append(
            Problem(
                where,
                "dns",
                f"a static address ({machine.address}) without dns servers: the machine "
                "cannot resolve names, so the package and image downloads of its setup fail",
            )
        )
    return warnings


def _password_warnings(machine: Machine, secure_paths: Collection[str]) -> list[Problem]:
    path = f"machines.{machine.name}.bmc.password"
    if machine.bmc is None or _covered(path, secure_paths):
        return []
    return [
        Problem(
            machine_where(machine.name),
            "bmc.password",
            "the BMC password is plain text in the stack config, where anyone who reads the "
            f"file reads it; make it a secret: pulumi config set --secret --path '{path}' ...",
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


def stack_warnings(stack: StackConfig, secure_paths: Collection[str]) -> list[Problem]:
    """The warnings of a valid stack; `secure_paths` names the values given as secrets."""
    warnings = _api_endpoint_warnings(stack)
    for machine in stack.machines:
        warnings += _network_warnings(machine)
        warnings += _password_warnings(machine, secure_paths)
    return warnings
