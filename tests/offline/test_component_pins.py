"""The component table (stackconfig/component_pins.py, the README's table) against what the
program installs: the release versions, our charts' versions and image tags, the upstream
charts' versions as their Go modules serve them (tests/upstream_charts.py), and the Gateway API
bundle inside the CRD chart. A version bumped in one place only fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import chart_dir
from upstream_charts import release_chart

from stackconfig import StackConfig
from stackconfig.component_pins import PINS, pins_table
from stackconfig.releases import (
    HOUSEHOLD_DNS_CHART_PATH,
    LOCAL_STORAGE_CHART_PATH,
    STORAGE_RELEASE,
    system_releases,
)

# The upstream releases whose charts come from their Go modules, by release name.
UPSTREAM_RELEASES = ("metallb", "gateway-api", "envoy-gateway")
BUNDLE = re.compile(r"gateway\.networking\.k8s\.io/bundle-version: (v\S+)")


def chart_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((path / "Chart.yaml").read_text())
    return loaded


def values_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((path / "values.yaml").read_text())
    return loaded


def code_pins(stack: StackConfig) -> dict[str, str]:
    """Every version the code installs, by the table's key."""
    core = values_yaml(chart_dir("stubernetes-core"))
    dns = chart_dir("stubernetes-household-dns")
    storage = chart_dir("stubernetes-local-storage")
    releases = {r.name: r for r in system_releases(stack)}
    pins = {
        "flannel": core["flannel"]["image"]["tag"],
        "flannel-cni-plugin": core["flannel"]["cniPluginImage"]["tag"],
        "fleetlock": core["fleetlock"]["image"]["tag"],
        **{name: releases[name].version for name in UPSTREAM_RELEASES},
        # Ours are pinned by this checkout: the release names the path, the chart its version.
        "openebs": chart_yaml(storage)["version"],
        "provisioner-localpv-image": values_yaml(storage)["image"]["tag"],
        "linux-utils-image": values_yaml(storage)["helperImage"]["tag"],
        "household-dns": chart_yaml(dns)["version"],
        "coredns-image": values_yaml(dns)["image"]["tag"],
    }
    charts = {name: release_chart(releases[name]) for name in UPSTREAM_RELEASES}
    pins["metallb-images"] = chart_yaml(charts["metallb"])["appVersion"]
    image = releases["envoy-gateway"].values["global"]["images"]["envoyGateway"]["image"]
    pins["envoy-gateway-image"] = image.rpartition(":")[2]
    standard = charts["gateway-api"] / "templates" / "standard-gatewayapi-crds.yaml"
    (pins["gateway-api-bundle"],) = set(BUNDLE.findall(standard.read_text()))
    return pins


def test_the_table_and_the_code_pin_the_same_versions(example_stack: StackConfig) -> None:
    table = {pin.key: pin.version for pin in PINS}
    assert code_pins(example_stack) == table


@pytest.mark.parametrize("release", UPSTREAM_RELEASES)
def test_each_upstream_chart_is_the_pinned_version(
    example_stack: StackConfig, release: str
) -> None:
    (spec,) = [r for r in system_releases(example_stack) if r.name == release]
    assert chart_yaml(release_chart(spec))["version"] == spec.version


def test_the_household_dns_release_is_our_chart(example_stack: StackConfig) -> None:
    (spec,) = [r for r in system_releases(example_stack) if r.name == "household-dns"]
    assert spec.chart == str(HOUSEHOLD_DNS_CHART_PATH) and spec.repository is None
    # The CoreDNS release the image is, as its chart says too.
    dns = chart_dir("stubernetes-household-dns")
    assert chart_yaml(dns)["appVersion"] == values_yaml(dns)["image"]["tag"]


def test_the_storage_release_is_our_chart(example_stack: StackConfig) -> None:
    (spec,) = [r for r in system_releases(example_stack) if r.name == STORAGE_RELEASE]
    assert spec.chart == str(LOCAL_STORAGE_CHART_PATH) and spec.repository is None
    # The Local PV Hostpath release the provisioner image is, as the chart says too.
    storage = chart_dir("stubernetes-local-storage")
    assert chart_yaml(storage)["appVersion"] == values_yaml(storage)["image"]["tag"]


def test_the_table_has_a_date_and_a_source_per_pin() -> None:
    assert len({pin.key for pin in PINS}) == len(PINS)
    for pin in PINS:
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", pin.released), pin
        assert pin.source, pin
    assert pins_table().count("\n") == len(PINS) + 1
