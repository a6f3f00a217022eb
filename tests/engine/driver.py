"""One action of the real Pulumi engine on a lab stack, as an Automation API inline program.

``python -m engine.driver --work DIR --stack NAME [--stack-file F] ACTION [MACHINE]`` runs
inside the lab's network namespace (``engine.session.run_action`` starts it there with
``nsenter``), from the repository's root: the engine, its plugins and the program's local
Commands then reach the lab's Matchbox and API server at the addresses the stack names, and
the Commands' ``bash components/scripts/...`` resolve (for an inline program the plugins'
working directory is this process's, tests/engine/test_engine_plugins.py).

The program is ``components.program.pulumi_program``, the function ``__main__.py`` calls.
The real CLI (scripts/tools' v3.274.1) with a file backend in DIR/state, the passphrase
secrets provider, and the plugins: the stand-ins of tests/engine/bin for random, tls, command
and matchbox, and the real ``pulumi-resource-kubernetes``, all found on PATH.

ACTION: ``preview``, ``up``, ``bump MACHINE`` (its ``generation`` + 1, then up), ``replace
MACHINE`` (up with ``--replace`` of its install anchor's URN, ``stubernetes urn``'s),
``target-replace MACHINE`` (``--target-replace``: ``--target`` and ``--replace`` of that URN,
as the README's reinstall section types it), ``export`` (``stack export``, into DIR/exports),
``destroy``; ``preview-bump MACHINE`` previews a bump without keeping it. The engine's output
is printed as it comes; the last line is one JSON object: ``{"action", "ok", "changes",
"replaced", "steps", "seconds", ...}``. Every event is kept in DIR/runs/.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tool_cache import require_tool

from engine.stacks import lab_secrets, lab_values, read_stack_file, unresolved_secure_values

REPO = Path(__file__).resolve().parent.parent.parent
PLUGINS_BIN = REPO / "tests" / "engine" / "bin"
PROJECT = "stubernetes"
PASSPHRASE = "stubernetes-lab"
# The ops of a replacement, as the engine names its steps (pkg/resource/deploy/step.go).
REPLACEMENT_OPS = ("replace", "create-replacement", "delete-replaced")
REPLACE_ACTIONS = ("replace", "target-replace", "preview-replace", "preview-target-replace")
MACHINE_ACTIONS = ("bump", "preview-bump", *REPLACE_ACTIONS)


def operator_bin(work: Path) -> Path:
    """What the operator's PATH holds for the program: the real kubectl and the real
    Kubernetes provider (the engine finds a plugin on PATH)."""
    directory = work / "bin"
    directory.mkdir(parents=True, exist_ok=True)
    for tool, binary in (
        ("kubernetes", "kubectl"),
        ("pulumi-kubernetes", "pulumi-resource-kubernetes"),
    ):
        link = directory / binary
        target = require_tool(tool, binary)
        if not link.is_symlink() or Path(os.readlink(link)) != target:
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    return directory


def engine_env(work: Path) -> dict[str, str]:
    (work / "state").mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(PLUGINS_BIN), str(operator_bin(work)), os.environ.get("PATH", "")])
    return {
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{work / 'state'}",
        # A home of its own: no installed plugin stands in front of the ones on PATH.
        "PULUMI_HOME": str(work / "pulumi-home"),
        "PATH": path,
        # Where the lab's boot service listens (tests/engine/pxe_boot.py).
        "STUBERNETES_LAB_SOCKET": str(work / "lab.sock"),
    }


def stack_settings_file(work: Path, stack: str) -> Path:
    return work / "project" / f"Pulumi.{stack}.yaml"


def open_stack(
    work: Path,
    stack_name: str,
    stack_file: Path | None,
    floor: Path | None = None,
) -> Any:
    """The lab stack in DIR/project, created from ``stack_file`` (adapted to the lab) the first
    time; its settings live in DIR/project/Pulumi.<stack>.yaml from then on. With ``floor``
    (a spec: engine.floor), the benchmark's floor program instead, which takes no config."""
    from pulumi import automation as auto

    from components.program import pulumi_program

    # The program exactly as `__main__.py` runs it (components/program.py).
    program: Callable[[], None] = pulumi_program
    if floor is not None:
        from engine.floor import floor_program, read_spec

        program = floor_program(read_spec(floor))
    cli = require_tool("pulumi", "pulumi")
    project_dir = work / "project"
    project_dir.mkdir(parents=True, exist_ok=True)
    settings = stack_settings_file(work, stack_name)
    new = not settings.exists() and floor is None
    if new and stack_file is None:
        raise SystemExit(f"stack {stack_name!r} is new in {work}: give --stack-file")
    stack = auto.create_or_select_stack(
        stack_name=stack_name,
        project_name=PROJECT,
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(project_dir),
            pulumi_command=auto.PulumiCommand(root=str(cli.parent.parent)),
            env_vars=engine_env(work),
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python"),
        ),
    )
    if new:
        assert stack_file is not None
        lab = json.loads((work / "lab.json").read_text())
        values = lab_values(
            read_stack_file(stack_file), lab["matchbox"]["http"], lab["matchbox"]["rpc"]
        )
        unresolved = unresolved_secure_values(values)
        if unresolved:
            raise SystemExit(
                f"{stack_file}: secure values the lab cannot set: {', '.join(unresolved)}"
            )
        document = yaml.safe_load(settings.read_text()) if settings.exists() else {}
        document = document or {}
        document["config"] = {f"{PROJECT}:{k}": v for k, v in values.items()}
        settings.write_text(yaml.safe_dump(document, sort_keys=False))
        for path, value in lab_secrets(Path(lab["matchbox"]["tls"])).items():
            stack.set_config(
                f"{PROJECT}:{path}", auto.ConfigValue(value=value, secret=True), path=True
            )
    return stack


