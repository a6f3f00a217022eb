"""The CLI on a Flatcar stack: `stubernetes assets` lists Flatcar's files, so they can be fetched
and checked ahead; `render` and `check` refuse the stack, whose machine configuration is not
built yet (ignition/checked_stack.py `building`)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import EXIT_BAD_INPUT, main

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


@pytest.mark.parametrize("command", ["render", "check"])
def test_render_and_check_refuse_a_flatcar_stack(
    flatcar_stack_file: Path, tmp_path: Path, command: str
) -> None:
    argv = [command, "--stack-file", str(flatcar_stack_file)]
    if command == "render":
        argv += ["--out", str(tmp_path / "out")]
    status, _, err = run(*argv)
    assert status == EXIT_BAD_INPUT
    assert (
        "error: stubernetes:os: field 'flavor': the machine configuration for Flatcar is not "
        "built yet" in err
    )
    assert not (tmp_path / "out").exists()
