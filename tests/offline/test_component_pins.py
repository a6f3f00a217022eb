"""The component table (stackconfig/component_pins.py, the README's table) against what the
program installs: the release versions, the core chart's image tags, the vendored charts'
versions, and the Gateway API bundle inside the CRD chart. A version bumped in one place only
fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import chart_dir

from stackconfig import StackConfig
from stackconfig.component_pins import PINS, pins_table
from stackconfig.releases import system_releases

UPSTREAM = Path(__file__).parent / "upstream-charts"
# The vendored copy of each release's chart, by release name.
VENDORED = {
    "metallb": "metallb-{version}",
    "gateway-api": "gateway-crds-helm-{version}",
    "envoy-gateway": "gateway-helm-{version}",
    "household-dns": "coredns-{version}",
}
BUNDLE = re.compile(r"gateway\.networking\.k8s\.io/bundle-version: (v\S+)")


def chart_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((path / "Chart.yaml").read_text())
    return loaded


def code_pins(stack: StackConfig) -> dict[str, str]:
    """Every version the code installs, by the table's key."""
    core = yaml.safe_load((chart_dir("stubernetes-core") / "values.yaml").read_text())
    releases = {r.name: r for r in system_releases(stack)}
    pins = {
        "flannel": core["flannel"]["image"]["tag"],
        "flannel-cni-plugin": core["flannel"]["cniPluginImage"]["tag"],
        "fleetlock": core["fleetlock"]["image"]["tag"],
        **{
            name: releases[name].version
            for name in ("openebs", "metallb", "gateway-api", "envoy-gateway", "household-dns")
        },
    }
    vendored = {name: UPSTREAM / VENDORED[name].format(version=pins[name]) for name in VENDORED}
    pins["metallb-images"] = chart_yaml(vendored["metallb"])["appVersion"]
    pins["coredns-image"] = chart_yaml(vendored["household-dns"])["appVersion"]
    image = releases["envoy-gateway"].values["global"]["images"]["envoyGateway"]["image"]
    pins["envoy-gateway-image"] = image.rpartition(":")[2]
    standard = vendored["gateway-api"] / "templates" / "standard-gatewayapi-crds.yaml"
    (pins["gateway-api-bundle"],) = set(BUNDLE.findall(standard.read_text()))
    return pins


def test_the_table_and_the_code_pin_the_same_versions(example_stack: StackConfig) -> None:
    table = {pin.key: pin.version for pin in PINS}
    assert code_pins(example_stack) == table


@pytest.mark.parametrize("release", sorted(VENDORED))
def test_each_vendored_chart_is_the_pinned_version(
    example_stack: StackConfig, release: str
) -> None:
    (spec,) = [r for r in system_releases(example_stack) if r.name == release]
    path = UPSTREAM / VENDORED[release].format(version=spec.version)
    assert path.is_dir(), f"no vendored copy of {spec.chart} {spec.version}"
    assert chart_yaml(path)["version"] == spec.version
    assert (path / "UPSTREAM").read_text().count(spec.version) >= 1


def test_the_table_has_a_date_and_a_source_per_pin() -> None:
    assert len({pin.key for pin in PINS}) == len(PINS)
    for pin in PINS:
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", pin.released), pin
        assert pin.source, pin
    assert pins_table().count("\n") == len(PINS) + 1
