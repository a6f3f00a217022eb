"""A machine's steps are declared once (components/machine_steps.py) and made from that
declaration (components/step_wiring.py): what the program registers is the same, byte for byte,
as before the declaration existed, and the declaration is what the registrations show.

The digests in tests/render_digests.json were taken from the renders of tests/render_cases.py
at the commit they name, before the machine's steps were declared: each render's resources.json
(every resource's type, name, parent, dependencies, replacement options and inputs) and
outputs.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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

DIGESTS = json.loads((REPO / "tests" / DIGESTS_FILE).read_text())["cases"]
CASES = cases()


def test_every_case_has_its_digests() -> None:
    assert set(DIGESTS) == {case.name for case in CASES} | {COMPONENT_CASE}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_render_is_byte_for_byte_what_it_was(case: Case, tmp_path: Path) -> None:
    assert render_case(case, tmp_path) == DIGESTS[case.name]


def test_the_component_example_registers_what_it_did(tmp_path: Path) -> None:
    resources = tmp_path / "resources.json"
    resources.write_bytes(component_example_resources())
    assert [{"resources.json": sha256(resources)}] == DIGESTS[COMPONENT_CASE]
