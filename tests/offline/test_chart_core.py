"""Tests of charts/stubernetes-core: the flannel pod network and fleetlock.

Everything runs offline: Helm's engine through helm-python-sdk (``helm_python``)
for linting and rendering, and kubernetes-validate's bundled schemas for strict
manifest validation.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import kubernetes_validate
import pytest
from chart_tools import (
    Manifest,
    chart_dir,
    config_json,
    containers,
    find,
    kind_name,
    lint_findings,
    notes,
    pod_spec,
    render,
    validation_errors,
)

CHART = chart_dir("stubernetes-core")
RELEASE = "core"
NAMESPACE = "kube-system"
POD_CIDR = "10.244.0.0/16"
CLUSTER_IP = "10.96.0.15"
# The cluster's Kubernetes version (stacks/Pulumi.example.yaml) and the newest
# one kubernetes-validate ships schemas for, to catch upcoming removals.
KUBE_VERSIONS = ["1.31", kubernetes_validate.latest_version()]

VALUES: dict[str, Any] = {"podCidr": POD_CIDR, "fleetlock": {"clusterIP": CLUSTER_IP}}

STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)

FLANNEL_KINDS = {
    ("Namespace", "kube-flannel"),
    ("ServiceAccount", "flannel"),
    ("ClusterRole", "flannel"),
    ("ClusterRoleBinding", "flannel"),
    ("ConfigMap", "kube-flannel-cfg"),
    ("DaemonSet", "kube-flannel-ds"),
}
FLEETLOCK_KINDS = {
    ("ServiceAccount", "fleetlock"),
    ("ClusterRole", "fleetlock"),
    ("ClusterRoleBinding", "fleetlock"),
    ("Role", "fleetlock"),
    ("RoleBinding", "fleetlock"),
    ("Deployment", "fleetlock"),
    ("Service", "fleetlock"),
}


def merged(**overrides: Any) -> dict[str, Any]:
    """VALUES with top-level keys replaced and nested dicts merged one level."""
    values = copy.deepcopy(VALUES)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def kinds(objects: list[Manifest]) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}


def rules_grant(rules: list[Manifest], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        for rule in rules
    )


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def objects(chart: helm_python.Chart) -> list[Manifest]:
    return render(chart, VALUES, release=RELEASE, namespace=NAMESPACE)


# --- chart metadata and lint --------------------------------------------------


def test_chart_metadata(chart: helm_python.Chart) -> None:
    metadata = chart.metadata
    assert metadata["apiVersion"] == "v2"
    assert metadata["name"] == "stubernetes-core"
    assert metadata["version"] == "0.2.0"
    assert metadata.get("appVersion")
    assert chart.schema is not None, "values.schema.json must ship with the chart"


@pytest.mark.parametrize(
    "values",
    [None, VALUES, merged(serviceCidr="10.96.0.0/12")],
    ids=["defaults", "cluster-values", "with-service-cidr"],
)
def test_lint_is_clean(values: dict[str, Any] | None) -> None:
    assert lint_findings(CHART, values, kube_version="v1.31.0") == []


def test_default_values_pass_the_schema(chart: helm_python.Chart) -> None:
    chart.validate_schema(chart.values)
    chart.validate_schema(VALUES)


# --- rendering -----------------------------------------------------------------


def test_renders_every_object(objects: list[Manifest]) -> None:
    assert kinds(objects) == FLANNEL_KINDS | FLEETLOCK_KINDS
    assert len(objects) == len(FLANNEL_KINDS | FLEETLOCK_KINDS), "duplicate objects"


@pytest.mark.parametrize("pod_cidr", [POD_CIDR, "172.16.0.0/12", "10.42.0.0/16"])
def test_pod_cidr_is_the_flannel_network(chart: helm_python.Chart, pod_cidr: str) -> None:
    objects = render(chart, merged(podCidr=pod_cidr))
    config_map = find(objects, "ConfigMap", "kube-flannel-cfg")
    net_conf = config_json(config_map, "net-conf.json")
    assert net_conf["Network"] == pod_cidr
    assert net_conf["Backend"]["Type"] == "vxlan"
    cni_conf = config_json(config_map, "cni-conf.json")
    assert [plugin["type"] for plugin in cni_conf["plugins"]] == ["flannel", "portmap"]
    assert cni_conf["plugins"][0]["delegate"]["isDefaultGateway"] is True


def test_vxlan_options_reach_net_conf(chart: helm_python.Chart) -> None:
    objects = render(
        chart,
        merged(flannel={"backend": {"vni": 4, "port": 4789, "directRouting": True, "mtu": 1400}}),
    )
    backend = config_json(find(objects, "ConfigMap"), "net-conf.json")["Backend"]
    assert backend == {"Type": "vxlan", "VNI": 4, "Port": 4789, "DirectRouting": True, "MTU": 1400}


def test_pod_cidr_change_rolls_flannel(chart: helm_python.Chart) -> None:
    def checksum(values: dict[str, Any]) -> str:
        daemonset = find(render(chart, values), "DaemonSet")
        annotation: str = daemonset["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        return annotation

    assert checksum(VALUES) == checksum(copy.deepcopy(VALUES))
    assert checksum(VALUES) != checksum(merged(podCidr="10.42.0.0/16"))


def test_fleetlock_service_has_the_fixed_cluster_ip(objects: list[Manifest]) -> None:
    service = find(objects, "Service", "fleetlock")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["clusterIP"] == CLUSTER_IP
    assert service["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}
    ]
    deployment = find(objects, "Deployment", "fleetlock")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    ports = pod_spec(deployment)["containers"][0]["ports"]
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in ports


def test_images_are_pinned(objects: list[Manifest]) -> None:
    images: dict[str, str] = {}
    for workload in (find(objects, "DaemonSet"), find(objects, "Deployment")):
        for container in containers(workload):
            image: str = container["image"]
            name = image.split("@")[0]
            repository, _, tag = name.rpartition(":")
            assert "/" not in tag and tag, f"{image} has no tag"
            assert tag != "latest", f"{image} is not pinned"
            images[container["name"]] = repository
    assert images == {
        "install-cni-plugin": "ghcr.io/flannel-io/flannel-cni-plugin",
        "install-cni": "ghcr.io/flannel-io/flannel",
        "kube-flannel": "ghcr.io/flannel-io/flannel",
        "fleetlock": "quay.io/poseidon/fleetlock",
    }


def test_image_digest_is_appended(chart: helm_python.Chart) -> None:
    digest = "sha256:" + "ab" * 32
    objects = render(
        chart,
        merged(
            fleetlock={
                "image": {
                    "tag": "v0.4.0",
                    "digest": digest,
                    "repository": "quay.io/poseidon/fleetlock",
                }
            }
        ),
    )
    image = pod_spec(find(objects, "Deployment"))["containers"][0]["image"]
    assert image == f"quay.io/poseidon/fleetlock:v0.4.0@{digest}"


def test_every_object_has_the_standard_labels(objects: list[Manifest]) -> None:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{kind_name(obj)} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "stubernetes"
        assert labels["helm.sh/chart"] == "stubernetes-core-0.2.0"
        assert labels["app.kubernetes.io/name"] in {"flannel", "fleetlock"}
        if "template" in obj.get("spec", {}):
            pod_labels = obj["spec"]["template"]["metadata"]["labels"]
            assert pod_labels.items() >= obj["spec"]["selector"]["matchLabels"].items()
            assert all(label in pod_labels for label in STANDARD_LABELS)


def test_common_labels_are_added_but_do_not_override(chart: helm_python.Chart) -> None:
    objects = render(
        chart, merged(commonLabels={"team": "infra", "app.kubernetes.io/part-of": "other"})
    )
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == "infra"
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "stubernetes"


def test_flannel_runs_on_every_node(objects: list[Manifest]) -> None:
    daemonset = find(objects, "DaemonSet", "kube-flannel-ds")
    spec = pod_spec(daemonset)
    # An empty key with operator Exists (and no effect) tolerates every taint.
    assert any(
        toleration.get("operator") == "Exists"
        and not toleration.get("key")
        and not toleration.get("effect")
        for toleration in spec["tolerations"]
    ), spec["tolerations"]
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "system-node-critical"
    assert [c["name"] for c in spec["initContainers"]] == ["install-cni-plugin", "install-cni"]
    assert [c["name"] for c in spec["containers"]] == ["kube-flannel"]
    flanneld = spec["containers"][0]
    assert "--kube-subnet-mgr" in flanneld["args"]
    assert "--ip-masq" in flanneld["args"]
    assert set(flanneld["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}


def test_flannel_iface_and_extra_args(chart: helm_python.Chart) -> None:
    objects = render(chart, merged(flannel={"iface": ["eno1", "10.0.0.0"], "extraArgs": ["--v=2"]}))
    args = pod_spec(find(objects, "DaemonSet"))["containers"][0]["args"]
    assert args[-3:] == ["--iface=eno1", "--iface=10.0.0.0", "--v=2"]


def test_flannel_objects_live_in_kube_flannel(objects: list[Manifest]) -> None:
    namespace = find(objects, "Namespace", "kube-flannel")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for obj in objects:
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] != "flannel":
            continue
        if obj["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert "namespace" not in obj["metadata"], kind_name(obj)
        else:
            assert obj["metadata"]["namespace"] == "kube-flannel", kind_name(obj)
    binding = find(objects, "ClusterRoleBinding", "flannel")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flannel", "namespace": "kube-flannel"}
    ]
    rules = find(objects, "ClusterRole", "flannel")["rules"]
    assert rules_grant(rules, "", "nodes", "list")
    assert rules_grant(rules, "", "nodes/status", "patch")


def test_flannel_namespace_can_be_left_to_others(chart: helm_python.Chart) -> None:
    objects = render(chart, merged(flannel={"createNamespace": False}))
    assert ("Namespace", "kube-flannel") not in kinds(objects)
    assert find(objects, "DaemonSet")["metadata"]["namespace"] == "kube-flannel"


def test_fleetlock_rbac_and_lease_namespace(objects: list[Manifest]) -> None:
    cluster_rules = find(objects, "ClusterRole", "fleetlock")["rules"]
    for resource, verb in [
        ("nodes", "list"),
        ("nodes", "patch"),
        ("pods", "list"),
        ("pods/eviction", "create"),
    ]:
        assert rules_grant(cluster_rules, "", resource, verb), (resource, verb)
    role = find(objects, "Role", "fleetlock")
    assert role["metadata"]["namespace"] == NAMESPACE
    for verb in ("create", "get", "update"):
        assert rules_grant(role["rules"], "coordination.k8s.io", "leases", verb), verb
    subject = {"kind": "ServiceAccount", "name": "fleetlock", "namespace": NAMESPACE}
    assert find(objects, "RoleBinding", "fleetlock")["subjects"] == [subject]
    assert find(objects, "ClusterRoleBinding", "fleetlock")["subjects"] == [subject]

    deployment = find(objects, "Deployment", "fleetlock")
    spec = pod_spec(deployment)
    assert spec["serviceAccountName"] == "fleetlock"
    env = {item["name"]: item for item in spec["containers"][0]["env"]}
    assert env["NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in spec["tolerations"]


def test_fleetlock_namespace_override(chart: helm_python.Chart) -> None:
    objects = render(chart, merged(fleetlock={"namespace": "fleetlock"}))
    for obj in objects:
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] != "fleetlock":
            continue
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            continue
        assert obj["metadata"]["namespace"] == "fleetlock", kind_name(obj)
    binding = find(objects, "ClusterRoleBinding", "fleetlock")
    assert binding["subjects"][0]["namespace"] == "fleetlock"


def test_notes_give_the_zincati_base_url(chart: helm_python.Chart) -> None:
    text = notes(chart, VALUES)
    assert f'base_url = "http://{CLUSTER_IP}/"' in text
    assert 'strategy = "fleet_lock"' in text


# --- strict validation against the Kubernetes API schemas ----------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_validate_strictly(objects: list[Manifest], kube_version: str) -> None:
    assert validation_errors(objects, kube_version) == []


def test_manifests_with_every_option_validate_strictly(chart: helm_python.Chart) -> None:
    objects = render(
        chart,
        merged(
            serviceCidr="10.96.0.0/12",
            commonLabels={"team": "infra"},
            flannel={
                "backend": {"vni": 2, "port": 4789, "directRouting": True, "mtu": 1450},
                "iface": ["eno1"],
                "enableNFTables": True,
                "extraArgs": ["--v=2"],
            },
            fleetlock={"namespace": "fleetlock", "logLevel": "debug", "servicePort": 8080},
        ),
    )
    assert validation_errors(objects, KUBE_VERSIONS[0]) == []


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        (
            "DaemonSet",
            lambda obj: obj["spec"]["template"]["spec"].update(hostNetwrok=True),
            "hostNetwrok",
        ),
        (
            "Service",
            lambda obj: obj["spec"]["ports"][0].update(portt=80),
            "portt",
        ),
        (
            "Deployment",
            lambda obj: obj["spec"].update(replicas="one"),
            "'one' is not of type 'integer'",
        ),
    ],
    ids=["unknown-pod-field", "unknown-port-field", "wrong-type"],
)
def test_validation_catches_broken_manifests(
    objects: list[Manifest], kind: str, mutate: Callable[[Manifest], object], expected: str
) -> None:
    broken = copy.deepcopy(find(objects, kind))
    mutate(broken)
    errors = validation_errors([broken], KUBE_VERSIONS[0])
    assert len(errors) == 1, errors
    assert expected in errors[0]


def test_unknown_fields_pass_only_without_strict(objects: list[Manifest]) -> None:
    broken = copy.deepcopy(find(objects, "DaemonSet"))
    broken["spec"]["template"]["spec"]["hostNetwrok"] = True
    kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=False)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


# --- values that must fail ------------------------------------------------------


def test_missing_pod_cidr_fails_with_a_message(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"podCidr is required"):
        render(chart, {"fleetlock": {"clusterIP": CLUSTER_IP}})


def test_missing_cluster_ip_fails_with_a_message(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"fleetlock\.clusterIP is required"):
        render(chart, {"podCidr": POD_CIDR})


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (merged(podCidr=10), "/podCidr"),
        (merged(podCidr="10.244.0.0"), "/podCidr"),
        (merged(podCidr="10.244.0.0/33"), "/podCidr"),
        (merged(podCidr="2001:db8::/48"), "/podCidr"),
        (merged(fleetlock={"clusterIP": "10.96.0.256"}), "/fleetlock/clusterIP"),
        (merged(fleetlock={"clusterIP": "fleetlock.kube-system"}), "/fleetlock/clusterIP"),
        (merged(fleetlock={"enabled": "yes"}), "/fleetlock/enabled"),
        (merged(flannel={"enabled": 1}), "/flannel/enabled"),
        (merged(flannel={"backend": {"vni": "one"}}), "/flannel/backend/vni"),
        (
            merged(
                fleetlock={"image": {"repository": "quay.io/poseidon/fleetlock", "tag": "latest"}}
            ),
            "/fleetlock/image/tag",
        ),
        (merged(fleetlock={"clusterIp": CLUSTER_IP}), "/fleetlock"),
        (merged(podCIDR=POD_CIDR), "podCIDR"),
    ],
    ids=[
        "cidr-type",
        "cidr-no-prefix",
        "cidr-prefix-too-long",
        "cidr-ipv6",
        "ip-octet",
        "ip-hostname",
        "enabled-string",
        "enabled-number",
        "vni-type",
        "tag-latest",
        "typo-nested",
        "typo-top-level",
    ],
)
def test_schema_rejects_bad_values(
    chart: helm_python.Chart, values: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=where):
        chart.validate_schema(values)
    with pytest.raises(helm_python.HelmValuesError, match="schema"):
        render(chart, values)


def test_cluster_ip_must_lie_in_the_service_cidr(chart: helm_python.Chart) -> None:
    network = ipaddress.ip_network("10.96.0.0/12")
    inside = [network[1], network[15], network[-2]]
    outside = [network[0] - 1, network[-1] + 1, ipaddress.ip_address("192.168.0.15")]
    for address in inside:
        objects = render(
            chart, merged(serviceCidr=str(network), fleetlock={"clusterIP": str(address)})
        )
        assert find(objects, "Service")["spec"]["clusterIP"] == str(address)
    for address in outside:
        values = merged(serviceCidr=str(network), fleetlock={"clusterIP": str(address)})
        with pytest.raises(helm_python.HelmRenderError, match="outside serviceCidr"):
            render(chart, values)


# --- turning pieces off ---------------------------------------------------------


def test_flannel_can_be_turned_off(chart: helm_python.Chart) -> None:
    # podCidr is only required by flannel.
    objects = render(chart, {"flannel": {"enabled": False}, "fleetlock": {"clusterIP": CLUSTER_IP}})
    assert kinds(objects) == FLEETLOCK_KINDS
    assert all(
        obj["metadata"]["labels"]["app.kubernetes.io/name"] == "fleetlock" for obj in objects
    )


def test_fleetlock_can_be_turned_off(chart: helm_python.Chart) -> None:
    # fleetlock.clusterIP is only required by fleetlock.
    objects = render(chart, {"podCidr": POD_CIDR, "fleetlock": {"enabled": False}})
    assert kinds(objects) == FLANNEL_KINDS
    assert all(obj["metadata"]["labels"]["app.kubernetes.io/name"] == "flannel" for obj in objects)


def test_both_off_renders_nothing(chart: helm_python.Chart) -> None:
    assert render(chart, {"flannel": {"enabled": False}, "fleetlock": {"enabled": False}}) == []


def test_flannel_is_probed_where_flanneld_serves_its_health(objects: list[Manifest]) -> None:
    # flannel-io/flannel v0.28.10 main.go mustRunHealthz serves /healthz and /readyz on
    # --healthz-port (off at 0, its default); Documentation/kube-flannel.yml probes them on 8081.
    flanneld = pod_spec(find(objects, "DaemonSet", "kube-flannel-ds"))["containers"][0]
    assert "--healthz-port=8081" in flanneld["args"]
    (port,) = flanneld["ports"]
    assert (port["name"], port["containerPort"]) == ("healthz", 8081)
    assert flanneld["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert flanneld["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "healthz"}
