"""A machine's steps are declared once (components/machine_steps.py) and made from that
declaration (components/step_wiring.py): what the program registers is the same, byte for byte,
as before the declaration existed, and the declaration is what the registrations show.

The digests in render_digests.json were taken from the renders of render_cases.py
at the commit they name, before the machine's steps were declared: each render's resources.json
(every resource's type, name, parent, dependencies, replacement options and inputs) and
outputs.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from program_stacks import sized_stack
from render_cases import (
    COMPONENT_CASE,
    DIGESTS_FILE,
    Case,
    cases,
    component_example_resources,
    render_case,
    sha256,
)
from repo_paths import REPO

from components.install_step import SCRIPTS
from components.machine import matchbox_id
from components.machine_steps import (
    ANCHOR,
    API_GATE,
    CLUSTER,
    INSTALL_STEP,
    JOINS,
    KUBEADM_CERTS_RBAC,
    LAST_CONTROLLER,
    PREVIOUS_CONTROLLER,
    PREVIOUS_IN_STAGE,
    ROLE_STEPS,
    SERVED,
    STAGES,
    Replaced,
    Role,
    Step,
    needs,
    resource_name,
    role_of,
)
from components.machine_steps_doc import PAGE, generated_part, steps_markdown
from components.previous import CLUSTER_EXISTS_OUTPUT
from stackconfig import Machine, StackConfig, parse_stack_config
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks
from stubernetes.program_run import ProgramRun, run_program

DIGESTS = json.loads((Path(__file__).resolve().with_name(DIGESTS_FILE)).read_text())["cases"]
CASES = cases()


def test_every_case_has_its_digests() -> None:
    assert set(DIGESTS) == {case.name for case in CASES} | {COMPONENT_CASE}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_render_is_byte_for_byte_what_it_was(case: Case, tmp_path: Path) -> None:
    assert render_case(case, tmp_path) == DIGESTS[case.name], (
        f"{case.name}: the program registers something else than at the digests' commit; if "
        "that is meant, take them again: "
        ".venv/bin/python tests/offline/render_cases.py --digests DIR"
    )


def test_the_component_example_registers_what_it_did(tmp_path: Path) -> None:
    resources = tmp_path / "resources.json"
    resources.write_bytes(component_example_resources())
    assert [{"resources.json": sha256(resources)}] == DIGESTS[COMPONENT_CASE]


# ------------------------------------------------------------------------------------------
# The declaration is what the program registers: for every machine of every role, each row is
# one child of the machine's component, with the waits, reads, script and replacement the row
# declares, and nothing else is.

MACHINE_TYPE = "stubernetes:machine:Machine"
PKI_TYPES = ("tls:index/",)


@dataclass(frozen=True)
class Program:
    stack: StackConfig
    cluster_exists: bool
    run: ProgramRun


def program(values: dict[str, Any], cluster_exists: bool = False) -> Program:
    outputs = {CLUSTER_EXISTS_OUTPUT: True} if cluster_exists else {}
    monitor = RecordingMonitor(StandInMocks("tests", previous_outputs=outputs))
    run = run_program(values, ["matchbox"], monitor=monitor)
    return Program(parse_stack_config(values), cluster_exists, run)


@pytest.fixture(scope="module", params=["3c2w", "3c2w-cluster-exists", "init-not-first", "1c2w"])
def made(request: pytest.FixtureRequest, example_values: dict[str, Any]) -> Program:
    three = sized_stack(example_values, 3, 2)
    if request.param == "3c2w":
        return program(three)
    if request.param == "3c2w-cluster-exists":
        return program(three, cluster_exists=True)
    if request.param == "init-not-first":
        three["machines"]["c2"]["init"] = True
        return program(three)
    return program(example_values)


class Registered:
    """A run's registrations, each placed: which machine's step it is (or belongs to), or
    which of the cluster's resources a step may wait for."""

    def __init__(self, made: Program) -> None:
        self.made = made
        self.by_urn = {r.urn: r for r in made.run.registrations}
        self.step_of: dict[str, tuple[str, str]] = {}
        for machine in made.stack.machines:
            for step in self.rows(machine):
                for registration in self.made_for(machine, step):
                    for urn in (registration.urn, *self.descendants(registration.urn)):
                        self.step_of[urn] = (machine.name, step.name)
        cluster = made.stack.cluster.name
        self.cluster_item = {
            self.named("command:local:Command", f"{cluster}-api-server").urn: API_GATE.what,
            **{
                self.named(type_, f"{cluster}-kubeadm-certs").urn: KUBEADM_CERTS_RBAC.what
                for type_ in (
                    "kubernetes:rbac.authorization.k8s.io/v1:Role",
                    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                )
            },
        }

    def rows(self, machine: Machine) -> tuple[Step, ...]:
        return ROLE_STEPS[role_of(self.made.stack, machine, self.made.cluster_exists)]

    def named(self, type_: str, name: str) -> Registration:
        (found,) = [r for r in self.made.run.registrations if r.type == type_ and r.name == name]
        return found

    def component(self, machine: Machine) -> Registration:
        return self.named(MACHINE_TYPE, matchbox_id(self.made.stack, machine))

    def children(self, urn: str) -> list[Registration]:
        return [r for r in self.made.run.registrations if r.parent == urn]

    def descendants(self, urn: str) -> list[str]:
        return [d for c in self.children(urn) for d in (c.urn, *self.descendants(c.urn))]

    def made_for(self, machine: Machine, step: Step) -> list[Registration]:
        name = resource_name(matchbox_id(self.made.stack, machine), step)
        return [
            r
            for r in self.children(self.component(machine).urn)
            if r.type == step.kind.type and r.name == name
        ]

    def custom(self, machine: Machine, step: Step) -> list[Registration]:
        """The step's custom resources: itself, or a component's descendants."""
        (registration,) = self.made_for(machine, step)
        family = [registration, *(self.by_urn[u] for u in self.descendants(registration.urn))]
        return [r for r in family if r.custom]

    def dependencies(self, machine: Machine, step: Step) -> set[str]:
        return {d for r in self.custom(machine, step) for d in r.dependencies}


