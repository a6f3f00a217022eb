"""Checks of a generated config before anything leaves the program: Matchbox serves even a
config it failed to parse, so a bad one must be caught here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

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


def _ignition_validate(tool: str, config: bytes) -> tuple[int, str]:
    """ignition-validate's exit status and output on `config`."""
    with tempfile.NamedTemporaryFile(suffix=".ign") as handle:
        handle.write(config)
        handle.flush()
        result = subprocess.run([tool, handle.name], capture_output=True, text=True, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


# Verdicts being worked out ahead (`validated_ahead`), by the config's name and bytes.
_AHEAD: dict[tuple[str, bytes], Future[tuple[int, str]]] = {}


def check_with_ignition_validate(name: str, config: bytes) -> None:
    """Debian's `ignition-validate`, which only warns (exit 0) on unknown keys, so any output
    at all is a failure."""
    tool = shutil.which(IGNITION_VALIDATE)
    if tool is None:
        raise InvalidIgnition(f"{name}: {IGNITION_VALIDATE} is not installed")
    ahead = _AHEAD.pop((name, config), None)
    status, output = ahead.result() if ahead is not None else _ignition_validate(tool, config)
    if status != 0 or output:
        raise InvalidIgnition(f"{name}: ignition-validate: {output or status}")


@contextmanager
def validated_ahead(configs: Sequence[tuple[str, bytes]]) -> Iterator[None]:
    """Within the block, `check_with_ignition_validate` of these configs takes a verdict
    worked out ahead, one ignition-validate process per processor at a time: each process is
    10 ms of Go start-up, 5 s for 500 machines one after another. What the checks raise, and
    in what order, is theirs: only the waiting is shorter."""
    tool = shutil.which(IGNITION_VALIDATE)
    if tool is None or not configs:
        yield
        return
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        keys = [(name, config) for name, config in configs]
        _AHEAD.update({key: pool.submit(_ignition_validate, tool, key[1]) for key in keys})
        try:
            yield
        finally:
            for key in keys:
                future = _AHEAD.pop(key, None)
                if future is not None:
                    future.cancel()


def have_ignition_validate() -> bool:
    return shutil.which(IGNITION_VALIDATE) is not None
