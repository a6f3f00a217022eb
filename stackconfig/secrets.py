"""Secrets given in plain text: refused, each with the `pulumi config set --secret` line that
fixes it.

The values the program treats as secrets: Matchbox's gRPC client credentials (the program wraps
them in `pulumi.Output.secret`, components/program.py), the admin's password hash (a crypt(3)
hash can be guessed offline, which is why shadow(5) is readable by root alone) and each BMC
password (a secret variable of the install step, components/machine.py). A BMC password is
refused too, not only warned about: the BMC powers, boots and reaches the console of its
machine, more than root on its OS does, and a stack file is meant to be committed ("Stack
configuration files should be committed to version control", pulumi.com/docs/iac/concepts/
config), so a factory default printed on the machine is no reason to publish it.

The check reads the raw values, before they are parsed, so that it reports beside every
problem the parser finds. Which values are secure comes from the caller: `secure_paths`, each
`stubernetes:machines.w1.bmc.password` (the stack file's own `secure:` paths, which
`LoadedStack.secure_paths` records) or without the namespace, or a whole top-level key such as
`stubernetes:matchbox`, which covers everything under it: the Pulumi program knows no more,
since Pulumi names a `--path` secret's whole top-level key as secret
(components/config.py `_secret_keys`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stackconfig.parse import NAMESPACE
from stackconfig.problems import Problem, machine_where

# `pulumi config set` prompts for a value not given on its command line and reads a multi-line
# one piped to standard input (pulumi.com/docs/iac/cli/commands/pulumi_config_set): a secret
# never has to appear on a command line or in a shell's history.
_PROMPT = "(it prompts for the value)"


@dataclass(frozen=True)
class SecretField:
    """One value the program treats as a secret: where it is, and how to set it as one."""

    where: str
    field: str
    path: str
    """Its `--path` under the namespace: `machines.w1.bmc.password`."""
    value_from: str
    """What follows the `pulumi config set` line: `< client.key`, or a note that it prompts."""

    @property
    def fix(self) -> str:
        return f"pulumi config set --secret --path {self.path} {self.value_from}"


def _section_field(section: str, key: str, value_from: str) -> SecretField:
    return SecretField(f"{NAMESPACE}:{section}", key, f"{section}.{key}", value_from)


# The files `stubernetes matchbox-certs` writes (stubernetes/certs.py prints the same lines).
SECTION_SECRETS = (
    _section_field("matchbox", "clientCert", "< client.crt"),
    _section_field("matchbox", "clientKey", "< client.key"),
    _section_field("matchbox", "caCert", "< ca.crt"),
    _section_field("admin", "passwordHash", _PROMPT),
    _section_field("backups", "s3.secretAccessKey", _PROMPT),
)
# Under each machine: (the path inside the machine, its field as problems name it).
MACHINE_SECRETS = (("bmc", "password"),)


def _given(value: object) -> bool:
    # An absent, null or empty value holds nothing to hide (and the parser names an empty one).
    return value is not None and value != ""


def _lookup(values: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    node: object = values
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def given_secrets(values: Mapping[str, Any]) -> Iterator[SecretField]:
    """Every secret field that `values` (the raw, un-namespaced stack values) gives a value."""
    for secret in SECTION_SECRETS:
        if _given(_lookup(values, tuple(secret.path.split(".")))):
            yield secret
    machines = values.get("machines")
    if not isinstance(machines, Mapping):
        return
    for name, fields in machines.items():
        if not isinstance(fields, Mapping):
            continue
        for keys in MACHINE_SECRETS:
            if _given(_lookup(fields, keys)):
                dotted = ".".join(keys)
                path = f"machines.{name}.{dotted}"
                yield SecretField(machine_where(str(name)), dotted, path, _PROMPT)


def covered(path: str, secure_paths: Collection[str]) -> bool:
    """Whether `path` (`machines.w1.bmc.password`), or a value that holds it, is secure."""
    known = {p.removeprefix(f"{NAMESPACE}:") for p in secure_paths}
    parts = path.split(".")
    return any(".".join(parts[:n]) in known for n in range(1, len(parts) + 1))


def plain_secret_problems(
    values: Mapping[str, Any], secure_paths: Collection[str]
) -> list[Problem]:
    """A problem for each secret that `values` gives in plain text."""
    return [
        Problem(
            secret.where,
            secret.field,
            "a secret given in plain text, which anyone who reads the stack file (or its "
            f"history) reads; set it as a secret: {secret.fix}",
        )
        for secret in given_secrets(values)
        if not covered(secret.path, secure_paths)
    ]