def controllers_before(stack: StackConfig, machine: Machine) -> list[Machine]:
    return list(stack.controllers[: stack.controllers.index(machine)])


def expected_elsewhere(stack: StackConfig, machine: Machine, step: Step) -> set[Any]:
    expected: set[Any] = set()
    for wait in step.elsewhere:
        if wait.of == CLUSTER:
            expected.add(wait.what)
        elif wait.of == PREVIOUS_CONTROLLER:
            before = controllers_before(stack, machine)
            expected |= {(before[-1].name, wait.what)} if before else set()
        elif wait.of == PREVIOUS_IN_STAGE:
            # kubeadm's upgrade order: the init controller (upgrade apply), the other
            # controllers, then the workers (kubeadm-upgrade; kubespray
            # playbooks/upgrade_cluster.yml).
            init = stack.init_controller
            controllers = [m for m in stack.controllers if m != init]
            order = [init, *controllers, *(m for m in stack.machines if not m.is_controller)]
            before = order[: order.index(machine)]
            expected |= {(before[-1].name, wait.what)} if before else set()
        else:
            assert wait.of == LAST_CONTROLLER
            expected.add((stack.controllers[-1].name, wait.what))
    return expected


def read_closure(rows: dict[str, Step], step: Step) -> set[str]:
    """The steps whose outputs `step` is given, and those theirs are made from."""
    found: set[str] = set()
    for read in step.reads:
        source = read.split(".")[0]
        if source != "cluster":
            found |= {source, *read_closure(rows, rows[source])}
    return found


def test_each_machine_registers_exactly_its_roles_rows(made: Program) -> None:
    registered = Registered(made)
    for machine in made.stack.machines:
        rows = registered.rows(machine)
        children = registered.children(registered.component(machine).urn)
        object_id = matchbox_id(made.stack, machine)
        assert sorted((r.type, r.name) for r in children) == sorted(
            (step.kind.type, resource_name(object_id, step)) for step in rows
        ), machine.name
        # Every resource under the machine's component belongs to one of its rows.
        family = set(registered.descendants(registered.component(machine).urn))
        assert family == {u for u, (m, _) in registered.step_of.items() if m == machine.name}


def test_each_step_waits_for_what_its_row_declares(made: Program) -> None:
    registered = Registered(made)
    stack = made.stack
    for machine in stack.machines:
        rows = {step.name: step for step in registered.rows(machine)}
        for step in rows.values():
            where = f"{machine.name} {step.name}"
            dependencies = registered.dependencies(machine, step)
            placed = {registered.step_of[d] for d in dependencies if d in registered.step_of}
            # Within a component (the status report's binding waits for its Role) aside.
            own = {name for owner, name in placed if owner == machine.name} - {step.name}
            others = {(owner, name) for owner, name in placed if owner != machine.name}
            cluster = {
                registered.cluster_item[d] for d in dependencies if d in registered.cluster_item
            }
            assert set(step.after) <= own, where
            assert own <= set(step.after) | read_closure(rows, step), where
            assert others | cluster == expected_elsewhere(stack, machine, step), where
            # A step that reads the cluster's kubeconfig or material depends on its PKI.
            pki = {d for d in dependencies if registered.by_urn[d].type.startswith(PKI_TYPES)}
            assert bool(pki) == any(r.startswith("cluster.") for r in step.reads), where