def stack_values(work: Path, stack_name: str) -> dict[str, Any]:
    document = yaml.safe_load(stack_settings_file(work, stack_name).read_text())
    return {
        key.partition(":")[2]: value
        for key, value in (document.get("config") or {}).items()
        if key.startswith(f"{PROJECT}:")
    }


def bump_generation(work: Path, stack_name: str, names: list[str]) -> tuple[str, dict[str, int]]:
    """``pulumi config set --path machines.<m>.generation <n+1>`` for each machine, in the
    settings file; returns the file's previous text (to undo a preview-only bump) and the new
    generations."""
    settings = stack_settings_file(work, stack_name)
    text = settings.read_text()
    document = yaml.safe_load(text)
    machines = document["config"][f"{PROJECT}:machines"]
    generations = {}
    for machine in names:
        if machine not in machines:
            raise SystemExit(f"no machine {machine!r} in stack {stack_name!r}: {sorted(machines)}")
        generations[machine] = int(machines[machine].get("generation", 1)) + 1
        machines[machine]["generation"] = generations[machine]
    settings.write_text(yaml.safe_dump(document, sort_keys=False))
    return text, generations


def anchor_urn(work: Path, stack_name: str, machine: str) -> str:
    """`stubernetes urn`'s answer for the machine (stubernetes.urns.install_anchor_urn)."""
    from stackconfig import parse_stack_config
    from stubernetes.urns import install_anchor_urn

    values = copy.deepcopy(stack_values(work, stack_name))
    matchbox = values.setdefault("matchbox", {})
    for key in ("clientCert", "clientKey", "caCert"):
        matchbox[key] = "not needed for a URN"
    values.setdefault("admin", {}).pop("passwordHash", None)
    config = parse_stack_config(values)
    return install_anchor_urn(config, config.machine(machine), stack_name)


