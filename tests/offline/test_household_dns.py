"""The household DNS release, rendered by Helm's engine from the real CoreDNS chart it pins.

`tests/offline/upstream-charts/coredns-1.46.2` is coredns/helm `charts/coredns` at the commit that
released chart 1.46.2 (see its UPSTREAM file), so these tests check the program's values
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
from stackconfig.warnings import stack_warnings

CHART = Path(__file__).parent / "upstream-charts" / "coredns-1.46.2"
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def dns_values(stack: StackConfig) -> dict[str, Any]:
    (release,) = [r for r in system_releases(stack) if r.name == "household-dns"]
    assert release.chart == "coredns" and release.version == "1.46.2"
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


def test_the_service_asks_metallb_for_the_pools_first_address(objects: list[Manifest]) -> None:
    # One LoadBalancer Service, TCP and UDP on 53 (mixed protocols: Kubernetes 1.26 GA), whose
    # address MetalLB assigns from its annotation (metallb/metallb controller/service.go,
    # AnnotationLoadBalancerIPs). The example's pool is 192.168.10.240-192.168.10.250.
    service = find(objects, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] == "192.168.10.240"
    ports = {(p["protocol"], p["port"]) for p in service["spec"]["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53)}
    pod_labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_no_node_port_53_is_taken(objects: list[Manifest]) -> None:
    # A hostPort 53 made the node's portmap rules DNAT the host's own lookups of
    # 127.0.0.53 (systemd-resolved) into the pod: none here, and no host network.
    spec = pod_spec(find(objects, "Deployment"))
    assert not spec.get("hostNetwork")
    for container in spec["containers"]:
        assert all("hostPort" not in port for port in container.get("ports", [])), container


def test_lookups_go_straight_to_the_nodes_resolvers(objects: list[Manifest]) -> None:
    # dnsPolicy Default: the pod's resolv.conf is its node's (kubernetes.io, "DNS for Services
    # and Pods", Pod's DNS Policy), so `forward . /etc/resolv.conf` asks the LAN's resolvers,
    # not the cluster DNS first (ClusterFirst, the default the chart left before).
    deployment = find(objects, "Deployment")
    assert pod_spec(deployment)["dnsPolicy"] == "Default"
    assert "forward . /etc/resolv.conf" in corefile(objects)
    # isClusterService only for the dnsPolicy: the pods are not kube-dns's (kubeadm's CoreDNS
    # Service selects k8s-app: kube-dns).
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["k8s-app"] == "household-dns"
    # Two servers, on two nodes where the cluster has them.
    assert deployment["spec"]["replicas"] == 2
    (term,) = pod_spec(deployment)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_the_household_domain_has_a_record_per_addressed_machine(objects: list[Manifest]) -> None:
    text = corefile(objects)
    assert "lab.home.arpa.:53 {" in text, text
    assert "192.168.10.11 c1.lab.home.arpa" in text
    assert "192.168.10.21 w1.lab.home.arpa" in text
    assert "w2.lab.home.arpa" not in text


def test_rendered_objects_are_valid_for_the_pinned_kubernetes(objects: list[Manifest]) -> None:
    assert validation_errors(objects, "1.36.0") == []


def test_machines_on_dhcp_alone_still_get_household_dns(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    for machine in values["machines"].values():
        for key in ("address", "gateway", "dns"):
            machine.pop(key, None)
    names = [r.name for r in system_releases(parse_stack_config(values))]
    assert "household-dns" in names


def test_no_pool_no_household_dns_and_a_warning_says_so(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    del values["cluster"]["loadBalancerPool"]
    stack = parse_stack_config(values)
    assert [r.name for r in system_releases(stack)] == ["openebs"]
    (warning,) = [w for w in stack_warnings(stack) if w.field == "loadBalancerPool"]
    assert "no household DNS" in warning.message