def test_each_step_runs_its_script_and_is_replaced_as_declared(made: Program) -> None:
    registered = Registered(made)
    for machine in made.stack.machines:
        rows = registered.rows(machine)
        (install,) = [step for step in rows if step.name == ANCHOR]
        anchor = registered.made_for(machine, install)[0].urn
        for step in rows:
            where = f"{machine.name} {step.name}"
            custom = registered.custom(machine, step)
            if step.kind.type == "command:local:Command":
                (command,) = custom
                create, delete = command.inputs.get("create"), command.inputs.get("delete")
                if step.script is not None:
                    assert create == f"bash {SCRIPTS}/{step.script}", where
                assert delete == (f"bash {SCRIPTS}/{step.delete}" if step.delete else None), where
            replaced = {(r.type, tuple(r.replace_with), r.delete_before_replace) for r in custom}
            assert replaced == expected_replacement(step, custom, anchor), where


def expected_replacement(
    step: Step, custom: list[Registration], anchor: str
) -> set[tuple[str, tuple[str, ...], bool]]:
    with_anchor = {
        Replaced.WITH_ANCHOR: ((anchor,), False),
        Replaced.WITH_ANCHOR_DELETED_FIRST: ((anchor,), True),
    }
    if step.replaced in with_anchor:
        return {(r.type, *with_anchor[step.replaced]) for r in custom}
    if step.replaced is Replaced.BY_RELEASE:
        # The release in its triggers; the anchor replaces it too.
        return {(r.type, (anchor,), False) for r in custom}
    if step.replaced is Replaced.REPORT_WITH_ANCHOR:
        return {
            (r.type, (anchor,), True) if r.type.endswith("ConfigMap") else (r.type, (), False)
            for r in custom
        }
    # By its keepers (the anchor), by its name (the token Secret), or never (the membership).
    return {(r.type, (), False) for r in custom}


def test_every_script_a_row_names_exists() -> None:
    for rows in ROLE_STEPS.values():
        for step in rows:
            for script in (step.script, step.delete):
                if script is not None:
                    assert (REPO / SCRIPTS / script).is_file(), script


def test_each_row_needs_only_earlier_rows_of_its_stage_or_before() -> None:
    for role, rows in ROLE_STEPS.items():
        seen: dict[str, Step] = {}
        for step in rows:
            for name in needs(step):
                assert name in seen, f"{role}: {step.name} needs {name}, not before it"
                assert STAGES.index(seen[name].stage) <= STAGES.index(step.stage)
            # Nothing served waits for the cluster: the API gate waits for a served step.
            assert step.stage != SERVED or not step.elsewhere, f"{role}: {step.name}"
            seen[step.name] = step
        assert [s.stage for s in rows] == sorted((s.stage for s in rows), key=STAGES.index)


def test_the_docs_show_the_declaration() -> None:
    page = PAGE.read_text()
    assert generated_part(page) == steps_markdown(), (
        "docs/machine-steps.md differs from the declaration: "
        ".venv/bin/python -m components.machine_steps_doc --write"
    )
    # Every role, and every step of it, is on the page.
    for role, steps in ROLE_STEPS.items():
        assert f"### {role.value[0].upper()}{role.value[1:]}" in page
        assert all(f"| `{step.name}` |" in page for step in steps)


def test_a_new_row_is_a_new_step(
    monkeypatch: pytest.MonkeyPatch, example_values: dict[str, Any]
) -> None:
    """A step added to the workers' table (a backup after the rejoin, here running the install
    clock's script) is made for every worker, and nothing else changes."""
    rows = list(ROLE_STEPS[Role.WORKER])
    backup = Step(
        "backup",
        INSTALL_STEP,
        JOINS,
        Replaced.WITH_ANCHOR,
        script="install-clock",
        after=("rejoin",),
    )
    rows.insert(rows.index(next(s for s in rows if s.name == "rejoin")) + 1, backup)
    before = program(example_values)
    monkeypatch.setitem(ROLE_STEPS, Role.WORKER, tuple(rows))
    after = program(example_values)
    names = {(r.type, r.name) for r in after.run.registrations}
    added = names - {(r.type, r.name) for r in before.run.registrations}
    assert added == {(INSTALL_STEP.type, "lab-w1-backup"), (INSTALL_STEP.type, "lab-w2-backup")}
    registered = Registered(after)
    (w1,) = [m for m in after.stack.machines if m.name == "w1"]
    (step,) = registered.custom(w1, backup)
    assert step.inputs["create"] == f"bash {SCRIPTS}/install-clock"
    assert registered.step_of[step.urn] == ("w1", "backup")
    assert {registered.step_of.get(d) for d in step.dependencies} == {("w1", "rejoin")}
    # And it holds the declaration's every rule, as the other steps do.
    test_each_step_waits_for_what_its_row_declares(after)
    test_each_step_runs_its_script_and_is_replaced_as_declared(after)
