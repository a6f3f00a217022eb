"""What `stubernetes check` prints: the stack's verdict, and the resources the program registers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ignition.validate import have_ignition_validate
from stubernetes.mocks import Registration
from stubernetes.program_run import PROJECT
from stubernetes.render import COMMAND, RELEASE, Render
from stubernetes.upgrade_plan import plan_line

STACK_TYPE = "pulumi:pulumi:Stack"


def check_text(stack_file: Path, render: Render) -> str:
    stack = render.loaded.config
    machines = ", ".join(f"{m.name} ({m.role}{', init' if m.init else ''})" for m in stack.machines)
    gates = {r.urn: r.name for r in render.registrations if r.type == COMMAND}
    releases = []
    for registration in render.registrations:
        if registration.type == RELEASE:
            waits = sorted(gates[u] for u in registration.dependencies if u in gates)
            releases.append(f"{registration.name} (after {', '.join(waits) or 'nothing'})")
    ignitions = sum(1 for path in render.files if path.suffix == ".ign")
    checkers = "the strict Ignition 3.3 checker" + (
        " and ignition-validate" if have_ignition_validate() else " (ignition-validate missing)"
    )
    return "\n".join(
        [
            f"{stack_file}: no problems",
            f"  machines: {machines}",
            f"  releases: {', '.join(releases)}",
            f"  resources: {len(render.registrations) + 1} (the stack included), as `pulumi "
            "preview` of a new stack would create them",
            f"  upgrades to a new kubernetesVersion (now {stack.cluster.kubernetes_release}), "
            "one machine at a time, each drained then uncordoned: "
            + plan_line(render.registrations),
            f"  Ignition: {ignitions} configs passed {checkers}",
            "nothing written",
        ]
    )


def resource_tree(registrations: Sequence[Registration], stack: str = "render") -> str:
    """Every resource under its parent, `TYPE  NAME`, children sorted by type and name."""
    children: dict[str, list[Registration]] = defaultdict(list)
    urns = {r.urn for r in registrations}
    for registration in registrations:
        parent = registration.parent if registration.parent in urns else ""
        children[parent].append(registration)
    rows: list[tuple[str, str]] = [(STACK_TYPE, f"{PROJECT}-{stack}")]

    def walk(parent: str, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            rows.append(("  " * depth + child.type, child.name))
            walk(child.urn, depth + 1)

    walk("", 1)
    width = max(len(t) for t, _ in rows)
    lines = [f"{'TYPE'.ljust(width)}  NAME"]
    lines += [f"{t.ljust(width)}  {n}" for t, n in rows]
    return "\n".join(lines)
