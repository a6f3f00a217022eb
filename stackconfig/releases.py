"""The Helm releases a cluster gets: our own core chart, then the system charts.

Defaults live here; `stubernetes:releases` overrides fields of a default (values are merged
key by key), turns one off with `enabled: false`, or adds a new release.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackconfig.model import ReleaseSettings, StackConfig
from stackconfig.node_paths import NODE_CNI_BIN_DIR, OPENEBS_HOSTPATH_DIR
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
    # Other releases (by name) it is installed after: their CRDs, controllers or addresses.
    needs: tuple[str, ...] = ()


# Where each default release's chart comes from. Versions and dates: stackconfig/component_pins.py.
# Ours (core, local storage, LAN, household DNS) are named by their path in the checkout and
# pinned by it.
METALLB_REPOSITORY = "https://metallb.github.io/metallb"
# Envoy Gateway publishes its charts to an OCI registry only (envoyproxy/gateway
# tools/make/helm.mk, OCI_REGISTRY ?= oci://docker.io/envoyproxy).
ENVOY_GATEWAY_CHARTS = "oci://docker.io/envoyproxy"
ENVOY_GATEWAY_VERSION = "v1.9.1"
LAN_RELEASE = "lan"
LAN_CHART_PATH = Path("charts") / "stubernetes-lan"
STORAGE_RELEASE = "openebs"
LOCAL_STORAGE_CHART_PATH = Path("charts") / "stubernetes-local-storage"
HOUSEHOLD_DNS_RELEASE = "household-dns"
HOUSEHOLD_DNS_CHART_PATH = Path("charts") / "stubernetes-household-dns"
# MetalLB's pools and advertisements live in the namespace its controller watches.
METALLB_NAMESPACE = "metallb-system"
# MetalLB's annotation that asks for given addresses (metallb/metallb controller/service.go,
# AnnotationLoadBalancerIPs); `spec.loadBalancerIP` is deprecated since Kubernetes 1.24.
METALLB_ADDRESS_ANNOTATION = "metallb.io/loadBalancerIPs"
# The Gateway every HTTPRoute of the household attaches to (its parentRefs).
GATEWAY_NAME = "lan"
GATEWAY_NAMESPACE = "lan"


def _default_releases(stack: StackConfig) -> dict[str, ReleaseSpec]:
    releases = {
        # Our chart of OpenEBS Local PV Hostpath (charts/stubernetes-local-storage), under the
        # release name and namespace the umbrella chart openebs had, so that a cluster's
        # release of it is upgraded in place.
        STORAGE_RELEASE: ReleaseSpec(
            name=STORAGE_RELEASE,
            chart=str(LOCAL_STORAGE_CHART_PATH),
            version="",
            namespace=STORAGE_RELEASE,
            after="ready",
            values={
                # The directory the nodes' setup makes and labels for containers.
                "basePath": OPENEBS_HOSTPATH_DIR,
                # Local hostpath volumes, as the default StorageClass.
                "storageClass": {"isDefault": True},
            },
        ),
    }
    if stack.cluster.load_balancer_pool is not None:
        releases.update(lan_releases(stack))
    return releases


def lan_releases(stack: StackConfig) -> dict[str, ReleaseSpec]:
    """MetalLB (layer 2), Gateway API with Envoy Gateway, the pool and the default Gateway, and
    the household DNS on its own address: what a stack with a `loadBalancerPool` gets."""
    return {
        "metallb": ReleaseSpec(
            name="metallb",
            chart="metallb",
            repository=METALLB_REPOSITORY,
            version="0.16.2",
            namespace=METALLB_NAMESPACE,
            after="ready",
            values={
                # Layer 2 only: no BGP, so no frr-k8s (its subchart is on by default since
                # 0.15, metallb/metallb charts/metallb/values.yaml `frrk8s.enabled`).
                "frrk8s": {"enabled": False},
            },
        ),
        "gateway-api": ReleaseSpec(
            name="gateway-api",
            chart=f"{ENVOY_GATEWAY_CHARTS}/gateway-crds-helm",
            version=ENVOY_GATEWAY_VERSION,
            namespace="envoy-gateway-system",
            after="ready",
            values={
                # Gateway API's standard channel (the bundle Envoy Gateway is built against)
                # and Envoy Gateway's own CRDs, as templates: Helm installs a chart's crds/
                # once and never upgrades them (helm.sh "Custom Resource Definitions").
                "crds": {
                    "gatewayAPI": {"enabled": True, "channel": "standard"},
                    "envoyGateway": {"enabled": True},
                },
            },
        ),
        "envoy-gateway": ReleaseSpec(
            name="envoy-gateway",
            chart=f"{ENVOY_GATEWAY_CHARTS}/gateway-helm",
            version=ENVOY_GATEWAY_VERSION,
            namespace="envoy-gateway-system",
            after="ready",
            needs=("gateway-api",),
            values={
                # The CRDs come from the release gateway-api (the chart's own are the
                # experimental channel's).
                "crds": {"enabled": False},
                "global": {
                    "images": {
                        "envoyGateway": {
                            "image": f"docker.io/envoyproxy/gateway:{ENVOY_GATEWAY_VERSION}",
                            "pullPolicy": "IfNotPresent",
                        }
                    }
                },
            },
        ),
        LAN_RELEASE: lan_release(stack),
        HOUSEHOLD_DNS_RELEASE: ReleaseSpec(
            name=HOUSEHOLD_DNS_RELEASE,
            chart=str(HOUSEHOLD_DNS_CHART_PATH),
            version="",
            namespace=HOUSEHOLD_DNS_RELEASE,
            after="ready",
            needs=(LAN_RELEASE,),
            values=household_dns_values(stack),
        ),
    }


def household_dns_address(stack: StackConfig) -> ipaddress.IPv4Address | None:
    pool = stack.cluster.load_balancer_pool
    return None if pool is None else pool.address(0)


def gateway_address(stack: StackConfig) -> ipaddress.IPv4Address | None:
    pool = stack.cluster.load_balancer_pool
    return None if pool is None else pool.address(1)


def lan_release(stack: StackConfig) -> ReleaseSpec:
    """Our chart of the LAN's addresses: MetalLB's pool and its layer-2 announcement, and the
    default Gateway on the pool's second address."""
    pool = stack.cluster.load_balancer_pool
    assert pool is not None
    return ReleaseSpec(
        name=LAN_RELEASE,
        chart=str(LAN_CHART_PATH),
        version="",
        namespace=GATEWAY_NAMESPACE,
        after="ready",
        needs=("metallb", "envoy-gateway"),
        values={
            "pool": {"namespace": METALLB_NAMESPACE, "addresses": [str(pool)]},
            "gateway": {"name": GATEWAY_NAME, "address": str(gateway_address(stack))},
        },
    )


