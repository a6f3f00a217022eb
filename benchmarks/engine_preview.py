"""Benchmark: the program through the real Pulumi engine, against a floor program.

For 3 machines (the example stack) and 50 (three controllers behind a virtual API address and
47 workers, as benchmarks/program_eval.py sizes its stacks), each in a lab of its own
(tests/engine/lab.py: real Matchbox, real control plane, kwok): the stack's first ``up``, and
any further ``up`` until a preview shows no change (the update after the cluster first answered
retires the founding controller's keys from its Ignition: README *Threat model*), then
``preview`` of the unchanged stack, and beside it a floor
program (tests/engine/floor.py) that registers as many resources of each type as the stack
holds, through the same plugins, with the smallest inputs and nothing else: its ``up``, and
``preview`` of it unchanged. Prints each figure and the ratios to the floor.

    sudo .venv/bin/python benchmarks/engine_preview.py [--sizes 3,50] [--repeat N] [--work DIR]

Needs root (network namespace, chroot) and the real tools (./scripts/tools).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
# The tests' import paths (pyproject.toml's pytest pythonpath), then the repository.
for index, folder in enumerate(("tests", "tests/offline", "tests/host", "tests/real", "")):
    sys.path.insert(index, str(REPO / folder))

from engine.driver import stack_settings_file  # noqa: E402
from engine.floor import counts_of_export, write_chart  # noqa: E402
from engine.lab import LabHandle, start_lab  # noqa: E402
from engine.session import EngineRun, run_action  # noqa: E402
from engine.stacks import namespace_addresses, write_stack_file  # noqa: E402
from program_stacks import sized_stack  # noqa: E402

from stackconfig.stackfile import read_stack_values  # noqa: E402

VIRTUAL_API_HOST = "10.0.255.254"


def stack_values(machines: int) -> dict[str, Any]:
    base, _ = read_stack_values(REPO / "stacks" / "Pulumi.example.yaml")
    if machines == len(base["machines"]):
        return base
    values = sized_stack(base, 3, machines - 3)
    values["cluster"]["apiEndpoint"] = f"{VIRTUAL_API_HOST}:6443"
    return values


# The lab's registered gate allows 90 s (tests/engine/stacks.py LAB_GATES), enough for the test
# stacks; 50 machines' real kubeadm join preflights take longer than that on 2 cores.
BENCH_REGISTERED_SECONDS = 900


def set_registered_timeout(work: Path, stack: str, seconds: int) -> None:
    path = stack_settings_file(work, stack)
    document = yaml.safe_load(path.read_text())
    document["config"].setdefault("stubernetes:gates", {})["registeredTimeoutSeconds"] = seconds
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def unchanged(run: EngineRun) -> bool:
    return run.ok and not {op for op in run.changes if op not in ("same", "read")}


class Bench:
    def __init__(self, lab: LabHandle, stack: str, stack_file: Path) -> None:
        self.lab = lab
        self.stack = stack
        self.stack_file = stack_file
        self.figures: dict[str, float] = {}

    def run(self, label: str, action: str, stack: str = "", floor: Path | None = None) -> EngineRun:
        name = stack or self.stack
        started = time.monotonic()
        result = run_action(
            self.lab,
            name,
            action,
            stack_file=None if floor else self.stack_file,
            floor=floor,
        )
        self.figures[label] = time.monotonic() - started
        print(f"  {label:<34} {self.figures[label]:7.1f} s  {result.changes}", flush=True)
        return result


def bench_lab(machines: int, work: Path) -> tuple[Bench, dict[str, Any]]:
    """A lab of its own for a stack of `machines` (stop it with ``bench.lab.stop()``), the
    Bench that drives the stack, and the stack's settings."""
    values = stack_values(machines)
    stack = f"bench{machines}"
    stack_file = work / f"Pulumi.{stack}.yaml"
    work.mkdir(parents=True, exist_ok=True)
    write_stack_file(stack_file, values)
    print(f"{machines} machines (lab in {work}):", flush=True)
    return Bench(start_lab(work, namespace_addresses(values)), stack, stack_file), values


