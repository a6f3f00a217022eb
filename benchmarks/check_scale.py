"""Benchmark: `stubernetes check` of large stacks, whole and its config stage, time and memory.

For each size (default 50 and 500 machines: three controllers, the rest workers, built by
tests/offline/program_stacks.py `sized_stack` from stacks/Pulumi.example.yaml and written as a
stack file in the example's format, secure values included) it runs, each in a fresh child
process:

- the whole `stubernetes check --stack-file F`: wall time, CPU time (the child's and its own
  children's, ignition-validate included) and peak RSS, from the kernel's accounting of the
  finished child (`os.wait4`, the per-child form of `resource.getrusage`);
- the config stage alone, `stackconfig.stackfile.load_stack_file` (reading, parsing and
  validation): its time inside the child, and the child's peak RSS (`resource.getrusage`),
  beside the same child's RSS before loading (the imports).

It prints the median of --repeat runs (min and max beside it: a wide range means a busy
machine), the load average before and after, and the cost per machine: the difference between
the largest and the smallest size divided by the machines between them, so the fixed cost
(imports, the cluster-wide resources) drops out.

    .venv/bin/python benchmarks/check_scale.py [--sizes 50,500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "offline"))

from program_stacks import sized_stack  # noqa: E402

NAMESPACE = "stubernetes"
EXAMPLE = REPO / "stacks" / "Pulumi.example.yaml"

# Run in the child: the config stage alone, timed inside the process, with its peak RSS.
CONFIG_STAGE = """
import json, resource, sys, time
from pathlib import Path
from stackconfig.stackfile import load_stack_file
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss_mib()
start = time.perf_counter()
loaded = load_stack_file(Path(sys.argv[1]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": rss_mib(), "imports_mib": before,
                  "machines": len(loaded.config.machines)}))
"""


def write_sized_stack(folder: Path, machines: int) -> Path:
    """A stack file of `machines` machines in the example's own format: the example's document
    with its machines and API endpoint as `sized_stack` makes them, secure values kept."""
    document = yaml.safe_load(EXAMPLE.read_text())
    prefix = f"{NAMESPACE}:"
    base = {key.removeprefix(prefix): value for key, value in document["config"].items()}
    controllers = 3 if machines >= 3 else 1
    values = sized_stack(base, controllers, machines - controllers)
    document["config"] = {f"{prefix}{key}": value for key, value in values.items()}
    path = folder / f"Pulumi.bench{machines}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mib: float


def run_child(command: list[str]) -> tuple[Run, str]:
    """One child process to its end: its wall time, CPU time and peak RSS, and its stdout."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{errors.decode()}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss / 1024), text


def check_runs(stack_file: Path, repeat: int) -> list[Run]:
    command = [sys.executable, "-m", "stubernetes.cli", "check", "--stack-file", str(stack_file)]
    return [run_child(command)[0] for _ in range(repeat)]


def config_runs(stack_file: Path, repeat: int) -> list[dict[str, Any]]:
    command = [sys.executable, "-c", CONFIG_STAGE, str(stack_file)]
    return [json.loads(run_child(command)[1]) for _ in range(repeat)]


def spread(values: list[float], unit: str, digits: int = 2) -> str:
    """The median, then the min-max range."""
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500", help="machine counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the median counts")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    medians: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for machines in sizes:
            stack_file = write_sized_stack(Path(folder), machines)
            checks = check_runs(stack_file, args.repeat)
            configs = config_runs(stack_file, args.repeat)
            config_seconds = [c["seconds"] for c in configs]
            config_peaks = [c["peak_mib"] for c in configs]
            imports = statistics.median(c["imports_mib"] for c in configs)
            print(f"{machines} machines ({stack_file.stat().st_size:,} bytes of stack file):")
            print(
                f"  check:        wall {spread([r.wall for r in checks], 's')}, "
                f"cpu {spread([r.cpu for r in checks], 's')}, "
                f"peak RSS {spread([r.peak_mib for r in checks], 'MiB', 0)}"
            )
            print(
                f"  config stage: {spread(config_seconds, 's', 3)}, "
                f"peak RSS {spread(config_peaks, 'MiB', 0)} ({imports:.0f} MiB after imports)"
            )
            medians[machines] = {
                "wall": statistics.median(r.wall for r in checks),
                "cpu": statistics.median(r.cpu for r in checks),
                "peak": statistics.median(r.peak_mib for r in checks),
                "config": statistics.median(config_seconds),
                "config_peak": statistics.median(config_peaks),
            }
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        between = large - small
        per = {key: (medians[large][key] - medians[small][key]) / between for key in medians[large]}
        print(f"per machine ({small} to {large} machines):")
        print(
            f"  check:        {1000 * per['wall']:.1f} ms wall, {1000 * per['cpu']:.1f} ms cpu, "
            f"{1024 * per['peak']:.0f} KiB peak RSS"
        )
        print(
            f"  config stage: {1000 * per['config']:.2f} ms, "
            f"{1024 * per['config_peak']:.1f} KiB peak RSS"
        )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
