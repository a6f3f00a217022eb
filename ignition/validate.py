"""Checks of a generated config before anything leaves the program: Matchbox serves even a
config it failed to parse, so a bad one must be caught here."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

from stackconfig.fragment import fragment_problems

IGNITION_VALIDATE = "ignition-validate"


class InvalidIgnition(ValueError):
    pass


def check_structure(name: str, config: bytes) -> None:
    """The strict, pure check of every key, type and path: cheap enough for every machine on
    every `pulumi preview`, and stricter than ignition-validate about unknown keys."""
    problems = fragment_problems(json.loads(config))
    if problems:
        raise InvalidIgnition(f"{name}: " + "; ".join(problems))


def check_with_ignition_validate(name: str, config: bytes) -> None:
    """Debian's `ignition-validate`, which only warns (exit 0) on unknown keys, so any output
    at all is a failure."""
    tool = shutil.which(IGNITION_VALIDATE)
    if tool is None:
        raise InvalidIgnition(f"{name}: {IGNITION_VALIDATE} is not installed")
    with tempfile.NamedTemporaryFile(suffix=".ign") as handle:
        handle.write(config)
        handle.flush()
        result = subprocess.run([tool, handle.name], capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or output:
        raise InvalidIgnition(f"{name}: ignition-validate: {output or result.returncode}")


def have_ignition_validate() -> bool:
    return shutil.which(IGNITION_VALIDATE) is not None
