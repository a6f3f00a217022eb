"""The page "What a machine goes through" (docs/machine-steps.md), its tables printed from the
declaration of a machine's steps (components/machine_steps.py), so the page cannot drift from
what the program makes.

    .venv/bin/python -m components.machine_steps_doc           # prints the generated part
    .venv/bin/python -m components.machine_steps_doc --write   # writes it into the page
"""

from __future__ import annotations

import sys
from pathlib import Path

from components.machine_steps import (
    API_GATE_AFTER,
    CLUSTER,
    FLATCAR_GROUP,
    FLATCAR_INSTALL_GROUP,
    FLATCAR_INSTALL_PROFILE,
    FLATCAR_INSTALL_SUFFIX,
    GATES_AFTER,
    PREVIOUS_CONTROLLER,
    ROLE_STEPS,
    STAGES,
    Elsewhere,
    Step,
)

PAGE = Path(__file__).resolve().parent.parent / "docs" / "machine-steps.md"
BEGIN = "<!-- generated from components/machine_steps.py by components/machine_steps_doc.py -->"
END = "<!-- end of the generated part -->"
SCRIPTS = "components/scripts"


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _elsewhere(wait: Elsewhere) -> str:
    if wait.of == CLUSTER:
        return f"the {wait.what}"
    which = "previous" if wait.of == PREVIOUS_CONTROLLER else "last"
    return f"the {which} controller's `{wait.what}`"


def _row(number: int, step: Step) -> str:
    waits = [_code(step.after)] if step.after else []
    waits += [_elsewhere(wait) for wait in step.elsewhere]
    runs = f"`{SCRIPTS}/{step.script}`" if step.script else ""
    deleted = f"runs `{SCRIPTS}/{step.delete}`" if step.delete else step.kind.deleted
    cells = [
        str(number),
        step.stage.name,
        f"`{step.name}`",
        step.kind.name,
        runs,
        "; ".join(waits),
        _code(step.reads),
        step.replaced.value,
        deleted,
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| # | Stage | Step | What | Runs | Waits for | Reads | Replaced | Deleting it |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def steps_markdown() -> str:
    """The generated part: the order between machines, then one table per role."""
    lines = [
        "### The order between machines",
        "",
        "Each stage is made for every machine before the next. Between the first two the "
        "program makes the API server gate, which waits for the init controller's "
        f"`{API_GATE_AFTER}`, the cluster's Kubernetes provider and the kubeadm-certs RBAC; "
        "after the last, the readiness gates `registered` and `ready` wait for every "
        f"machine's {_code(GATES_AFTER)}.",
        "",
        "| Stage | Machines, in this order | Why |",
        "| --- | --- | --- |",
        *(f"| {stage.name} | {stage.machines} | {stage.why} |" for stage in STAGES),
    ]
    for role, steps in ROLE_STEPS.items():
        title = role.value[0].upper() + role.value[1:]
        lines += ["", f"### {title}", "", HEADER]
        lines += [_row(number, step) for number, step in enumerate(steps, start=1)]
        lines += ["", "Why:", ""]
        lines += [f"{n}. `{step.name}`: {step.note}." for n, step in enumerate(steps, start=1)]
    flatcar = (FLATCAR_INSTALL_PROFILE, FLATCAR_INSTALL_GROUP, FLATCAR_GROUP)
    lines += [
        "",
        "### A Flatcar machine",
        "",
        "Every role's rows, with these three in place of `group` (the Matchbox id of the install "
        f"profile and group is the machine's with `-{FLATCAR_INSTALL_SUFFIX}`):",
        "",
        HEADER,
        *(_row(number, step) for number, step in enumerate(flatcar, start=1)),
        "",
        "Why:",
        "",
        *(f"{n}. `{step.name}`: {step.note}." for n, step in enumerate(flatcar, start=1)),
    ]
    return "\n".join(lines) + "\n"


def generated_part(page: str) -> str:
    """The text between the page's markers."""
    _, begin, rest = page.partition(BEGIN + "\n")
    generated, end, _ = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{PAGE}: no generated part between {BEGIN!r} and {END!r}")
    return generated


def with_generated_part(page: str) -> str:
    return page.replace(BEGIN + "\n" + generated_part(page), BEGIN + "\n" + steps_markdown())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        PAGE.write_text(with_generated_part(PAGE.read_text()))
    else:
        sys.stdout.write(steps_markdown())
