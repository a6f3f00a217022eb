"""The household DNS release, rendered by Helm's engine from the real CoreDNS chart it pins.

`tests/offline/upstream-charts/coredns-1.43.0` is coredns/helm `charts/coredns` at the commit that
released chart 1.43.0 (see its UPSTREAM file), so these tests check the program's values
against the chart's own templates, not against what we believe they do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
from chart_tools import find, pod_spec, render, validation_errors

from stackconfig import StackConfig, parse_stack_config
from stackconfig.releases import system_releases

CHART = Path(__file__).parent / "upstream-charts" / "coredns-1.43.0"
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def dns_values(stack: StackConfig) -> dict[str, Any]:
    (release,) = [r for r in system_releases(stack) if r.name == "household-dns"]
    assert release.chart == "coredns" and release.version == "1.43.0"
    return release.values


@pytest.fixture(scope="module")
def objects(chart: helm_python.Chart, example_stack: StackConfig) -> list[Manifest]:
    return render(chart, dns_values(example_stack), release="household-dns", namespace="dns")


def corefile(objects: list[Manifest]) -> str:
    config_map = find(objects, "ConfigMap")
    return str(config_map["data"]["Corefile"])


def test_the_probes_find_the_plugins_they_call(objects: list[Manifest]) -> None:
    # coredns/helm charts/coredns/templates/deployment.yaml: the liveness probe GETs
    # :8080/health and the readiness probe :8181/ready; coredns/helm charts/coredns/values.yaml
    # says the `health` and `ready` plugins serve them. Without them the pods never turn
    # ready and an atomic release rolls back.
    container = pod_spec(find(objects, "Deployment"))["containers"][0]
    assert container["livenessProbe"]["httpGet"]["port"] == 8080
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["port"] == 8181
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    text = corefile(objects)
    assert "health {" in text or "health\n" in text, text
    assert "ready\n" in text, text


def test_no_service_waits_for_a_load_balancer(objects: list[Manifest]) -> None:
    # Helm's wait (helm/helm pkg/kube/ready.go, serviceReady) waits for a LoadBalancer
    # Service's ingress address, which nothing hands out on bare metal without a load-balancer
    # controller: every Service of the release is a ClusterIP.
    services = [o for o in objects if o["kind"] == "Service"]
    assert services
    assert {s["spec"].get("type", "ClusterIP") for s in services} == {"ClusterIP"}


def test_addressed_machines_answer_on_host_port_53(objects: list[Manifest]) -> None:
    # The chart maps a server's `hostPort` onto the container port (coredns/helm
    # charts/coredns/templates/_helpers.tpl, coredns.containerPorts); CRI-O serves hostPort
    # through the portmap CNI plugin, which the core chart's flannel conflist chains.
    spec = pod_spec(find(objects, "Deployment"))
    ports = {
        (p["protocol"], p["containerPort"], p.get("hostPort"))
        for p in spec["containers"][0]["ports"]
    }
    assert ("UDP", 53, 53) in ports and ("TCP", 53, 53) in ports
    deployment = find(objects, "Deployment")
    # c1 and w1 of the example have static addresses; w2 has none, so it serves no DNS.
    assert deployment["spec"]["replicas"] == 2
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = terms["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["c1", "w1"]}
    ]
    (anti,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    # The anti-affinity selects the release's own pods, so two never share a node's port 53.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert anti["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert any(t.get("key") == "node-role.kubernetes.io/control-plane" for t in spec["tolerations"])


def test_the_household_domain_has_a_record_per_addressed_machine(objects: list[Manifest]) -> None:
    text = corefile(objects)
    assert "lab.home.arpa.:53 {" in text, text
    assert "192.168.10.11 c1.lab.home.arpa" in text
    assert "192.168.10.21 w1.lab.home.arpa" in text
    assert "w2.lab.home.arpa" not in text


def test_rendered_objects_are_valid_for_the_pinned_kubernetes(objects: list[Manifest]) -> None:
    assert validation_errors(objects, "1.36.0") == []


def test_no_addressed_machine_no_household_dns(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    for machine in values["machines"].values():
        for key in ("address", "gateway", "dns"):
            machine.pop(key, None)
    names = [r.name for r in system_releases(parse_stack_config(values))]
    assert names == ["openebs", "ingress-nginx"]