def export_state(work: Path, stack_name: str) -> Path:
    """``pulumi stack export`` as an operator types it: secrets not shown (the Automation API's
    ``export_stack`` passes ``--show-secrets``, pulumi automation/_local_workspace.py)."""
    exports = work / "exports"
    exports.mkdir(exist_ok=True)
    target = exports / f"{stack_name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    done = subprocess.run(
        [str(require_tool("pulumi", "pulumi")), "stack", "export", "--stack", stack_name],
        cwd=work / "project",
        env={**os.environ, **engine_env(work)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pulumi stack export: {done.stderr}")
    target.write_text(done.stdout)
    return target


def _event_record(event: Any) -> dict[str, Any] | None:
    if event.resource_pre_event is not None:
        meta = event.resource_pre_event.metadata
        return {
            "kind": "pre",
            "op": str(meta.op.value if hasattr(meta.op, "value") else meta.op),
            "urn": meta.urn,
            "type": meta.type,
            "diffs": list(meta.diffs or []),
            "replaces": list(meta.keys or []) if str(meta.op) else [],
        }
    if event.res_outputs_event is not None:
        meta = event.res_outputs_event.metadata
        return {
            "kind": "done",
            "op": str(meta.op.value if hasattr(meta.op, "value") else meta.op),
            "urn": meta.urn,
            "type": meta.type,
        }
    if event.res_op_failed_event is not None:
        meta = event.res_op_failed_event.metadata
        return {"kind": "failed", "op": str(meta.op), "urn": meta.urn}
    if event.diagnostic_event is not None:
        diagnostic = event.diagnostic_event
        return {
            "kind": "diagnostic",
            "severity": diagnostic.severity,
            "urn": diagnostic.urn or "",
            "message": diagnostic.message,
            "ephemeral": bool(diagnostic.ephemeral),
        }
    if event.summary_event is not None:
        return {"kind": "summary", "changes": dict(event.summary_event.resource_changes or {})}
    return None


def run(
    work: Path,
    stack_name: str,
    stack_file: Path | None,
    action: str,
    machine: str,
    floor: Path | None = None,
) -> int:
    from pulumi import automation as auto

    started = time.monotonic()
    events: list[dict[str, Any]] = []
    lines: list[str] = []

    def on_event(event: Any) -> None:
        record = _event_record(event)
        if record is not None:
            record["t"] = round(time.monotonic() - started, 3)
            events.append(record)

    def on_output(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    result: dict[str, Any] = {"action": action, "stack": stack_name}
    names = [m for m in machine.split(",") if m]
    if names:
        result["machines"] = names
    ok = True
    undo: str | None = None
    try:
        stack = open_stack(work, stack_name, stack_file, floor=floor)
        common: dict[str, Any] = {"on_output": on_output, "on_event": on_event, "color": "never"}
        operation: Callable[..., Any]
        if action == "preview":
            operation = stack.preview
        elif action == "preview-bump":
            undo, result["generations"] = bump_generation(work, stack_name, names)
            operation = stack.preview
        elif action == "up":
            operation, common["show_secrets"] = stack.up, False
        elif action == "bump":
            _, result["generations"] = bump_generation(work, stack_name, names)
            operation, common["show_secrets"] = stack.up, False
        elif action in REPLACE_ACTIONS:
            urns = [anchor_urn(work, stack_name, name) for name in names]
            result["urns"] = urns
            common["replace"] = urns
            if action.endswith("target-replace"):
                common["target"] = urns
            if action.startswith("preview-"):
                operation = stack.preview
            else:
                operation, common["show_secrets"] = stack.up, False
        elif action == "destroy":
            operation, common["show_secrets"] = stack.destroy, False
        elif action == "export":
            target = export_state(work, stack_name)
            resources = json.loads(target.read_text()).get("deployment", {}).get("resources") or []
            print(f"exported {len(resources)} resources of stack {stack_name} to {target}")
            result["export"] = str(target)
            operation = None  # type: ignore[assignment]
        else:
            raise SystemExit(f"unknown action {action!r}")
        if operation is not None:
            outcome = operation(**common)
            summary = getattr(outcome, "change_summary", None)
            if summary is None and getattr(outcome, "summary", None) is not None:
                summary = outcome.summary.resource_changes
            result["changes"] = dict(summary or {})
    except auto.errors.CommandError as error:
        ok = False
        result["error"] = str(error)[-6000:]
    finally:
        if undo is not None:
            stack_settings_file(work, stack_name).write_text(undo)
    if "changes" not in result:
        summaries = [e["changes"] for e in events if e["kind"] == "summary"]
        result["changes"] = summaries[-1] if summaries else {}
    steps = [[e["op"], e["urn"]] for e in events if e["kind"] == "pre"]
    result["ok"] = ok
    result["replaced"] = sorted({urn for op, urn in steps if op == "replace"})
    result["steps"] = steps
    result["seconds"] = round(time.monotonic() - started, 2)
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    number = len(list(runs.glob("*.json"))) + 1
    record = runs / f"{number:03d}-{stack_name}-{action}.json"
    record.write_text(json.dumps({**result, "events": events, "output": lines}, indent=1) + "\n")
    result["record"] = str(record)
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.driver")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--stack-file", type=Path)
    parser.add_argument("--floor", type=Path, help="run the benchmark's floor program (its spec)")
    parser.add_argument("action")
    parser.add_argument("machine", nargs="?", default="")
    args = parser.parse_args(argv)
    needs_machine = args.action in MACHINE_ACTIONS
    if needs_machine != bool(args.machine):
        parser.error(f"{args.action}: {'a MACHINE' if needs_machine else 'no MACHINE'} expected")
    return run(args.work, args.stack, args.stack_file, args.action, args.machine, args.floor)


if __name__ == "__main__":
    sys.exit(main())
