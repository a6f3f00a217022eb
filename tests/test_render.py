"""`stubernetes render`: Matchbox's Ignition file names, validated, deterministic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import EXAMPLE_STACK_FILE, REPO

from stubernetes.cli import main


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def render(out: Path, *extra: str) -> None:
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out), *extra]) == 0


def test_render_writes_one_validated_ignition_per_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    render(tmp_path / "out")
    printed = capsys.readouterr().out.splitlines()
    ignition = tmp_path / "out/matchbox/ignition"
    assert sorted(p.name for p in ignition.iterdir()) == ["lab-c1.ign", "lab-w1.ign", "lab-w2.ign"]
    for path in ignition.iterdir():
        assert json.loads(path.read_bytes())["ignition"]["version"] == "3.3.0"
    assert printed[0].split() == ["MACHINE", "ROLE", "MAC", "IGNITION"]
    rows = [line.split() for line in printed[1:4]]
    assert [row[0] for row in rows] == ["c1", "w1", "w2"]
    assert rows[0][1:3] == ["controller", "(init)"]
    # The MAC as Matchbox stores it, whatever the stack file's spelling (w2 uses dashes).
    assert rows[2][2] == "52:54:00:a1:00:03"
    size = (ignition / "lab-w2.ign").stat().st_size
    assert rows[2][3:] == [f"{size:,}", "B"]
    assert any("never deploy" in line for line in printed)


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    render(tmp_path / "a")
    render(tmp_path / "b")
    render(tmp_path / "c", "--seed", "other")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert tree(tmp_path / "a") != tree(tmp_path / "c")


def test_separate_processes_with_different_hash_seeds_agree(tmp_path: Path) -> None:
    for name, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "stubernetes.cli",
                "render",
                "--stack-file",
                str(EXAMPLE_STACK_FILE),
                "--out",
                str(tmp_path / name),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
            capture_output=True,
        )
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_render_refuses_to_replace_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    status = main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(precious)])
    assert status == 1
    assert "not an earlier render" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"
