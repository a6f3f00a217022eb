"""`stubernetes:releases`: defaults, overrides merged key by key, turned off, added, refused."""

from __future__ import annotations

import copy
from typing import Any

import helm_python
import pytest
from chart_tools import chart_dir, config_json, find, pod_spec, render, validation_errors

from stackconfig import ConfigError, parse_stack_config
from stackconfig.node_paths import NODE_CNI_BIN_DIR
from stackconfig.releases import DEFAULT_RELEASE_NAMES, core_release, system_releases


def releases_of(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    changed["releases"] = overrides
    return {r.name: r for r in system_releases(parse_stack_config(changed))}


def test_defaults_are_pinned_and_wait_for_ready_nodes(example_values: dict[str, Any]) -> None:
    releases = releases_of(example_values, {})
    assert list(releases) == [
        "openebs",
        "metallb",
        "gateway-api",
        "envoy-gateway",
        "lan",
        "household-dns",
    ]
    assert tuple(releases) == DEFAULT_RELEASE_NAMES
    for release in releases.values():
        assert release.after == "ready"
        if release.name in ("openebs", "lan", "household-dns"):
            # Ours, named by their path in the checkout and pinned by it (the storage chart
            # under the release name the umbrella chart openebs had).
            chart = "local-storage" if release.name == "openebs" else release.name
            assert release.chart == f"charts/stubernetes-{chart}"
            assert release.repository is None and release.version == ""
        elif release.chart.startswith("oci://"):
            assert release.version.startswith("v") and release.repository is None
        else:
            assert release.version and release.version[0].isdigit()
            assert release.repository and release.repository.startswith("https://")
    storage = releases["openebs"].values
    assert storage == {"basePath": "/var/openebs/local", "storageClass": {"isDefault": True}}


def test_each_release_comes_after_the_ones_it_needs(example_values: dict[str, Any]) -> None:
    # CRDs before their objects, MetalLB's pool before a Service that waits for its address.
    releases = releases_of(example_values, {})
    order = list(releases)
    assert releases["envoy-gateway"].needs == ("gateway-api",)
    assert releases["lan"].needs == ("metallb", "envoy-gateway")
    assert releases["household-dns"].needs == ("lan",)
    for name, release in releases.items():
        assert all(order.index(needed) < order.index(name) for needed in release.needs), name


def test_household_dns_serves_the_domain_with_every_addressed_machine(
    example_values: dict[str, Any],
) -> None:
    values = releases_of(example_values, {})["household-dns"].values
    assert values["domain"] == "lab.home.arpa"
    # w2 has no static address, so no record.
    assert values["hosts"] == [
        {"name": "c1", "address": "192.168.10.11"},
        {"name": "w1", "address": "192.168.10.21"},
    ]
    # The pool's first address (the example's pool is 192.168.10.240-192.168.10.250).
    assert values["address"] == "192.168.10.240"


def test_override_merges_values_and_replaces_fields(example_values: dict[str, Any]) -> None:
    releases = releases_of(
        example_values,
        {"metallb": {"version": "0.16.3", "values": {"speaker": {"logLevel": "debug"}}}},
    )
    metallb = releases["metallb"]
    assert metallb.version == "0.16.3"
    assert metallb.values == {"frrk8s": {"enabled": False}, "speaker": {"logLevel": "debug"}}
    assert metallb.needs == ()


def test_a_release_can_be_turned_off_or_added(example_values: dict[str, Any]) -> None:
    releases = releases_of(
        example_values,
        {
            "openebs": {"enabled": False},
            "cert-manager": {
                "chart": "cert-manager",
                "repository": "https://charts.jetstack.io",
                "version": "1.19.1",
                "namespace": "cert-manager",
                "after": "registered",
            },
        },
    )
    assert list(releases) == [
        "metallb",
        "gateway-api",
        "envoy-gateway",
        "lan",
        "household-dns",
        "cert-manager",
    ]
    assert releases["cert-manager"].after == "registered"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"traefik": {"chart": "traefik"}}, "release 'traefik': field 'version': required"),
        ({"ingress-nginx": {"enabled": True}}, "release 'ingress-nginx': ingress-nginx is retired"),
        ({"openebs": {"versoin": "1"}}, "release 'openebs': field 'versoin': unknown key"),
        ({"stubernetes-core": {"enabled": False}}, "release 'stubernetes-core': the core release"),
        ({"Bad_Name": {"enabled": False}}, "release 'Bad_Name': field 'name'"),
    ],
)
def test_bad_release_settings_are_refused(
    example_values: dict[str, Any], overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        releases_of(example_values, overrides)
    assert expected in str(error.value)


def test_core_release_carries_the_cluster_networks(example_values: dict[str, Any]) -> None:
    core = core_release(parse_stack_config(example_values), "0.2.0")
    assert core.after == "registered"
    assert core.values == {
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.96.0.0/12",
        "fleetlock": {"clusterIP": "10.96.0.15"},
        "flannel": {"cniBinDir": NODE_CNI_BIN_DIR},
    }


def test_core_release_values_render_valid_manifests(example_values: dict[str, Any]) -> None:
    """What the program hands Helm for stubernetes-core renders, and validates strictly."""
    stack = parse_stack_config(example_values)
    core = core_release(stack, "0.2.0")
    with helm_python.Chart.load(str(chart_dir("stubernetes-core"))) as chart:
        objects = render(chart, core.values, release=core.name, namespace=core.namespace)
    assert validation_errors(objects, "1.36.0") == []
    service = find(objects, "Service")
    # Zincati on every node asks this IP, written into each machine's Ignition.
    assert service["spec"]["clusterIP"] == str(stack.cluster.fleetlock_ip)
    net_conf = config_json(find(objects, "ConfigMap"), "net-conf.json")
    assert net_conf["Network"] == "10.244.0.0/16"
    # flannel copies its plugin beside the reference plugins the machines' setup unpacks, in
    # containerd's default plugin directory /opt/cni/bin (tests/offline/test_node_os.py).
    daemonset = find(objects, "DaemonSet")
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    assert NODE_CNI_BIN_DIR == "/opt/cni/bin"
    assert volumes["cni-plugin"]["hostPath"]["path"] == NODE_CNI_BIN_DIR
    # Privileged, as Typhoon runs flannel on Fedora CoreOS (poseidon/typhoon
    # addons/flannel/daemonset.tf): a confined container may not write these host paths under
    # SELinux enforcing (flannel-io/flannel#1202).
    for container in [*pod_spec(daemonset)["initContainers"], *pod_spec(daemonset)["containers"]]:
        assert container["securityContext"]["privileged"] is True, container["name"]