HOUSEHOLD_DNS_REPLICAS = 2


def household_dns_values(stack: StackConfig) -> dict[str, Any]:
    """Our CoreDNS chart's values: the cluster's domain with a record for every addressed
    machine, served on the pool's first address (TCP and UDP); the chart forwards every other
    name to the upstream resolvers of the node it runs on (charts/stubernetes-household-dns)."""
    return {
        "domain": stack.cluster.domain,
        "hosts": [
            {"name": machine.name, "address": str(machine.address.ip)}
            for machine in stack.machines
            if machine.address is not None
        ],
        "address": str(household_dns_address(stack)),
        "replicas": HOUSEHOLD_DNS_REPLICAS,
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
        needs=default.needs,
    )


def system_releases(stack: StackConfig) -> list[ReleaseSpec]:
    """The enabled system releases, defaults first (in their order), then added ones by name."""
    defaults = _default_releases(stack)
    releases = []
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


DEFAULT_RELEASE_NAMES = (
    STORAGE_RELEASE,
    "metallb",
    "gateway-api",
    "envoy-gateway",
    LAN_RELEASE,
    HOUSEHOLD_DNS_RELEASE,
)
# Releases this version no longer installs, and what replaced them.
RETIRED_RELEASES = {
    "ingress-nginx": (
        'ingress-nginx is retired (kubernetes.io blog 2025-11-11, "Ingress NGINX Retirement": '
        "no releases or security fixes after March 2026); stubernetes installs Gateway API with "
        "Envoy Gateway instead: remove this entry and move each Ingress to an HTTPRoute on the "
        f"Gateway '{GATEWAY_NAME}' in namespace '{GATEWAY_NAMESPACE}' (gateway-api.sigs.k8s.io, "
        '"Migrating from Ingress-NGINX")'
    ),
}


def release_problems(releases: Mapping[str, ReleaseSettings]) -> list[Problem]:
    problems = []
    for name, settings in releases.items():
        if name == CORE_RELEASE:
            problems.append(
                Problem(f"release '{name}'", "", "the core release is not configurable here")
            )
        elif name in RETIRED_RELEASES:
            problems.append(Problem(f"release '{name}'", "", RETIRED_RELEASES[name]))
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
