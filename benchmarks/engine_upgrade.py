"""Benchmark: a Kubernetes release bump through the real Pulumi engine, for 3 and 50 machines.

For each size, a lab of its own (tests/engine/lab.py: real Matchbox, real control plane, kwok
Nodes that report the release their Ignition installs, and the lab's stand-in of each machine's
upgrade service, tests/engine/upgrade_service.py): the stack is brought up and converged as
benchmarks/engine_preview.py does, then its release is bumped (from the built kubeadm's 1.36.3
to 1.36.4, or from the previous minor to 1.36.3, as the engine lab's stack starts; digests
pinned), and the bump's ``preview`` and ``up`` are timed, with each
machine's upgrade step (its span in the engine's events) and what the ``up`` costs beside them.
That is the engine's and the program's part of a rollout: the machines' own part (downloads, the
real kubeadm upgrade, the kubelet's restart) is the lab's real node's
(tests/lab/test_lab_node.py), whose figures ``--lab-times`` prints beside these when given the
``lab-boot-times.json`` a lab run wrote.

    sudo .venv/bin/python benchmarks/engine_upgrade.py [--sizes 3,50] [--lab-times FILE]

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

REPO = Path(__file__).resolve().parent.parent
# The tests' import paths (pyproject.toml's pytest pythonpath), then the repository.
for index, folder in enumerate(("tests", "tests/offline", "tests/host", "tests/real", "")):
    sys.path.insert(index, str(REPO / folder))

from engine.rollout import nodes, set_kubernetes_version, step_seconds  # noqa: E402
from tool_cache import tool_version  # noqa: E402

from benchmarks.engine_preview import bench_lab, converge, unchanged  # noqa: E402


def bump_target(running: str) -> str:
    """From the built kubeadm's release, the next patch the tests build (the tool
    "kubernetes-upgrade"); from an older release (the previous minor), the built kubeadm's."""
    built = tool_version("kubernetes").removeprefix("v")
    return tool_version("kubernetes-upgrade").removeprefix("v") if running == built else built


def measure(machines: int, work: Path) -> dict[str, Any]:
    bench, values = bench_lab(machines, work)
    lab, stack = bench.lab, bench.stack
    try:
        converge(bench, work)
        (running,) = {v.removeprefix("v") for v, _ in nodes(lab).values()}
        target = bump_target(running)
        set_kubernetes_version(work, stack, target)
        preview = bench.run("preview (bump)", "preview")
        assert preview.ok, preview.explain()
        up = bench.run("up (bump)", "up")
        assert up.ok, up.explain()
        assert set(nodes(lab).values()) == {(f"v{target}", False)}, nodes(lab)
        after = bench.run("preview after the bump", "preview")
        assert unchanged(after), after.changes
        steps = step_seconds(up, str(values["cluster"]["name"]))
        assert len(steps) == machines, steps
        return {
            "machines": machines,
            "bump": f"{running} -> {target}",
            "preview": preview.seconds,
            "up": up.seconds,
            "steps": sum(steps.values()),
            "step median": statistics.median(steps.values()),
            "step max": max(steps.values()),
        }
    finally:
        lab.stop()


def lab_node_line(path: Path) -> str:
    """The real node's upgrade, as the lab recorded it (tests/lab/lab_env.py BootTimes.node)."""
    node = json.loads(path.read_text()).get("node") or {}
    upgrade = {k: v for k, v in node.items() if "upgrade" in k}
    if not upgrade:
        return f"{path}: no upgrade of the real node recorded"
    return "the lab's real node: " + ", ".join(f"{k} {v:.0f} s" for k, v in upgrade.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,50")
    parser.add_argument("--work", type=Path, help="keep the labs' folders here")
    parser.add_argument("--lab-times", type=Path, help="a lab run's lab-boot-times.json")
    args = parser.parse_args(argv)
    root = args.work or Path(tempfile.mkdtemp(prefix="engine-upgrade-"))
    started = time.monotonic()
    results = []
    try:
        for machines in (int(s) for s in args.sizes.split(",")):
            results.append(measure(machines, root / f"lab{machines}"))
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        f"{'machines':>8} {'bump':>16} {'preview s':>10} {'up s':>8} {'steps s':>8}"
        f" {'up - steps':>11} {'s/machine':>10} {'step median':>12} {'step max':>9}"
    )
    for r in results:
        print(
            f"{r['machines']:>8} {r['bump']:>16} {r['preview']:>10.1f} {r['up']:>8.1f}"
            f" {r['steps']:>8.1f} {r['up'] - r['steps']:>11.1f} {r['up'] / r['machines']:>10.2f}"
            f" {r['step median']:>12.2f} {r['step max']:>9.2f}"
        )
    print(
        "steps: the upgrade steps' spans, one machine at a time; up - steps: the program, the"
        " profiles and groups replaced and the engine around them; a step waits for the lab's"
        " stand-in service, which polls every 2 s, not for a real kubeadm upgrade"
    )
    if args.lab_times is not None:
        print(lab_node_line(args.lab_times))
    print(f"whole run: {time.monotonic() - started:.0f} s")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
