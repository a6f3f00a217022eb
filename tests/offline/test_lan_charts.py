"""The LAN releases (MetalLB, Gateway API's CRDs, Envoy Gateway, our stubernetes-lan chart),
each rendered by Helm's engine from its real chart with the values the program gives it for the
example stack: the upstream ones from their Go modules at the pinned versions, prepared as each
project's release prepares them (tests/upstream_charts.py). What the API server makes of them:
tests/real/test_system_releases_real.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
from chart_tools import (
    Manifest,
    chart_dir,
    find,
    lint_findings,
    pod_spec,
    render,
    validation_errors,
)
from upstream_charts import CHART_SOURCES, release_chart

from stackconfig import StackConfig
from stackconfig.releases import ReleaseSpec, system_releases

RELEASES = (*CHART_SOURCES, "lan")
# Gateway API's standard channel at v1.6 (sigs.k8s.io/gateway-api@v1.6.3 config/crd/standard:
# one CRD file per kind, and the safe-upgrades ValidatingAdmissionPolicy).
STANDARD_KINDS = {
    "BackendTLSPolicy",
    "GatewayClass",
    "Gateway",
    "GRPCRoute",
    "HTTPRoute",
    "ListenerSet",
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
}


def release(stack: StackConfig, name: str) -> ReleaseSpec:
    (spec,) = [r for r in system_releases(stack) if r.name == name]
    return spec


def chart_path(spec: ReleaseSpec) -> Path:
    return chart_dir("stubernetes-lan") if spec.name == "lan" else release_chart(spec)


def rendered(stack: StackConfig, name: str, values: dict[str, Any] | None = None) -> list[Manifest]:
    spec = release(stack, name)
    with helm_python.Chart.load(chart_path(spec)) as chart:
        return render(
            chart, spec.values if values is None else values, release=name, namespace=spec.namespace
        )


@pytest.fixture(scope="module")
def objects(example_stack: StackConfig) -> Iterator[dict[str, list[Manifest]]]:
    yield {name: rendered(example_stack, name) for name in RELEASES}


def crd_kinds(objects: list[Manifest], group: str) -> set[str]:
    return {
        o["spec"]["names"]["kind"]
        for o in objects
        if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] == group
    }


def test_metallb_runs_layer_2_without_frr(objects: dict[str, list[Manifest]]) -> None:
    metallb = objects["metallb"]
    assert {o["metadata"]["name"] for o in metallb if o["kind"] == "DaemonSet"} == {
        "metallb-speaker"
    }
    assert not [o for o in metallb if "frr" in o["metadata"]["name"]]
    assert {"IPAddressPool", "L2Advertisement"} <= crd_kinds(metallb, "metallb.io")
    speaker = pod_spec(find(metallb, "DaemonSet"))
    assert speaker["hostNetwork"] is True
    images = {
        c["image"]
        for o in metallb
        if o["kind"] in ("Deployment", "DaemonSet")
        for c in pod_spec(o)["containers"]
    }
    assert images == {"quay.io/metallb/controller:v0.16.2", "quay.io/metallb/speaker:v0.16.2"}


def test_the_gateway_api_crds_are_the_standard_channel(objects: dict[str, list[Manifest]]) -> None:
    crds = objects["gateway-api"]
    gateway_api = [
        o
        for o in crds
        if o["kind"] == "CustomResourceDefinition"
        and o["spec"]["group"].endswith("networking.k8s.io")
    ]
    assert {o["spec"]["names"]["kind"] for o in gateway_api} == STANDARD_KINDS
    for crd in gateway_api:
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/channel"] == "standard", crd["metadata"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == "v1.6.1"
    # Envoy Gateway's own CRDs, the EnvoyProxy among them, come with the same release.
    assert "EnvoyProxy" in crd_kinds(crds, "gateway.envoyproxy.io")


def test_envoy_gateway_brings_no_crds_of_its_own(objects: dict[str, list[Manifest]]) -> None:
    envoy = objects["envoy-gateway"]
    assert not [o for o in envoy if o["kind"] == "CustomResourceDefinition"]
    container = pod_spec(find(envoy, "Deployment"))["containers"][0]
    assert container["image"] == "docker.io/envoyproxy/gateway:v1.9.1"


def test_the_pool_and_the_gateway_take_the_stacks_addresses(
    objects: dict[str, list[Manifest]],
) -> None:
    lan = objects["lan"]
    pool = find(lan, "IPAddressPool")
    assert pool["metadata"]["namespace"] == "metallb-system"
    assert pool["spec"]["addresses"] == ["192.168.10.240-192.168.10.250"]
    advertisement = find(lan, "L2Advertisement")
    assert advertisement["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]
    proxy = find(lan, "EnvoyProxy")
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "LoadBalancer"
    assert service["annotations"] == {"metallb.io/loadBalancerIPs": "192.168.10.241"}
    gateway_class = find(lan, "GatewayClass")
    assert (
        gateway_class["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    )
    reference = gateway_class["spec"]["parametersRef"]
    assert (reference["kind"], reference["name"], reference["namespace"]) == (
        "EnvoyProxy",
        proxy["metadata"]["name"],
        proxy["metadata"]["namespace"],
    )
    gateway = find(lan, "Gateway")
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["protocol"], listener["port"]) == ("HTTP", 80)
    assert listener["allowedRoutes"]["namespaces"]["from"] == "All"


def test_the_lan_chart_refuses_missing_addresses(example_stack: StackConfig) -> None:
    values = release(example_stack, "lan").values
    with pytest.raises(Exception, match=r"pool\.addresses is required"):
        rendered(example_stack, "lan", {**values, "pool": {"addresses": []}})
    with pytest.raises(Exception, match=r"gateway\.address is required"):
        rendered(example_stack, "lan", {**values, "gateway": {"address": ""}})


def test_the_lan_chart_lints_clean(example_stack: StackConfig) -> None:
    values = release(example_stack, "lan").values
    assert lint_findings(chart_dir("stubernetes-lan"), values, kube_version="v1.36.0") == []


@pytest.mark.parametrize("name", ["metallb", "envoy-gateway"])
def test_built_in_kinds_validate_for_the_pinned_kubernetes(
    objects: dict[str, list[Manifest]], name: str
) -> None:
    # kubernetes-validate knows the built-in kinds only; the custom ones are judged by the
    # real API server (tests/real/test_system_releases_real.py).
    built_in = [
        o
        for o in objects[name]
        if "." not in o["apiVersion"].partition("/")[0]
        or o["apiVersion"].split("/")[0].endswith("k8s.io")
    ]
    assert built_in
    assert validation_errors(built_in, "1.36.0") == []
