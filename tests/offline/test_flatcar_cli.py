"""The CLI on a Flatcar stack: `stubernetes assets` lists Flatcar's files, so they can be fetched
and checked ahead; `check` takes the stack and `render` writes it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import main

RELEASE = "4593.2.5"


@pytest.fixture
def flatcar_stack_file(tmp_path: Path) -> Path:
    stack = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    stack["config"]["stubernetes:os"] = {
        "flavor": "flatcar",
        "channel": "stable",
        "version": RELEASE,
        "cachedInstall": True,
    }
    path = tmp_path / "Pulumi.flatcar.yaml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_assets_lists_a_flatcar_stacks_files(flatcar_stack_file: Path) -> None:
    status, out, err = run("assets", "--stack-file", str(flatcar_stack_file))
    assert status == 0, err
    assert out.startswith(f"Flatcar {RELEASE} (stable, amd64) and Kubernetes ")
    assert f"  flatcar/{RELEASE}/flatcar_production_image.bin.bz2.sig\n" in out
    assert not [line for line in err.splitlines() if line.startswith("error: ")]


def test_check_and_render_take_a_flatcar_stack(flatcar_stack_file: Path, tmp_path: Path) -> None:
    status, out, err = run("check", "--stack-file", str(flatcar_stack_file))
    assert status == 0, err
    assert "no problems" in out
    # Each machine's install Ignition and its own, both checked.
    assert "Ignition: 6 configs passed" in out
    status, _, err = run(
        "render", "--stack-file", str(flatcar_stack_file), "--out", str(tmp_path / "out")
    )
    assert status == 0, err
    profiles = {p.stem for p in (tmp_path / "out/matchbox/profiles").iterdir()}
    assert {"lab-w1", "lab-w1-flatcar-install"} <= profiles
