"""`stubernetes check`: validates everything `render` validates, writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from repo_paths import EXAMPLE_STACK_FILE
from test_stack_bad_input import CASES, Mutation, write_stack

from stubernetes.cli import EXIT_BAD_INPUT, main


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def run(
    args: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[str]]:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        status = main(args)
    finally:
        os.chdir(previous)
    printed = capsys.readouterr()
    return status, printed.out, printed.err.splitlines()


def test_check_of_the_example_passes_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = tmp_path / "Pulumi.example.yaml"
    stack_file.write_text(EXAMPLE_STACK_FILE.read_text())
    before = snapshot(tmp_path)
    status, out, err = run(["check", "--stack-file", str(stack_file)], tmp_path, capsys)
    assert status == 0, err
    assert err == []
    lines = out.splitlines()
    assert lines[0] == f"{stack_file}: no problems"
    assert lines[1] == "  machines: c1 (controller, init), w1 (worker), w2 (worker)"
    assert "stubernetes-core (after lab-registered)" in lines[2]
    # The rolling upgrade as registered: kubeadm's order (components/upgrade_step.py).
    assert lines[4] == (
        "  upgrades to a new kubernetesVersion (now 1.36.4), one machine at a time, each "
        "drained then uncordoned: c1 (kubeadm upgrade apply) -> w1 (kubeadm upgrade node) -> "
        "w2 (kubeadm upgrade node)"
    )
    assert (
        lines[-2]
        == "  Ignition: 3 configs passed the strict Ignition 3.3 checker and ignition-validate"
    )
    assert lines[-1] == "nothing written"
    assert snapshot(tmp_path) == before


def test_check_lists_the_resources_render_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        ["check", "--stack-file", str(EXAMPLE_STACK_FILE), "--resources"], tmp_path, capsys
    )
    assert status == 0
    tree = out.split("\n\n", 1)[1].splitlines()
    assert tree[0].split() == ["TYPE", "NAME"]
    assert tree[1].split() == ["pulumi:pulumi:Stack", "stubernetes-render"]
    rows = [line.split() for line in tree[2:]]
    assert ["matchbox:index/profile:Profile", "lab-w2"] in rows
    assert ["command:local:Command", "lab-registered"] in rows
    # As many rows as check counts, and as many as render writes to resources.json.
    count = int(out.split("resources: ", 1)[1].split()[0])
    assert len(tree) - 1 == count
    render_out = tmp_path / "render"
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(render_out)]) == 0
    recorded = json.loads((render_out / "resources.json").read_text())
    assert sorted([r["type"], r["name"]] for r in recorded) == sorted(rows)
    # Nesting follows the parents: a machine's profile sits under its Machine component.
    index = tree.index(
        next(line for line in tree if line.split() == ["stubernetes:machine:Machine", "lab-w2"])
    )
    indent = len(tree[index]) - len(tree[index].lstrip())
    below = tree[index + 1 :]
    children = []
    for line in below:
        depth = len(line) - len(line.lstrip())
        if depth <= indent:
            break
        children.append(line.split())
    assert ["matchbox:index/profile:Profile", "lab-w2"] in children


def test_check_runs_the_checks_render_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program under mocks and every Ignition config through ignition-validate: a config
    the validator refuses fails check as it fails render (exit 1, nothing written)."""
    import stubernetes.render

    seen: list[str] = []

    def refuse(name: str, config: bytes) -> None:
        seen.append(name)
        raise ValueError(f"{name}: ignition-validate refused it (stand-in)")

    monkeypatch.setattr(stubernetes.render, "check_with_ignition_validate", refuse)
    monkeypatch.setattr(stubernetes.render, "have_ignition_validate", lambda: True)
    for command in (["check"], ["render", "--out", str(tmp_path / "out")]):
        status, out, err = run(
            [*command, "--stack-file", str(EXAMPLE_STACK_FILE)], tmp_path, capsys
        )
        assert status == 1
        assert out == ""
        assert err == [
            "error: matchbox/ignition/lab-c1.ign: ignition-validate refused it (stand-in)"
        ]
    assert seen == ["matchbox/ignition/lab-c1.ign"] * 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("case", "mutate"), [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_fails_exactly_as_render_does(
    case: str,
    mutate: Mutation,
    raw_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mutate(raw_values)
    stack_file = write_stack(raw_values, tmp_path / f"Pulumi.{case}.yaml")
    before = snapshot(tmp_path)
    check = run(["check", "--stack-file", str(stack_file)], tmp_path, capsys)
    assert check[0] == EXIT_BAD_INPUT
    assert check[1] == ""
    assert check[2] and all(line.startswith("error: ") for line in check[2])
    assert snapshot(tmp_path) == before
    render = run(
        ["render", "--stack-file", str(stack_file), "--out", str(tmp_path / "out")],
        tmp_path,
        capsys,
    )
    assert render[0] == check[0]
    assert render[2] == check[2]
    assert not (tmp_path / "out").exists()


def test_check_prints_warnings_and_passes(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del raw_values["machines"]["w1"]["gateway"]
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.warned.yaml")
    status, out, err = run(["check", "--stack-file", str(stack_file)], tmp_path, capsys)
    assert status == 0
    assert len(err) == 1 and err[0].startswith("warning: machine 'w1': field 'gateway':")
    assert out.endswith("nothing written\n")


def test_check_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["check", "--stack-file", str(tmp_path / "nope.yaml")], tmp_path, capsys)
    assert status == EXIT_BAD_INPUT
    assert out == "" and len(err) == 1 and "nope.yaml" in err[0]
