"""The Helm releases a cluster gets: our own core chart, then the system charts.

Defaults live here; `stubernetes:releases` overrides fields of a default (values are merged
key by key), turns one off with `enabled: false`, or adds a new release.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackconfig.model import ReleaseSettings, StackConfig
from stackconfig.node_paths import NODE_CNI_BIN_DIR
from stackconfig.problems import Problem

CORE_RELEASE = "stubernetes-core"
CORE_CHART_PATH = Path("charts") / CORE_RELEASE

Gate = Literal["registered", "ready"]


@dataclass(frozen=True)
class ReleaseSpec:
    name: str
    chart: str
    version: str
    namespace: str
    # Waits for gate "registered" (API up, every machine a Node) or "ready" (every Node Ready).
    after: Gate
    repository: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


def _default_releases(stack: StackConfig) -> dict[str, ReleaseSpec]:
    return {
        "openebs": ReleaseSpec(
            name="openebs",
            chart="openebs",
            repository="https://openebs.github.io/openebs",
            version="4.3.2",
            namespace="openebs",
            after="ready",
            values={
                # Local hostpath volumes only, as the default StorageClass; no replicated engine.
                "engines": {
                    "local": {"lvm": {"enabled": False}, "zfs": {"enabled": False}},
                    "replicated": {"mayastor": {"enabled": False}},
                },
                "localpv-provisioner": {
                    "hostpathClass": {"enabled": True, "isDefaultClass": True},
                },
                "loki": {"enabled": False},
                "alloy": {"enabled": False},
            },
        ),
        "household-dns": ReleaseSpec(
            name="household-dns",
            chart="coredns",
            repository="https://coredns.github.io/helm",
            version="1.43.0",
            namespace="household-dns",
            after="ready",
            values=household_dns_values(stack),
        ),
        "ingress-nginx": ReleaseSpec(
            name="ingress-nginx",
            chart="ingress-nginx",
            repository="https://kubernetes.github.io/ingress-nginx",
            version="4.13.0",
            namespace="ingress-nginx",
            after="ready",
            values={
                # No load balancer in a home lab: every node answers on 80 and 443.
                "controller": {
                    "kind": "DaemonSet",
                    "hostPort": {"enabled": True},
                    "service": {"type": "ClusterIP"},
                },
            },
        ),
    }


# Where the CoreDNS chart's probes look (coredns/helm `charts/coredns/templates/deployment.yaml`):
# the `health` plugin serves :8080/health, the `ready` plugin :8181/ready.
DNS_PROBE_PLUGINS = (
    {"name": "health", "configBlock": "lameduck 10s"},
    {"name": "ready"},
)
# Kubelet sets this label on every Node to its hostname, the machine's name here.
HOSTNAME_LABEL = "kubernetes.io/hostname"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


def household_dns_machines(stack: StackConfig) -> list[str]:
    """The machines that answer household DNS on port 53: those with a static address, which
    is what a laptop can be pointed at."""
    return [m.name for m in stack.machines if m.address is not None]


def household_dns_values(stack: StackConfig) -> dict[str, Any]:
    """CoreDNS for the household: the cluster's domain, a record for every addressed machine,
    answered on host port 53 of each addressed machine (there is no load balancer on bare
    metal, and Helm would wait forever for a LoadBalancer Service's address)."""
    domain = stack.cluster.domain
    records = [
        f"{machine.address.ip} {machine.name}.{domain}"
        for machine in stack.machines
        if machine.address is not None
    ]
    hosts = "\n".join([*records, "fallthrough"])
    machines = household_dns_machines(stack)
    return {
        "isClusterService": False,
        "serviceType": "ClusterIP",
        # One server on each addressed machine, and only there.
        "replicaCount": len(machines),
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": machines}
                            ]
                        }
                    ]
                }
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchLabels": {"app.kubernetes.io/instance": "household-dns"}
                        },
                        "topologyKey": HOSTNAME_LABEL,
                    }
                ]
            },
        },
        # Controllers with an address serve too.
        "tolerations": [
            {"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}
        ],
        "servers": [
            {
                "zones": [{"zone": f"{domain}.", "use_tcp": True}],
                "port": 53,
                "hostPort": 53,
                "plugins": [
                    {"name": "errors"},
                    {"name": "hosts", "configBlock": hosts},
                    {"name": "cache", "parameters": 30},
                ],
            },
            {
                "zones": [{"zone": ".", "use_tcp": True}],
                "port": 53,
                "hostPort": 53,
                "plugins": [
                    {"name": "errors"},
                    *DNS_PROBE_PLUGINS,
                    {"name": "forward", "parameters": ". /etc/resolv.conf"},
                    {"name": "cache", "parameters": 30},
                    {"name": "loop"},
                ],
            },
        ],
    }


def core_release(stack: StackConfig, chart_version: str) -> ReleaseSpec:
    """Our own chart: the pod network and the fleet-lock server; needs Nodes, not Ready ones."""
    cluster = stack.cluster
    return ReleaseSpec(
        name=CORE_RELEASE,
        chart=str(CORE_CHART_PATH),
        version=chart_version,
        namespace="kube-system",
        after="registered",
        values={
            "podCidr": str(cluster.pod_cidr),
            "serviceCidr": str(cluster.service_cidr),
            "fleetlock": {"clusterIP": str(cluster.fleetlock_ip)},
            # The writable directory that the machines' CRI-O drop-in lists.
            "flannel": {"cniBinDir": NODE_CNI_BIN_DIR},
        },
    )


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply(default: ReleaseSpec, settings: ReleaseSettings) -> ReleaseSpec:
    return ReleaseSpec(
        name=default.name,
        chart=settings.chart or default.chart,
        repository=settings.repository or default.repository,
        version=settings.version or default.version,
        namespace=settings.namespace or default.namespace,
        after=settings.after or default.after,
        values=deep_merge(default.values, settings.values),
    )


def system_releases(stack: StackConfig) -> list[ReleaseSpec]:
    """The enabled system releases, defaults first (in their order), then added ones by name."""
    defaults = _default_releases(stack)
    releases = []
    if not household_dns_machines(stack):
        # Nothing a laptop could be pointed at: no machine has a static address.
        del defaults["household-dns"]
    for name, default in defaults.items():
        settings = stack.releases.get(name)
        if settings is None:
            releases.append(default)
        elif settings.enabled:
            releases.append(_apply(default, settings))
    for name in sorted(set(stack.releases) - set(defaults)):
        settings = stack.releases[name]
        if settings.enabled:
            assert settings.chart and settings.version and settings.namespace  # release_problems
            releases.append(
                ReleaseSpec(
                    name=name,
                    chart=settings.chart,
                    repository=settings.repository,
                    version=settings.version,
                    namespace=settings.namespace,
                    after=settings.after or "ready",
                    values=dict(settings.values),
                )
            )
    return releases


DEFAULT_RELEASE_NAMES = ("openebs", "household-dns", "ingress-nginx")


def release_problems(releases: Mapping[str, ReleaseSettings]) -> list[Problem]:
    problems = []
    for name, settings in releases.items():
        if name == CORE_RELEASE:
            problems.append(
                Problem(f"release '{name}'", "", "the core release is not configurable here")
            )
        elif name not in DEFAULT_RELEASE_NAMES and settings.enabled:
            for field_name in ("chart", "version", "namespace"):
                if getattr(settings, field_name) is None:
                    problems.append(
                        Problem(
                            f"release '{name}'",
                            field_name,
                            "required for a release that is not a default",
                        )
                    )
    return problems
