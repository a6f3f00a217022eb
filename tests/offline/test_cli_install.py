"""Installing the `stubernetes` command: `pip install -e .` builds without a warning (checked on
the build hook pip calls, so nothing is installed), and a wheel carries the data files the
program reads at run time (Ignition's files, the scripts of the install steps and gates)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from repo_paths import REPO

PACKAGES = ("stackconfig", "ignition", "components", "stubernetes")


def project_copy(tmp_path: Path) -> Path:
    """The packaging inputs of this working tree, without caches or earlier builds."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy2(REPO / "pyproject.toml", copy)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, copy / package, ignore=ignore)
    return copy


def build(hook: str, project: Path, out: Path) -> tuple[Path, str]:
    """Run setuptools' PEP 517/660 hook as `pip install -e .` (`build_editable`) or
    `pip wheel .` (`build_wheel`) runs it, without installing anything anywhere: an install,
    even with --prefix, would first uninstall this project from the virtualenv it runs in."""
    # Without PYTHONDONTWRITEBYTECODE, whose "byte-compiling is disabled" notes are the
    # environment's, not the project's.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = f"import setuptools.build_meta as backend; print(backend.{hook}({str(out)!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return out / result.stdout.strip().splitlines()[-1], output


def warnings(output: str) -> list[str]:
    # Any mention of a warning, save the project's own module stackconfig/warnings.py.
    return [line for line in output.splitlines() if re.search(r"(?i)warning(?!s\.py)", line)]


def test_editable_install_has_no_build_warnings(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    wheel, output = build("build_editable", project, tmp_path / "editable")
    assert warnings(output) == []
    assert wheel.name.startswith("stubernetes-") and wheel.suffix == ".whl"


def test_the_wheel_carries_the_data_files(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    wheel, output = build("build_wheel", project, tmp_path / "wheels")
    assert warnings(output) == []
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("ignition/files", "components/scripts"):
        expected = {str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*") if p.is_file()}
        assert expected and expected <= names, folder
    assert {f"{package}/__init__.py" for package in ("stackconfig", "ignition")} <= names
    assert "stubernetes/cli.py" in names and "components/program.py" in names