def converge(bench: Bench, work: Path) -> tuple[EngineRun, list[EngineRun]]:
    """The new stack's preview (which creates the stack and its settings file), its first up,
    and every further up until a preview shows no change."""
    new = bench.run("preview (new stack)", "preview")
    assert new.ok, new.explain()
    set_registered_timeout(work, bench.stack, BENCH_REGISTERED_SECONDS)
    ups = [bench.run("up (first)", "up")]
    assert ups[0].ok, ups[0].explain()
    # At most one more up converges the stack (tests/engine/test_engine_stack.py test 3).
    while not unchanged(bench.run(f"preview after up {len(ups)}", "preview")):
        assert len(ups) < 3, "the stack does not converge"
        ups.append(bench.run(f"up ({len(ups) + 1})", "up"))
        assert ups[-1].ok, ups[-1].explain()
    return new, ups


def measure(machines: int, work: Path, repeat: int) -> dict[str, Any]:
    bench, _ = bench_lab(machines, work)
    lab = bench.lab
    try:
        new, ups = converge(bench, work)
        previews = [bench.run(f"preview #{i + 1}", "preview") for i in range(repeat)]
        assert all(unchanged(p) for p in previews), [p.changes for p in previews]
        export = bench.run("export", "export")
        deployment = json.loads(Path(export.result["export"]).read_text())
        counts = counts_of_export(deployment)
        admin = lab.status()["admin_conf"]
        spec = {
            "counts": counts,
            "kubeconfig": admin,
            "matchbox": {"rpc": lab.info["matchbox"]["rpc"], "tls": lab.info["matchbox"]["tls"]},
            "chart": str(write_chart(work / "floor-chart")),
        }
        spec_file = work / "floor.json"
        spec_file.write_text(json.dumps(spec, indent=1))
        floor_up = bench.run("floor up", "up", stack=f"floor{machines}", floor=spec_file)
        assert floor_up.ok, floor_up.explain()
        floor_resources = floor_up.changes.get("create", 0)
        # As many as the program's new stack creates (the stack and explicit providers too).
        assert floor_resources == new.changes.get("create"), (floor_resources, new.changes)
        floor_previews = [
            bench.run(
                f"floor preview #{i + 1}", "preview", stack=f"floor{machines}", floor=spec_file
            )
            for i in range(repeat)
        ]
        assert all(unchanged(p) for p in floor_previews), [p.changes for p in floor_previews]
        return {
            "machines": machines,
            "resources": previews[-1].changes.get("same", 0),
            "floor resources": floor_resources,
            "preview": statistics.median(p.seconds for p in previews),
            "floor preview": statistics.median(p.seconds for p in floor_previews),
            "ups": [u.seconds for u in ups],
            "floor up": floor_up.seconds,
            "boots": len([b for b in lab.boots() if b["event"] == "pxe"]),
        }
    finally:
        lab.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,50")
    parser.add_argument("--repeat", type=int, default=1, help="previews of each (median)")
    parser.add_argument("--work", type=Path, help="keep the labs' folders here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    root = args.work or Path(tempfile.mkdtemp(prefix="engine-bench-"))
    started = time.monotonic()
    results = []
    try:
        for machines in sizes:
            results.append(measure(machines, root / f"lab{machines}", args.repeat))
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    header = (
        f"{'machines':>8} {'resources':>9} {'preview s':>10} {'floor s':>8} {'x floor':>8}"
        f" {'up s (more)':>16} {'floor up s':>11} {'x floor':>8}"
    )
    print(header)
    for r in results:
        more = ", ".join(f"{u:.1f}" for u in r["ups"][1:]) or "-"
        ratio = r["preview"] / r["floor preview"]
        up = f"{r['ups'][0]:.1f} ({more})"
        print(
            f"{r['machines']:>8} {r['resources']:>9} {r['preview']:>10.2f}"
            f" {r['floor preview']:>8.2f} {ratio:>8.2f}"
            f" {up:>16} {r['floor up']:>11.1f} {r['ups'][0] / r['floor up']:>8.2f}"
        )
    print(
        "up: the first up of the new cluster, which waits for every machine to boot and join;"
        " x floor compares it with the floor's one up; (more): further ups until the stack"
        " previews no change"
    )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"preview({large['machines']})/preview({small['machines']}) ="
            f" {large['preview'] / small['preview']:.2f};"
            f" floor: {large['floor preview'] / small['floor preview']:.2f}"
        )
    print(f"whole run: {time.monotonic() - started:.0f} s")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
