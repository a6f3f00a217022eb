"""The host's side of an engine session: the lab kept in a directory, and engine actions run
inside its network namespace (tests/engine/driver.py)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.lab import LabHandle, running_lab, start_lab
from engine.launch import argv as module_argv

REPO = Path(__file__).resolve().parent.parent.parent
TESTS = REPO / "tests"


@dataclass(frozen=True)
class EngineRun:
    """One action's result: the driver's JSON line, the engine's output, its events."""

    result: dict[str, Any]
    output: str
    returncode: int

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok")) and self.returncode == 0

    @property
    def changes(self) -> dict[str, int]:
        return dict(self.result.get("changes") or {})

    @property
    def steps(self) -> list[tuple[str, str]]:
        return [(str(op), str(urn)) for op, urn in self.result.get("steps") or []]

    @property
    def replaced(self) -> list[str]:
        return list(self.result.get("replaced") or [])

    @property
    def seconds(self) -> float:
        return float(self.result.get("seconds") or 0.0)

    @property
    def events(self) -> list[dict[str, Any]]:
        record = self.result.get("record")
        if not record:
            return []
        loaded: list[dict[str, Any]] = json.loads(Path(record).read_text())["events"]
        return loaded

    def diagnostics(self, severity: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["kind"] == "diagnostic" and (severity is None or e["severity"] == severity)
        ]

    def explain(self) -> str:
        return f"{self.output[-8000:]}\n{json.dumps(self.result)[:4000]}"


def lab_for(work: Path, addresses: list[str], leases: dict[str, str] | None = None) -> LabHandle:
    """The lab kept in ``work``, started when none runs there. ``leases``: the DHCP leases of
    the machines without a static address (engine.stacks.lease_addresses), which a running lab
    adds to its own (it refuses a MAC it leased another address)."""
    handle = running_lab(work)
    if handle is not None:
        if sorted(handle.info["addresses"]) != sorted(set(addresses)):
            raise SystemExit(
                f"the lab in {work} carries {handle.info['addresses']}, not {sorted(addresses)}:"
                " stop it first (action stop)"
            )
        if leases:
            try:
                handle.lease(leases)
            except RuntimeError as error:
                raise SystemExit(str(error).splitlines()[0]) from error
        return handle
    return start_lab(work, addresses, leases=leases)


def run_action(
    lab: LabHandle,
    stack: str,
    action: str,
    machine: str = "",
    stack_file: Path | None = None,
    echo: Callable[[str], None] | None = None,
    timeout: float = 1800,
    floor: Path | None = None,
) -> EngineRun:
    """The driver for one action, inside the lab's network namespace, from the repository's
    root; its output echoed line by line when ``echo`` is given."""
    argv = module_argv("engine.driver", "--work", str(lab.work), "--stack", stack)
    if stack_file is not None:
        argv += ["--stack-file", str(stack_file)]
    if floor is not None:
        argv += ["--floor", str(floor)]
    argv += [action, *([machine] if machine else [])]
    # The operator's environment as it is: the engine, its plugins and the Commands' scripts
    # inherit it (tests/engine/launch.py says why no PYTHONPATH).
    process = subprocess.Popen(
        lab.wrap(argv),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if echo is not None:
            echo(line.rstrip("\n"))
        if time.monotonic() > deadline:
            process.kill()
            break
    returncode = process.wait()
    result: dict[str, Any] = {}
    for line in reversed(lines):
        if line.startswith("{") and '"action"' in line:
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    output = "\n".join(lines)
    return EngineRun(result, output, returncode)
