"""Benchmark: the Pulumi program's evaluation under mocks, against a floor program.

For 10, 100 and 1,000 machines it runs the real program (as the language host does, under the
SDK's mocks) and, in the same process and under the same mocks, a floor program that registers
the same number of bare resources and nothing else. It prints the cost per machine and the ratio
to the floor. Targets: at most 1.5x the floor; cost(1,000) / cost(100) at most 12.

A second baseline, "replay", registers the very resources the program registered, with the same
inputs, but with none of the program's own work (no config parsing, Ignition, Outputs or
components wiring): the ratio to it is what the program itself adds to what the SDK charges for
those inputs.

    .venv/bin/python benchmarks/program_eval.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pulumi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "offline"))

from program_stacks import sized_stack  # noqa: E402

from stackconfig.stackfile import read_stack_values  # noqa: E402
from stubernetes.mocks import RecordingMonitor, StandInMocks, unwrap_secrets  # noqa: E402
from stubernetes.program_run import run_program, run_under_mocks  # noqa: E402

SIZES = (10, 100, 1000)


def stack_values(machines: int) -> dict[str, Any]:
    base, _ = read_stack_values(REPO / "stacks" / "Pulumi.example.yaml")
    controllers = 3 if machines >= 3 else 1
    return sized_stack(base, controllers, machines - controllers)


def time_program(values: dict[str, Any]) -> tuple[float, int]:
    start = time.perf_counter()
    run = run_program(values, secret_keys=["matchbox"])
    return time.perf_counter() - start, len(run.registrations)


def time_floor(resources: int) -> float:
    """The same number of bare resources, registered under the same mocks."""

    def program() -> None:
        for index in range(resources):
            pulumi.CustomResource("floor:index:Bare", f"bare-{index}", {"index": index})

    start = time.perf_counter()
    run_under_mocks(program, RecordingMonitor(StandInMocks("floor")), "floor")
    return time.perf_counter() - start


def time_replay(values: dict[str, Any]) -> float:
    """The program's own resources and inputs, registered flat, without the program."""
    recorded = run_program(values, secret_keys=["matchbox"]).registrations
    plain = [(r.type, r.name, r.custom, unwrap_secrets(r.inputs)) for r in recorded]

    def program() -> None:
        for index, (type_, name, custom, inputs) in enumerate(plain):
            unique = f"{name}-{index}"  # a component and its Matchbox objects share a name
            if custom:
                pulumi.CustomResource(type_, unique, inputs)
            else:
                pulumi.ComponentResource(type_, unique).register_outputs({})

    start = time.perf_counter()
    run_under_mocks(program, RecordingMonitor(StandInMocks("replay")), "replay")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median counts")
    args = parser.parse_args()
    print(
        f"{'machines':>8} {'resources':>9} {'program s':>10} {'floor s':>8} {'replay s':>8} "
        f"{'ms/machine':>10} {'floor ms/m':>10} {'x floor':>7} {'x replay':>8}"
    )
    costs = {}
    for machines in SIZES:
        values = stack_values(machines)
        program_runs, floor_runs, replay_runs, resources = [], [], [], 0
        for _ in range(args.repeat):
            elapsed, resources = time_program(values)
            program_runs.append(elapsed)
            floor_runs.append(time_floor(resources))
            replay_runs.append(time_replay(values))
        program_s, floor_s = statistics.median(program_runs), statistics.median(floor_runs)
        replay_s = statistics.median(replay_runs)
        costs[machines] = program_s
        print(
            f"{machines:>8} {resources:>9} {program_s:>10.3f} {floor_s:>8.3f} {replay_s:>8.3f} "
            f"{1000 * program_s / machines:>10.2f} {1000 * floor_s / machines:>10.2f} "
            f"{program_s / floor_s:>7.2f} {program_s / replay_s:>8.2f}"
        )
    print(f"cost(1000)/cost(100) = {costs[1000] / costs[100]:.2f} (target <= 12)")


if __name__ == "__main__":
    main()
