"""The real engine by hand: ``python -m tests.engine --stack-file F --work DIR ACTION [MACHINE]``.

Run as root from the repository's root. ACTION is one of

  preview            ``pulumi preview``
  up                 ``pulumi up``
  bump MACHINE       the machine's ``generation`` + 1 in the stack, then ``pulumi up``
                     (MACHINE may be a comma-separated list)
  replace MACHINE    ``pulumi up --replace`` of the machine's install anchor (``stubernetes urn``)
  export             ``pulumi stack export`` (secrets not shown), into DIR/exports
  destroy            ``pulumi destroy``
  status             what the lab's machines and control plane are doing (no engine run)
  stop               end the lab kept in DIR (its Matchbox, control plane, kwok)

The first action starts the lab (tests/engine/lab.py: a network namespace with the stack's
addresses, the real Matchbox, a boot service for the machines' ``pxeCommand``) and keeps it
running in DIR for the next ones; the stack (F adapted to the lab: engine.stacks) and its
state (a file backend) live in DIR too. The engine's output is printed as it comes; the last
line is one JSON object ``{"action", "ok", "changes", "replaced", "seconds", ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
from layers import module_path  # noqa: E402

sys.path[:0] = [p for p in module_path() if p not in sys.path]

from engine.lab import running_lab  # noqa: E402
from engine.session import lab_for, run_action  # noqa: E402
from engine.stacks import lease_addresses, namespace_addresses, read_stack_file  # noqa: E402
from stackconfig.problems import ConfigError  # noqa: E402

ENGINE_ACTIONS = ("preview", "up", "bump", "replace", "export", "destroy")
MACHINE_ACTIONS = ("bump", "replace")


def stack_name(stack_file: Path) -> str:
    """``Pulumi.<stack>.yaml`` names its stack, as in stackConfigDir."""
    name = stack_file.name
    if name.startswith("Pulumi.") and name.endswith(".yaml") and name.count(".") == 2:
        return name.split(".")[1]
    return "lab"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.engine",
        description="Run the program through the real Pulumi engine against the lab.",
    )
    parser.add_argument("--stack-file", type=Path, required=True, help="a stack file to adapt")
    parser.add_argument("--work", type=Path, required=True, help="the lab's and state's folder")
    parser.add_argument("--stack", help="the stack's name (default: from the stack file's name)")
    parser.add_argument("action", choices=(*ENGINE_ACTIONS, "status", "stop"))
    parser.add_argument("machine", nargs="?", default="")
    args = parser.parse_args(argv)
    if (args.action in MACHINE_ACTIONS) != bool(args.machine):
        parser.error(
            f"{args.action}: {'MACHINE' if args.action in MACHINE_ACTIONS else 'no MACHINE'}"
        )
    work: Path = args.work.resolve()
    name = args.stack or stack_name(args.stack_file)
    if args.action in ("status", "stop"):
        lab = running_lab(work)
        if lab is None:
            print(json.dumps({"action": args.action, "ok": True, "lab": "not running"}))
            return 0
        if args.action == "stop":
            lab.stop()
            print(json.dumps({"action": "stop", "ok": not lab.alive()}))
            return 0
        print(json.dumps({"action": "status", "ok": True, **lab.status()}))
        return 0
    started = time.monotonic()
    try:
        values = read_stack_file(args.stack_file)
        addresses, leases = namespace_addresses(values), lease_addresses(values)
    except ConfigError as error:
        # What the lab cannot play (a DNS name for the API endpoint...): one line each.
        for problem in error.problems:
            print(f"error: {args.stack_file}: {problem}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as error:
        print(f"error: {args.stack_file}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    lab = lab_for(work, addresses, leases)
    lab_seconds = round(time.monotonic() - started, 2)

    def echo(line: str) -> None:
        if not (line.startswith("{") and '"action"' in line):
            print(line, flush=True)

    run = run_action(
        lab, name, args.action, args.machine, stack_file=args.stack_file.resolve(), echo=echo
    )
    extra: dict[str, object] = {
        k: run.result[k] for k in ("urns", "generations", "export", "record") if k in run.result
    }
    summary: dict[str, object] = {
        "action": args.action,
        "stack": name,
        "ok": run.ok,
        "changes": run.changes,
        "replaced": run.replaced,
        "seconds": run.seconds,
        "lab_seconds": lab_seconds,
        **extra,
    }
    if not run.ok and "error" in run.result:
        summary["error"] = str(run.result["error"])[-2000:]
    print(json.dumps(summary), flush=True)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
