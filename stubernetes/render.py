"""Offline render: every machine's Ignition, validated, in Matchbox's data layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ignition import machine_ignition_json, standin_bootstrap_token, standin_cluster_material
from stackconfig import LoadedStack
from stubernetes.validate import check_ignition, write_tree


def matchbox_id(cluster: str, machine: str) -> str:
    """The id of a machine's Matchbox profile and group, and the name of its Ignition file."""
    return f"{cluster}-{machine}"


def render_stack(loaded: LoadedStack, out: Path, seed: str) -> str:
    stack = loaded.config
    material = standin_cluster_material(seed)
    files: dict[Path, bytes] = {}
    rows = []
    for machine in stack.machines:
        object_id = matchbox_id(stack.cluster.name, machine.name)
        config = machine_ignition_json(
            stack, machine, material, standin_bootstrap_token(seed, machine.name)
        )
        check_ignition(f"machine '{machine.name}'", config)
        files[Path("matchbox/ignition") / f"{object_id}.ign"] = config
        role = f"{machine.role} (init)" if machine.init else machine.role
        rows.append((machine.name, role, machine.mac, f"{len(config):,} B"))
    write_tree(files, out)
    return _table(("MACHINE", "ROLE", "MAC", "IGNITION"), rows) + _notes(loaded, out)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _notes(loaded: LoadedStack, out: Path) -> str:
    notes = [
        f"\nwrote {out}/matchbox/ignition (stand-in PKI and tokens: review only, never deploy)"
    ]
    notes += [f"stand-in for secure value: {path}" for path in loaded.secure_paths]
    return "\n".join(notes)
