"""The household DNS release, rendered by Helm's engine from our chart
(charts/stubernetes-household-dns) with the values the program gives it, so these tests check
the objects the release creates, not the values alone. What the API server makes of them:
tests/real/test_system_releases_real.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import helm_python
import pytest
from chart_tools import chart_dir, find, lint_findings, pod_spec, render, validation_errors

from stackconfig import StackConfig, parse_stack_config
from stackconfig.releases import (
    HOUSEHOLD_DNS_CHART_PATH,
    METALLB_ADDRESS_ANNOTATION,
    system_releases,
)
from stackconfig.warnings import stack_warnings

CHART = chart_dir("stubernetes-household-dns")
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def dns_values(stack: StackConfig) -> dict[str, Any]:
    (release,) = [r for r in system_releases(stack) if r.name == "household-dns"]
    # Our chart, named by its path in the checkout (as the core and LAN charts are).
    assert release.chart == str(HOUSEHOLD_DNS_CHART_PATH) and release.repository is None
    assert CHART.samefile(HOUSEHOLD_DNS_CHART_PATH.resolve())
    return release.values


@pytest.fixture(scope="module")
def objects(chart: helm_python.Chart, example_stack: StackConfig) -> list[Manifest]:
    return render(
        chart, dns_values(example_stack), release="household-dns", namespace="household-dns"
    )


def corefile(objects: list[Manifest]) -> str:
    config_map = find(objects, "ConfigMap")
    return str(config_map["data"]["Corefile"])


def server_blocks(text: str) -> list[list[str]]:
    """The Corefile's server blocks, each as its stripped lines, its key ("ZONE:PORT") first."""
    blocks: list[list[str]] = []
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if depth == 0:
            assert line.endswith("{"), text
            blocks.append([line.removesuffix("{").strip()])
        else:
            blocks[-1].append(line)
        depth += line.count("{") - line.count("}")
    assert depth == 0, text
    return blocks


def test_the_probes_find_the_plugins_they_call(objects: list[Manifest]) -> None:
    # The liveness probe GETs :8080/health and the readiness probe :8181/ready, where the
    # `health` and `ready` plugins serve them by default (coredns/coredns plugin/health/README.md,
    # plugin/ready/README.md). Without them the pods never turn ready and an atomic release
    # rolls back.
    container = pod_spec(find(objects, "Deployment"))["containers"][0]
    assert container["livenessProbe"]["httpGet"]["port"] == 8080
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["port"] == 8181
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    text = corefile(objects)
    (catch_all,) = [block for block in server_blocks(text) if block[0] == ".:53"]
    plugins = {line.split()[0] for line in catch_all[1:]}
    assert {"health", "ready"} <= plugins, text


def test_the_service_asks_metallb_for_the_pools_first_address(objects: list[Manifest]) -> None:
    # One LoadBalancer Service, TCP and UDP on 53 (mixed protocols: Kubernetes 1.26 GA), whose
    # address MetalLB assigns from its annotation (metallb/metallb controller/service.go,
    # AnnotationLoadBalancerIPs). The example's pool is 192.168.10.240-192.168.10.250.
    service = find(objects, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == {METALLB_ADDRESS_ANNOTATION: "192.168.10.240"}
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
    # The pods are not kube-dns's: kubeadm's CoreDNS Service selects k8s-app: kube-dns
    # (kubernetes cmd/kubeadm/app/phases/addons/dns/manifests.go).
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels.get("k8s-app") != "kube-dns"
    assert labels["app.kubernetes.io/instance"] == "household-dns"
    # Two servers, on two nodes where the cluster has them.
    assert deployment["spec"]["replicas"] == 2
    (term,) = pod_spec(deployment)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_the_household_domain_has_a_record_per_addressed_machine(objects: list[Manifest]) -> None:
    text = corefile(objects)
    (household,) = [block for block in server_blocks(text) if block[0] == "lab.home.arpa.:53"]
    # coredns/coredns plugin/hosts/README.md: inline "ADDRESS NAME" entries, then fallthrough
    # hands the zone's other names on. w2 has no static address, so no record.
    start = household.index("hosts {")
    assert household[start + 1 : household.index("}", start)] == [
        "192.168.10.11 c1.lab.home.arpa",
        "192.168.10.21 w1.lab.home.arpa",
        "fallthrough",
    ]
    assert "w2.lab.home.arpa" not in text


def test_the_pods_run_as_coredns_image_user_with_only_the_port_capability(
    objects: list[Manifest],
) -> None:
    # coredns/coredns Dockerfile: distroless nonroot (uid 65532), the binary with
    # cap_net_bind_service; the CoreDNS chart's container securityContext adds only that.
    spec = pod_spec(find(objects, "Deployment"))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    (container,) = spec["containers"]
    assert container["image"] == "coredns/coredns:1.13.1"
    context = container["securityContext"]
    assert context["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False


def test_the_chart_refuses_missing_settings(
    chart: helm_python.Chart, example_stack: StackConfig
) -> None:
    values = dns_values(example_stack)
    with pytest.raises(Exception, match=r"address is required"):
        render(chart, {**values, "address": ""}, release="household-dns")
    with pytest.raises(Exception, match=r"domain is required"):
        render(chart, {**values, "domain": ""}, release="household-dns")
    with pytest.raises(Exception, match=r"/hosts/0/address': 'c1' is not valid ipv4"):
        render(chart, {**values, "hosts": [{"name": "c1", "address": "c1"}]})


def test_the_chart_lints_clean(example_stack: StackConfig) -> None:
    assert lint_findings(CHART, dns_values(example_stack), kube_version="v1.36.0") == []


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
