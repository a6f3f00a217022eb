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


def check_ignition(name: str, config: bytes, *, require_tool: bool = False) -> None:
    """Strict structural check, then Debian's `ignition-validate` when it is installed.

    `ignition-validate` exits 0 on unknown keys and only warns, so any output is a failure.
    """
    problems = fragment_problems(json.loads(config))
    if problems:
        raise InvalidIgnition(f"{name}: " + "; ".join(problems))
    tool = shutil.which(IGNITION_VALIDATE)
    if tool is None:
        if require_tool:
            raise InvalidIgnition(f"{name}: {IGNITION_VALIDATE} is not installed")
        return
    with tempfile.NamedTemporaryFile(suffix=".ign") as handle:
        handle.write(config)
        handle.flush()
        result = subprocess.run([tool, handle.name], capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or output:
        raise InvalidIgnition(f"{name}: ignition-validate: {output or result.returncode}")


def have_ignition_validate() -> bool:
    return shutil.which(IGNITION_VALIDATE) is not None
