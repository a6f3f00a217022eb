"""Helm releases on the cluster, each after the gate it needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from stackconfig.releases import ReleaseSpec

RELEASE_TIMEOUT_SECONDS = 900


def chart_version(chart_path: Path) -> str:
    return str(yaml.safe_load((chart_path / "Chart.yaml").read_text())["version"])


def helm_release(
    spec: ReleaseSpec,
    provider: k8s.Provider,
    gate: pulumi.Resource,
    parent: pulumi.Resource,
    needs: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v3.Release:
    repository = k8s.helm.v3.RepositoryOptsArgs(repo=spec.repository) if spec.repository else None
    return k8s.helm.v3.Release(
        spec.name,
        # An explicit name: otherwise Helm's release name gets a random suffix.
        name=spec.name,
        chart=spec.chart,
        # A local chart is pinned by this repository itself; an OCI chart by its tag.
        version=spec.version if spec.repository or spec.chart.startswith("oci://") else None,
        repository_opts=repository,
        namespace=spec.namespace,
        create_namespace=True,
        values=spec.values,
        atomic=True,
        timeout=RELEASE_TIMEOUT_SECONDS,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[gate, *needs]),
    )
