"""URNs as the Pulumi engine builds them, for commands a user types (`pulumi up --replace`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.machine import anchor_name
from stackconfig import Machine, StackConfig

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
MACHINE_TYPE = "stubernetes:machine:Machine"
ANCHOR_TYPE = "random:index/randomId:RandomId"


def project_name() -> str:
    return str(yaml.safe_load(PROJECT_FILE.read_text())["name"])


def urn(stack: str, type_chain: list[str], name: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types and type, joined by $>::<name>`; the root
    stack's own type is not part of its children's chains."""
    return f"urn:pulumi:{stack}::{project_name()}::{'$'.join(type_chain)}::{name}"


def install_anchor_urn(config: StackConfig, machine: Machine, stack: str) -> str:
    return urn(stack, [MACHINE_TYPE, ANCHOR_TYPE], anchor_name(config, machine))
