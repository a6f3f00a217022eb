"""What a Kubernetes upgrade rollout through the real engine left behind, read from the lab:
every Node's kubelet version and cordon, every machine's upgrade ConfigMap, the lab's record of
what each machine's upgrade service answered (engine.upgrade_service), and how long each
upgrade step took in the engine's events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from engine.driver import PROJECT, stack_settings_file
from engine.lab import LabHandle
from engine.session import EngineRun
from engine.upgrade_service import CONFIGMAP_PREFIX, NAMESPACE, UPGRADE_LABEL

UPGRADE_STEP = "command:local:Command"


def set_kubernetes_version(work: Path, stack: str, version: str) -> str:
    """``pulumi config set --path cluster.kubernetesVersion VERSION``, in the stack's settings
    file; returns the file's previous text."""
    settings = stack_settings_file(work, stack)
    text = settings.read_text()
    document = yaml.safe_load(text)
    document["config"][f"{PROJECT}:cluster"]["kubernetesVersion"] = version
    settings.write_text(yaml.safe_dump(document, sort_keys=False))
    return text


def nodes(lab: LabHandle) -> dict[str, tuple[str, bool]]:
    """Node -> (its kubelet version, whether it is cordoned)."""
    listed = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)
    return {
        n["metadata"]["name"]: (
            str(n["status"]["nodeInfo"]["kubeletVersion"]),
            bool(n["spec"].get("unschedulable", False)),
        )
        for n in listed["items"]
    }


def upgrade_asks(lab: LabHandle) -> dict[str, dict[str, str]]:
    """Machine -> its upgrade ConfigMap's data (empty: never asked)."""
    listed = json.loads(
        lab.kubectl("get", "configmaps", "-n", NAMESPACE, "-l", UPGRADE_LABEL, "-o", "json").stdout
    )
    return {
        str(c["metadata"]["name"]).removeprefix(CONFIGMAP_PREFIX): dict(c.get("data") or {})
        for c in listed["items"]
    }


def service_answers(lab: LabHandle, since: int = 0) -> list[dict[str, Any]]:
    """What the machines' upgrade services answered, in order, from the lab's record's entry
    ``since`` on."""
    return [e for e in lab.boots()[since:] if e["event"] == "upgrade"]


def step_spans(run: EngineRun, stack: str = "lab") -> dict[str, tuple[float, float]]:
    """Machine -> when its upgrade step started and ended in the engine (seconds into the run:
    from the step's start event to its outputs, or to its failure), for the steps the run
    created."""
    started: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for event in run.events:
        name = str(event.get("urn", "")).rpartition("::")[2]
        if not (name.startswith(f"{stack}-") and name.endswith("-upgrade")):
            continue
        machine = name.removeprefix(f"{stack}-").removesuffix("-upgrade")
        if event["kind"] == "pre" and event["op"] in ("create", "create-replacement", "replace"):
            started.setdefault(machine, float(event["t"]))
        elif event["kind"] in ("done", "failed") and machine in started:
            spans.setdefault(machine, (started[machine], float(event["t"])))
    return spans


def step_seconds(run: EngineRun, stack: str = "lab") -> dict[str, float]:
    """Machine -> how long its upgrade step ran (step_spans)."""
    return {m: round(end - start, 1) for m, (start, end) in step_spans(run, stack).items()}
