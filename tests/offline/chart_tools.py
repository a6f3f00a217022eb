"""Offline helpers for testing the repository's Helm charts.

Rendering and linting go through helm-python-sdk (import name ``helm_python``),
which binds Helm's own Go engine (Helm v4 SDK) in-process: no ``helm`` binary,
no cluster and no network. Manifest validation uses ``kubernetes_validate``,
whose per-version JSON schemas ship inside the package.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"

Manifest = dict[str, Any]


def chart_dir(name: str) -> Path:
    """Path of the chart ``name`` under charts/."""
    return CHARTS_DIR / name


def parse_rendered(rendered: dict[str, str]) -> list[Manifest]:
    """Turn helm's {template path: text} output into Kubernetes objects.

    NOTES.txt is not a manifest and is skipped, as are empty documents (a
    template whose ``if`` was false renders to whitespace). Objects keep the
    order of their template paths, then of their documents.
    """
    objects: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(rendered[path]):
            if document is None:
                continue
            if not isinstance(document, dict):
                raise TypeError(f"{path}: rendered a {type(document).__name__}, not an object")
            objects.append(document)
    return objects


def render(
    chart: helm_python.Chart,
    values: dict[str, Any],
    *,
    release: str = "core",
    namespace: str = "kube-system",
) -> list[Manifest]:
    """Render ``chart`` offline with ``values`` and parse every object."""
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    return parse_rendered(rendered)


def notes(
    chart: helm_python.Chart,
    values: dict[str, Any],
    *,
    release: str = "core",
    namespace: str = "kube-system",
) -> str:
    """The rendered NOTES.txt (empty if the chart has none)."""
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    return next((text for path, text in rendered.items() if path.endswith("NOTES.txt")), "")


def lint_findings(
    path: Path, values: dict[str, Any] | None = None, *, kube_version: str | None = None
) -> list[str]:
    """``helm lint --strict`` findings of warning severity or worse, as text.

    Severity follows Helm's support.Severity: 1 info, 2 warning, 3 error.
    Info findings (such as "icon is recommended") are not returned.
    """
    report = helm_python.lint(path, values, strict=True, kube_version=kube_version)
    findings = [
        f"{message['path']}: {message['error']} (severity {message['severity']})"
        for message in report["messages"]
        if int(message["severity"]) >= 2
    ]
    findings.extend(str(error) for error in report["errors"])
    return findings


def kind_name(obj: Manifest) -> str:
    """A short "Kind namespace/name" for messages."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    name = metadata.get("name", "?")
    return f"{obj.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


def validation_errors(objects: Iterable[Manifest], kube_version: str) -> list[str]:
    """Validate objects against Kubernetes' OpenAPI schemas in strict mode.

    Strict mode rejects fields the schema does not know, so a typo in a
    template is an error rather than something the API server silently drops.
    A kind without a schema counts as an error too.
    """
    errors: list[str] = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path) or "<root>"
            errors.append(f"{kind_name(obj)}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{kind_name(obj)}: {exc.message}")
    return errors


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The single object of ``kind`` (and ``name``); fails if not exactly one."""
    matches = [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]
    if len(matches) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(matches)}")
    return matches[0]


def pod_spec(workload: Manifest) -> Manifest:
    """The pod spec of a Deployment, DaemonSet or StatefulSet."""
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> Iterator[Manifest]:
    """Every container of a workload, init containers first."""
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def config_json(config_map: Manifest, key: str) -> Any:
    """Parse one JSON document held in a ConfigMap's data."""
    return json.loads(config_map["data"][key])
