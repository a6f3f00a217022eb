"""`stubernetes --help`, every subcommand's `--help` (every option described) and `--version`,
through the installed command."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from repo_paths import REPO

from stubernetes.cli import _parser

COMMAND = Path(sys.executable).parent / "stubernetes"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, check=False, timeout=60
    )


def subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (commands,) = actions
    return dict(commands.choices)


def test_version_is_the_project_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"stubernetes {project['version']}\n"


def test_top_level_help_names_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in subcommands():
        assert f"    {name}" in result.stdout, name
    assert sorted(subcommands()) == ["assets", "check", "matchbox-certs", "render", "urn"]


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_of_every_command_is_described(name: str) -> None:
    parser = subcommands()[name]
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert parser.description and parser.description.split()[0] in result.stdout
    options = [a for a in parser._actions if a.option_strings and "--help" not in a.option_strings]
    assert options
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        assert len(action.help) >= 20, action.option_strings
        for option in action.option_strings:
            assert option in result.stdout, option
    # The help as printed holds each option's own words (its first few).
    text = " ".join(result.stdout.split())
    for action in options:
        words = " ".join(str(action.help).split()[:3]).replace("%(default)s", "")
        assert words.strip() in text, (name, action.option_strings)
