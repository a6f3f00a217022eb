"""Run the Pulumi program itself, as the language host would, under the SDK's mocks."""

from __future__ import annotations

import json
import os
import runpy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from stackconfig.parse import NAMESPACE
from stubernetes.mock_run_tuning import tuned_for_mocks
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "stubernetes"


@dataclass(frozen=True)
class ProgramRun:
    registrations: list[Registration]
    # The stack's exports, secrets still wrapped as the engine would receive them.
    stack_outputs: dict[str, Any]


def pulumi_config_env(values: Mapping[str, Any]) -> str:
    """PULUMI_CONFIG as the CLI passes it: namespaced keys, object values as JSON text."""
    return json.dumps(
        {
            f"{NAMESPACE}:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()
        }
    )


@contextmanager
def _environment(changes: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_program(
    values: Mapping[str, Any],
    secret_keys: Sequence[str] = (),
    seed: str = "stubernetes",
    stack: str = "render",
    preview: bool = False,
    project_dir: Path = PROJECT_DIR,
    monitor: RecordingMonitor | None = None,
) -> ProgramRun:
    """Evaluate `__main__.py` with `values` as the stack's config; return what it registered."""
    monitor = monitor or RecordingMonitor(StandInMocks(seed))
    env = {
        "PULUMI_CONFIG": pulumi_config_env(values),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps(sorted(f"{NAMESPACE}:{k}" for k in secret_keys)),
    }

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    with _environment(env), _directory(project_dir):
        run_under_mocks(program, monitor, stack, preview)
    return ProgramRun(monitor.registrations, monitor.stack_outputs)


def run_under_mocks(
    program: Callable[[], None],
    monitor: RecordingMonitor,
    stack: str,
    preview: bool = False,
    project: str = PROJECT,
) -> None:
    """Run `program` inside a new root stack, as the language host does, under `monitor`;
    `project` is the Pulumi project's name (its config namespace)."""
    # The root stack resource outlives a run unless reset.
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=preview, monitor=monitor
    )
    settings.ROOT.set(None)
    with tuned_for_mocks():
        _sync_await(run_in_stack(program))
