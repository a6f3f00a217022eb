"""`stubernetes render --out DIR` into an earlier render: its outputs.json is the previous state.

A render writes the program's stack outputs without secrets; a later render into the same folder
runs the program with them as its previous outputs (StandInMocks(previous_outputs=...), what
`pulumi:pulumi:readStackOutputs` answers after an update), so the refusals of
stackconfig/removal.py are met offline, and a refused render leaves the folder byte for byte.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from program_stacks import sized_stack
from test_render import tree
from test_stack_bad_input import write_stack

from stubernetes.cli import EXIT_BAD_INPUT, main


def render(values: dict[str, Any], tmp_path: Path, out: Path, name: str = "stack.yaml") -> int:
    stack_file = write_stack(values, tmp_path / name)
    return main(["render", "--stack-file", str(stack_file), "--out", str(out)])


@pytest.fixture
def three(example_values: dict[str, Any]) -> dict[str, Any]:
    return sized_stack(example_values, 3, 2)


def test_outputs_are_written_without_secrets(
    three: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(three, tmp_path, out) == 0
    assert f"{out}/outputs.json" in capsys.readouterr().out
    outputs = json.loads((out / "outputs.json").read_text())
    # The admin kubeconfigs are secret outputs: left out, and nothing of them anywhere.
    assert set(outputs) == {
        "clusterExists",
        "installed",
        "installedOverEarlier",
        "kubernetesRelease",
        "machines",
    }
    assert "BEGIN" not in (out / "outputs.json").read_text()
    assert outputs["machines"]["c1"] == {
        "generation": 1,
        "init": True,
        "mac": "52:54:00:b0:00:00",
        "matchbox_id": "lab-c1",
        "role": "controller",
    }
    assert set(outputs["installed"]) == set(three["machines"])
    assert '"generation": 1,' in (out / "outputs.json").read_text()


def test_an_unchanged_render_into_its_own_folder_is_byte_identical(
    three: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(three, tmp_path, out) == 0
    first = tree(out)
    capsys.readouterr()
    assert render(three, tmp_path, out) == 0
    assert f"previous state: the earlier render's {out}/outputs.json" in capsys.readouterr().out
    assert tree(out) == first


def test_a_refused_update_exits_2_and_leaves_the_earlier_render_untouched(
    three: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(three, tmp_path, out) == 0
    before = tree(out)
    capsys.readouterr()
    changed = copy.deepcopy(three)
    del changed["machines"]["c3"]
    changed["machines"]["c2"]["generation"] = 2
    assert render(changed, tmp_path, out, "changed.yaml") == EXIT_BAD_INPUT
    errors = capsys.readouterr().err.splitlines()
    refusals = [line for line in errors if line.startswith("error: ")]
    assert len(refusals) == 2
    assert refusals[0].startswith("error: machine 'c2': field 'generation': reinstalled: taking")
    assert refusals[1].startswith("error: machine 'c3': removed: taking c2, c3 out of etcd")
    assert tree(out) == before
    # Either change alone keeps two of the three etcd members: rendered.
    alone = copy.deepcopy(three)
    del alone["machines"]["c3"]
    assert render(alone, tmp_path, out, "alone.yaml") == 0
    assert "c3" not in json.loads((out / "outputs.json").read_text())["machines"]
    assert not (out / "matchbox/profiles/lab-c3.json").exists()


def test_removing_the_only_controller_is_refused_offline(
    example_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(example_values, tmp_path, out) == 0
    before = tree(out)
    replaced = copy.deepcopy(example_values)
    replaced["machines"]["c9"] = {**replaced["machines"].pop("c1"), "mac": "52:54:00:a1:00:09"}
    capsys.readouterr()
    assert render(replaced, tmp_path, out, "replaced.yaml") == EXIT_BAD_INPUT
    assert [line for line in capsys.readouterr().err.splitlines() if "error:" in line] == [
        "error: machine 'c1': removing the last controller of the cluster: its etcd holds the "
        "whole cluster's state, and no controller of the last update would keep it; add a "
        "controller first, and remove this one in a later update"
    ]
    assert tree(out) == before
    # Into a new folder there is no previous state, and nothing to refuse.
    assert render(replaced, tmp_path, tmp_path / "elsewhere", "replaced.yaml") == 0


def test_removing_a_worker_renders(
    example_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(example_values, tmp_path, out) == 0
    smaller = copy.deepcopy(example_values)
    del smaller["machines"]["w2"]
    assert render(smaller, tmp_path, out, "smaller.yaml") == 0
    assert sorted(p.name for p in (out / "machines").iterdir()) == ["c1", "w1"]
    resources = json.loads((out / "resources.json").read_text())
    assert not [r for r in resources if r["name"].startswith("lab-w2")]


def test_a_broken_outputs_file_is_bad_input(
    example_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(example_values, tmp_path, out) == 0
    (out / "outputs.json").write_text("{not json")
    before = tree(out)
    capsys.readouterr()
    assert render(example_values, tmp_path, out) == EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {out}/outputs.json: not an earlier render's outputs")
    assert tree(out) == before


def test_a_bump_into_an_earlier_render_says_the_rolling_plan(
    three: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The line `pulumi preview` prints for a bump (components/upgrade_step.py), offline: the
    controllers first, the init controller's `upgrade apply`, then each worker; none when the
    release is the one the earlier render recorded."""
    out = tmp_path / "out"
    older = copy.deepcopy(three)
    older["cluster"]["kubernetesVersion"] = "1.35.8"
    assert render(older, tmp_path, out, "older.yaml") == 0
    assert "->" not in capsys.readouterr().out
    bumped = copy.deepcopy(three)
    bumped["cluster"]["kubernetesVersion"] = "1.36.4"
    assert render(bumped, tmp_path, out) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Kubernetes 1.35.8 -> 1.36.4, one machine at a time, each drained, upgraded by its own "
        "upgrade service and uncordoned: c1 (kubeadm upgrade apply) -> c2 (kubeadm upgrade node) "
        "-> c3 (kubeadm upgrade node) -> w1 (kubeadm upgrade node) -> w2 (kubeadm upgrade node)"
    )
    assert render(bumped, tmp_path, out) == 0
    assert "->" not in capsys.readouterr().out
