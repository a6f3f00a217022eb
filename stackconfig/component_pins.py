"""Every chart and image the program installs on the cluster, with its pinned version, its
release date and where both come from: the README's component table, as data.

`python -m stackconfig.component_pins` prints the table in Markdown;
tests/offline/test_component_pins.py fails when a version here and the one the code installs
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Pin:
    # What tests/offline/test_component_pins.py looks the code's version up by.
    key: str
    component: str
    artifact: str
    version: str
    released: str
    source: str


PINS: Final = (
    Pin(
        "flannel",
        "Pod network",
        "image ghcr.io/flannel-io/flannel (charts/stubernetes-core)",
        "v0.28.10",
        "2026-10-08",
        "Go module github.com/flannel-io/flannel@v0.28.10; its Documentation/kube-flannel.yml "
        "(probes on --healthz-port 8081, /healthz and /readyz)",
    ),
    Pin(
        "flannel-cni-plugin",
        "Pod network",
        "image ghcr.io/flannel-io/flannel-cni-plugin (charts/stubernetes-core)",
        "v1.9.1-flannel3",
        "2026-10-08 (pinned by flannel v0.28.10)",
        "flannel v0.28.10 Documentation/kube-flannel.yml, init container install-cni-plugin",
    ),
    Pin(
        "fleetlock",
        "Reboot coordination",
        "image quay.io/poseidon/fleetlock (charts/stubernetes-core)",
        "v0.4.0",
        "2022-05-04",
        "poseidon/fleetlock tag v0.4.0, its newest release (later commits, to 2026-08-21, "
        "bump dependencies only)",
    ),
    Pin(
        "openebs",
        "Storage",
        "chart charts/stubernetes-local-storage (ours; release openebs)",
        "0.1.0",
        "2026-12-06",
        "this repository; the objects of openebs/dynamic-localpv-provisioner's chart "
        "(deploy/helm/charts/templates: deployment.yaml, rbac.yaml, hostpath-class.yaml), "
        "Local PV Hostpath only",
    ),
    Pin(
        "provisioner-localpv-image",
        "Storage",
        "image openebs/provisioner-localpv (charts/stubernetes-local-storage)",
        "4.6.0",
        "2026-08-24",
        "OpenEBS v4.6.0 release notes, Engine Versions: Local PV Hostpath v4.6.0 (v4.6.1 keeps "
        "Hostpath at v4.6.0)",
    ),
    Pin(
        "linux-utils-image",
        "Storage",
        "image openebs/linux-utils (charts/stubernetes-local-storage, the helper pods)",
        "4.6.0",
        "2026-08-19",
        'openebs/mayastor-extensions pull 989, "bump localpv-provisioner and linux-utils to '
        'v4.6.0" (merged 2026-08-19, for OpenEBS 4.6.0)',
    ),
    Pin(
        "metallb",
        "LoadBalancer addresses",
        "chart metallb, https://metallb.github.io/metallb (layer 2, no frr-k8s)",
        "0.16.2",
        "2026-11-04",
        "Go module go.universe.tf/metallb@v0.16.2, charts/metallb",
    ),
    Pin(
        "metallb-images",
        "LoadBalancer addresses",
        "images quay.io/metallb/controller, quay.io/metallb/speaker (chart's appVersion)",
        "v0.16.2",
        "2026-11-04",
        "charts/metallb/Chart.yaml appVersion",
    ),
    Pin(
        "gateway-api",
        "Gateway API CRDs (standard channel)",
        "chart oci://docker.io/envoyproxy/gateway-crds-helm",
        "v1.9.1",
        "2026-08-28",
        "Go module github.com/envoyproxy/gateway@v1.9.1, charts/gateway-crds-helm",
    ),
    Pin(
        "gateway-api-bundle",
        "Gateway API CRDs (standard channel)",
        "Gateway API bundle inside gateway-crds-helm",
        "v1.6.1",
        "2026-07-16",
        "the CRDs' gateway.networking.k8s.io/bundle-version; Go module "
        "sigs.k8s.io/gateway-api@v1.6.1 (the version Envoy Gateway v1.9.1's go.mod requires)",
    ),
    Pin(
        "envoy-gateway",
        "Gateway API implementation",
        "chart oci://docker.io/envoyproxy/gateway-helm",
        "v1.9.1",
        "2026-08-28",
        "Go module github.com/envoyproxy/gateway@v1.9.1, charts/gateway-helm",
    ),
    Pin(
        "envoy-gateway-image",
        "Gateway API implementation",
        "image docker.io/envoyproxy/gateway",
        "v1.9.1",
        "2026-08-28",
        "the same release; the proxies run Envoy Gateway's default image "
        "(api/v1alpha1 DefaultEnvoyProxyImage, envoyproxy/envoy distroless-v1.39.1)",
    ),
    Pin(
        "household-dns",
        "Household DNS",
        "chart charts/stubernetes-household-dns (ours)",
        "0.1.0",
        "2026-12-06",
        "this repository; CoreDNS's Corefile plugins hosts, forward, cache, health, ready and "
        "loop (coredns/coredns plugin/*/README.md)",
    ),
    Pin(
        "coredns-image",
        "Household DNS",
        "image coredns/coredns (charts/stubernetes-household-dns)",
        "1.13.1",
        "2025-10-08",
        "Go module github.com/coredns/coredns@v1.13.1 (tag v1.13.1, 1db4568); the image the "
        "CoreDNS chart 1.46.2 names (coredns/helm charts/coredns/Chart.yaml appVersion)",
    ),
)


def pins_table() -> str:
    lines = [
        "| Component | What | Version | Released | Source |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {p.component} | {p.artifact} | {p.version} | {p.released} | {p.source} |" for p in PINS
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(pins_table())
