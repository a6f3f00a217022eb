"""Offline render: run the Pulumi program under mocks and write what it would create.

- `matchbox/`: profiles, groups and Ignition in the layout Matchbox reads from `-data-path`;
- `releases/<name>.yaml`: each Helm release and the gate it waits for;
- `resources.json`: every registered resource with its options and inputs, secrets as digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import rpc

from components.machine import matchbox_id
from ignition.validate import check_with_ignition_validate, have_ignition_validate
from stackconfig import LoadedStack
from stubernetes.mocks import Registration, unwrap_secrets
from stubernetes.output import write_tree
from stubernetes.program_run import run_program

PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"


def secret_digest(value: Any) -> dict[str, str]:
    canonical = json.dumps(unwrap_secrets(value), sort_keys=True, separators=(",", ":"))
    return {"secret": "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()}


def redact(value: Any) -> Any:
    """Inputs with every secret replaced by the digest of its value."""
    if rpc.is_rpc_secret(value):
        return secret_digest(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def resource_record(registration: Registration) -> dict[str, Any]:
    return {
        "urn": registration.urn,
        "type": registration.type,
        "name": registration.name,
        "parent": registration.parent,
        "custom": registration.custom,
        "provider": registration.provider.split("::")[0] if registration.provider else "",
        "dependencies": registration.dependencies,
        "deleteBeforeReplace": registration.delete_before_replace,
        "replaceOnChanges": registration.replace_on_changes,
        "replaceWith": registration.replace_with,
        "inputs": redact(registration.inputs),
    }


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def matchbox_files(registrations: Sequence[Registration]) -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    for registration in registrations:
        inputs = unwrap_secrets(registration.inputs)
        object_id = inputs.get("name", "")
        if registration.type == PROFILE:
            files[Path(f"matchbox/profiles/{object_id}.json")] = _json(
                {
                    "id": object_id,
                    "name": object_id,
                    "boot": {
                        "kernel": inputs["kernel"],
                        "initrd": inputs.get("initrds", []),
                        "args": inputs.get("args", []),
                    },
                    "ignition_id": f"{object_id}.ign",
                }
            )
            files[Path(f"matchbox/ignition/{object_id}.ign")] = inputs["rawIgnition"].encode()
        elif registration.type == GROUP:
            files[Path(f"matchbox/groups/{object_id}.json")] = _json(
                {
                    "id": object_id,
                    "name": object_id,
                    "profile": inputs["profile"],
                    "selector": inputs.get("selector", {}),
                    "metadata": inputs.get("metadata", {}),
                }
            )
    return files


def release_files(registrations: Sequence[Registration]) -> dict[Path, bytes]:
    gates = {r.urn: r.name for r in registrations if r.type == COMMAND}
    files = {}
    for registration in registrations:
        if registration.type != RELEASE:
            continue
        inputs = redact(registration.inputs)
        document = {
            "name": inputs.get("name"),
            "chart": inputs.get("chart"),
            "repository": inputs.get("repositoryOpts", {}).get("repo"),
            "version": inputs.get("version"),
            "namespace": inputs.get("namespace"),
            "values": inputs.get("values", {}),
            "waitsFor": sorted(gates[urn] for urn in registration.dependencies if urn in gates),
        }
        files[Path(f"releases/{registration.name}.yaml")] = yaml.safe_dump(
            document, sort_keys=False
        ).encode()
    return files


def render_stack(loaded: LoadedStack, out: Path, seed: str) -> str:
    run = run_program(loaded.raw, secret_keys=_secret_keys(loaded), seed=seed)
    registrations = sorted(run.registrations, key=lambda r: (r.type, r.name))
    files = {
        **matchbox_files(registrations),
        **release_files(registrations),
        Path("resources.json"): _json([resource_record(r) for r in registrations]),
    }
    if have_ignition_validate():
        for path, contents in files.items():
            if path.suffix == ".ign":
                check_with_ignition_validate(str(path), contents)
    write_tree(files, out)
    rows = []
    for machine in loaded.config.machines:
        ignition = files[Path(f"matchbox/ignition/{matchbox_id(loaded.config, machine)}.ign")]
        role = f"{machine.role} (init)" if machine.init else machine.role
        rows.append((machine.name, role, machine.mac, f"{len(ignition):,} B"))
    return _table(("MACHINE", "ROLE", "MAC", "IGNITION"), rows) + _notes(loaded, out)


def _secret_keys(loaded: LoadedStack) -> list[str]:
    """Top-level config keys holding a secure value, as Pulumi marks them."""
    return sorted(
        {path.split(":", 1)[1].split(".")[0].split("[")[0] for path in loaded.secure_paths}
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _notes(loaded: LoadedStack, out: Path) -> str:
    notes = [
        f"\nwrote {out}/matchbox, {out}/releases and {out}/resources.json",
        "stand-in PKI and tokens derived from --seed: for review only, never deploy",
    ]
    notes += [f"stand-in for secure value: {path}" for path in loaded.secure_paths]
    return "\n".join(notes)
