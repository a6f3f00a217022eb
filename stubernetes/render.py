"""Offline render: run the Pulumi program under mocks and write what it would create.

- `matchbox/`: profiles, groups and Ignition in the layout Matchbox reads from `-data-path`
  (each `.ign` byte for byte the `rawIgnition` the program uploads);
- `machines/<name>/`: every file the machine's Ignition creates, at its path, its units and
  presets, and `summary.txt`;
- `releases/<name>.yaml`: each Helm release and the gate it waits for;
- `resources.json`: every registered resource with its options and inputs, each secret part
  replaced by its digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pulumi.runtime import rpc

from components.machine import matchbox_id
from components.previous import CLUSTER_EXISTS_OUTPUT
from ignition.validate import (
    check_with_ignition_validate,
    have_ignition_validate,
    validated_ahead,
)
from stackconfig import LoadedStack, Machine, StackConfig
from stackconfig.stackfile import SECURE_STAND_IN
from stubernetes.mock_run_tuning import no_full_collections
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks, unwrap_secrets
from stubernetes.output import write_tree
from stubernetes.program_run import run_program
from stubernetes.render_outputs import OUTPUTS_FILE, outputs_document
from stubernetes.review import MachineFacts, NamedSecret, SecretFinder, review_tree
from stubernetes.upgrade_plan import bump_text

PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"


def secret_digest(value: Any) -> dict[str, str]:
    canonical = json.dumps(unwrap_secrets(value), sort_keys=True, separators=(",", ":"))
    return {"secret": "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()}


def redact(value: Any) -> Any:
    """A value with each secret part replaced by the digest of its value, the rest as it is."""
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
        "inputs": redact(registration.inputs_in_place),
    }


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def matchbox_files(registrations: Sequence[Registration]) -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    for registration in registrations:
        inputs = unwrap_secrets(registration.inputs_in_place)
        object_id = inputs.get("name", "")
        if registration.type == PROFILE:
            profile: dict[str, Any] = {
                "id": object_id,
                "name": object_id,
                "ignition_id": f"{object_id}.ign",
            }
            # A Flatcar machine's own profile boots nothing by network: its Ignition alone.
            if "kernel" in inputs:
                profile["boot"] = {
                    "kernel": inputs["kernel"],
                    "initrd": inputs.get("initrds", []),
                    "args": inputs.get("args", []),
                }
            files[Path(f"matchbox/profiles/{object_id}.json")] = _json(profile)
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
        inputs = redact(registration.inputs_in_place)
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


def _secret_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if rpc.is_rpc_secret(value):
        plain = unwrap_secrets(value)
        if isinstance(plain, str):
            yield path, plain
        elif isinstance(plain, dict | list):
            yield from _plain_leaves(plain, path)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_leaves(item, f"{path}[{index}]")


def _plain_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _plain_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _plain_leaves(item, f"{path}[{index}]")


def produced_secrets(registrations: Sequence[Registration]) -> list[NamedSecret]:
    """Every secret a resource produces (an output that is not one of its inputs), named
    `<resource>.<output>`: the keys and passwords the program generates."""
    secrets = []
    for registration in registrations:
        for path, value in _secret_leaves(registration.outputs_in_place, ""):
            if path.split(".")[0].split("[")[0] not in registration.inputs_in_place:
                secrets.append(NamedSecret(f"{registration.name}.{path}", value))
    return secrets


def distinct_stand_ins(loaded: LoadedStack) -> tuple[dict[str, Any], list[NamedSecret]]:
    """The stack's values with each secure value's stand-in made distinct, in the order the
    stack file lists them, so a summary can name the one a machine receives."""
    count = 0
    named: list[NamedSecret] = []

    def walk(value: Any) -> Any:
        nonlocal count
        if value == SECURE_STAND_IN:
            stand_in = f"{SECURE_STAND_IN}-{count}"
            if count < len(loaded.secure_paths):
                named.append(NamedSecret(loaded.secure_paths[count], stand_in))
            count += 1
            return stand_in
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    values = {k: walk(v) for k, v in loaded.raw.items()}
    if count != len(loaded.secure_paths):
        # A plain value spelled like the stand-in: the positions are not known for sure.
        return loaded.raw, []
    return values, named


def _role(machine: Machine) -> str:
    return f"{machine.role} (init)" if machine.init else machine.role


def machine_trees(
    stack: StackConfig, files: dict[Path, bytes], secrets: Sequence[NamedSecret]
) -> dict[Path, bytes]:
    trees: dict[Path, bytes] = {}
    os = f"Fedora CoreOS {stack.os.version} ({stack.os.stream})"
    finder = SecretFinder(secrets)
    for machine in stack.machines:
        object_id = matchbox_id(stack, machine)
        profile = json.loads(files[Path(f"matchbox/profiles/{object_id}.json")])
        facts = MachineFacts(machine.name, _role(machine), machine.mac, os, profile)
        ignition = files[Path(f"matchbox/ignition/{object_id}.ign")]
        for relative, contents in review_tree(facts, ignition, finder).items():
            trees[Path("machines", machine.name, *PurePosixPath(relative).parts)] = contents
    return trees


@dataclass(frozen=True)
class Render:
    """Everything a render writes, kept in memory; `check` stops here."""

    loaded: LoadedStack
    files: dict[Path, bytes]
    registrations: list[Registration]


def stage_outputs(previous: dict[str, Any] | None, cluster_exists: bool) -> dict[str, Any]:
    """The previous outputs a render's program reads (components/previous.py): an earlier
    render's, or none, as for a new stack; with `cluster_exists`, also what an update that saw
    the cluster answer records, when no machine founds the cluster any more
    (ignition.kubeadm.founds_cluster)."""
    outputs = dict(previous or {})
    if cluster_exists:
        outputs[CLUSTER_EXISTS_OUTPUT] = True
    return outputs


def render_files(
    loaded: LoadedStack,
    seed: str,
    previous: dict[str, Any] | None = None,
    cluster_exists: bool = False,
) -> Render:
    """Run the program under mocks, check every Ignition config, build every file.

    `previous`: the stack's previous outputs (an earlier render's), none for a new stack;
    `cluster_exists`: render the stage after the first update that saw the cluster answer."""
    values, stack_secrets = distinct_stand_ins(loaded)
    monitor = RecordingMonitor(
        StandInMocks(seed, previous_outputs=stage_outputs(previous, cluster_exists))
    )
    run = run_program(values, secret_keys=_secret_keys(loaded), seed=seed, monitor=monitor)
    # The SDK's objects of the run stay until the next run (the stack resource holds them): a
    # full collection now would walk all of them and free none.
    with no_full_collections():
        registrations = sorted(run.registrations, key=lambda r: (r.type, r.name))
        files = matchbox_files(registrations)
        validate = have_ignition_validate()
        configs = [(str(path), data) for path, data in files.items() if path.suffix == ".ign"]
        with validated_ahead(configs if validate else []):
            files.update(release_files(registrations))
            files[Path("resources.json")] = _json([resource_record(r) for r in registrations])
            files[OUTPUTS_FILE] = outputs_document(run.stack_outputs)
            for name, config in configs if validate else []:
                check_with_ignition_validate(name, config)
        secrets = [*produced_secrets(registrations), *stack_secrets]
        files.update(machine_trees(loaded.config, files, secrets))
    return Render(loaded, files, registrations)


def machine_rows(render: Render) -> list[tuple[str, str, str, str]]:
    stack = render.loaded.config
    rows = []
    for machine in stack.machines:
        ignition = render.files[Path(f"matchbox/ignition/{matchbox_id(stack, machine)}.ign")]
        rows.append((machine.name, _role(machine), machine.mac, f"{len(ignition):,} B"))
    return rows


def render_stack(
    loaded: LoadedStack,
    out: Path,
    seed: str,
    previous: dict[str, Any] | None = None,
    cluster_exists: bool = False,
) -> str:
    render = render_files(loaded, seed, previous, cluster_exists)
    write_tree(render.files, out)
    table = _table(("MACHINE", "ROLE", "MAC", "IGNITION"), machine_rows(render))
    stage = [CLUSTER_EXISTS_NOTE] if cluster_exists else []
    notes = _notes(loaded, out, stage)
    if previous is not None:
        notes += f"\nprevious state: the earlier render's {out / OUTPUTS_FILE}"
        bump = bump_text(render.registrations, previous, loaded.config.cluster.kubernetes_release)
        if bump:
            notes += f"\n{bump}"
    return table + notes


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


CLUSTER_EXISTS_NOTE = (
    "stage: the cluster exists (an earlier update saw it answer): every controller joins with "
    "a certificate key, and no Ignition carries a private key"
)


def _notes(loaded: LoadedStack, out: Path, stage: Sequence[str] = ()) -> str:
    notes = [
        f"\nwrote {out}/matchbox, {out}/machines, {out}/releases, {out}/resources.json and "
        f"{out}/{OUTPUTS_FILE}",
        "stand-in PKI and tokens derived from --seed: for review only, never deploy",
        *stage,
    ]
    notes += [f"stand-in for secure value: {path}" for path in loaded.secure_paths]
    return "\n".join(notes)
