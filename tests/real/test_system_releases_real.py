"""The system releases against a real API server at the pinned Kubernetes release.

Each release's chart is rendered by the real helm (scripts/tools, helm v3) with the values the
program registers for it: ours from charts/, the upstream ones (MetalLB, Envoy Gateway) from their
Go modules at the pinned versions, prepared as each project's release prepares them
(tests/upstream_charts.py). The CustomResourceDefinitions are
then applied for real (a dry run does not register a type) and every other object is applied
with a server-side dry run: admission, defaulting, the CRDs' schemas and CEL rules, and an API
the server does not serve fails the test. Storage (release openebs) is our chart of OpenEBS
Local PV Hostpath (charts/stubernetes-local-storage), rendered like the others.

No controller runs here: no MetalLB hands out an address, no Envoy Gateway programs a proxy,
no CoreDNS answers. What these tests show is that the API server takes every object as the
program's releases would create it, and that a Gateway with an HTTPRoute is accepted.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.cluster import ControlPlane, running_control_plane
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm
from repo_paths import REPO
from tool_cache import require_tool
from upstream_charts import release_chart

from stackconfig import StackConfig
from stackconfig.releases import (
    CORE_RELEASE,
    DEFAULT_RELEASE_NAMES,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    system_releases,
)

pytestmark = pytest.mark.real

# The household's example: a Service reached from the LAN through the default Gateway.
EXAMPLE_ROUTE = REPO / "examples" / "gateway" / "whoami.yaml"
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(for_built_kubeadm(example_values))


@pytest.fixture(scope="module")
def plane(
    output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with running_control_plane(output, tmp_path_factory.mktemp("system-releases")) as plane:
        yield plane


def chart_path(release: dict[str, Any], stack: StackConfig) -> Path:
    chart = str(release["chart"])
    if chart.startswith("charts/"):
        return REPO / chart
    # The chart and version the program registered are the ones prepared.
    (spec,) = [r for r in system_releases(stack) if r.name == release["name"]]
    assert (spec.chart, spec.version) == (chart, release.get("version")), release
    return release_chart(spec)


def helm_template(release: dict[str, Any], stack: StackConfig, work: Path) -> list[Manifest]:
    """`helm template` of the release as the program registers it (name, namespace, values),
    CRDs of a chart's crds/ directory included, as `helm install` would create them."""
    values = work / f"{release['name']}.values.json"
    values.write_text(json.dumps(release.get("values") or {}))
    argv = [
        str(require_tool("helm", "helm")),
        "template",
        str(release["name"]),
        str(chart_path(release, stack)),
        "--namespace",
        str(release["namespace"]),
        "--values",
        str(values),
        "--include-crds",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


@pytest.fixture(scope="module")
def rendered(
    output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Manifest]]:
    work = tmp_path_factory.mktemp("rendered")
    return {
        name: helm_template(release, output.stack, work)
        for name, release in output.releases.items()
    }


def kubectl_apply(plane: ControlPlane, objects: list[Manifest], *flags: str) -> str:
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    answer = plane.kubectl("apply", "-f", "-", *flags, input_text=document, check=False)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


@pytest.fixture(scope="module")
def crds_applied(plane: ControlPlane, rendered: dict[str, list[Manifest]]) -> list[str]:
    """Every release's CRDs applied for real (server-side: the largest exceed the 256 KiB
    annotation a client-side apply keeps), then established."""
    crds = [
        o
        for objects in rendered.values()
        for o in objects
        if o["kind"] == "CustomResourceDefinition"
    ]
    assert crds
    kubectl_apply(plane, crds, "--server-side", "--field-manager=stubernetes-tests")
    names = [c["metadata"]["name"] for c in crds]
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=120s", *[f"crd/{n}" for n in names]
    )
    return names


@pytest.fixture(scope="module")
def namespaces(plane: ControlPlane, output: ProgramOutput) -> list[str]:
    """The releases' namespaces, which the program's Releases create (create_namespace)."""
    names = sorted({str(r["namespace"]) for r in output.releases.values()} | {"kube-flannel"})
    for name in names:
        if plane.kubectl("get", "namespace", name, check=False).returncode != 0:
            plane.kubectl("create", "namespace", name)
    return names


# Every release the example installs: the core chart, then the default system releases.
RELEASES = (CORE_RELEASE, *DEFAULT_RELEASE_NAMES)


def test_the_programs_releases_are_the_ones_rendered(output: ProgramOutput) -> None:
    assert set(output.releases) == set(RELEASES)


def test_the_gateway_api_types_are_served(plane: ControlPlane, crds_applied: list[str]) -> None:
    resources = plane.kubectl(
        "api-resources", "--api-group=gateway.networking.k8s.io", "-o", "name"
    ).stdout
    for kind in ("gateways", "gatewayclasses", "httproutes", "grpcroutes", "referencegrants"):
        assert f"{kind}.gateway.networking.k8s.io" in resources.split(), resources
    versions = plane.kubectl("api-versions").stdout.split()
    assert "gateway.networking.k8s.io/v1" in versions
    assert "metallb.io/v1beta1" in versions
    assert "gateway.envoyproxy.io/v1alpha1" in versions


@pytest.mark.parametrize("release", RELEASES)
def test_every_object_passes_a_server_side_dry_run(
    plane: ControlPlane,
    rendered: dict[str, list[Manifest]],
    crds_applied: list[str],
    namespaces: list[str],
    release: str,
) -> None:
    objects = [
        o for o in rendered[release] if o["kind"] not in ("CustomResourceDefinition", "Namespace")
    ]
    assert objects
    stdout = kubectl_apply(plane, objects, "--dry-run=server")
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == len(objects) and all("(server dry run)" in x for x in lines), stdout


def test_the_dry_run_refuses_what_a_crd_schema_refuses(
    plane: ControlPlane,
    rendered: dict[str, list[Manifest]],
    crds_applied: list[str],
    namespaces: list[str],
) -> None:
    # The same IPAddressPool with an address that is none: refused by the CRD's schema
    # validation on the server, so the dry runs above judge the objects, not just parse them.
    (pool,) = [o for o in rendered["lan"] if o["kind"] == "IPAddressPool"]
    broken = {**pool, "spec": {**pool["spec"], "addresses": 42}}
    document = json.dumps(broken)
    answer = plane.kubectl("apply", "--dry-run=server", "-f", "-", input_text=document, check=False)
    assert answer.returncode != 0
    assert "addresses" in answer.stderr, answer.stderr


def route_objects() -> list[Manifest]:
    return [o for o in yaml.safe_load_all(EXAMPLE_ROUTE.read_text()) if o]


def test_a_gateway_with_an_httproute_is_accepted(
    plane: ControlPlane,
    rendered: dict[str, list[Manifest]],
    crds_applied: list[str],
    namespaces: list[str],
) -> None:
    """The default Gateway (its GatewayClass and EnvoyProxy) and the example HTTPRoute, applied
    for real: stored after the CRDs' schema and CEL validation. Nothing programs them here."""
    lan = [o for o in rendered["lan"] if o["kind"] in ("EnvoyProxy", "GatewayClass", "Gateway")]
    kubectl_apply(plane, lan)
    example = route_objects()
    (route,) = [o for o in example if o["kind"] == "HTTPRoute"]
    namespace = route["metadata"]["namespace"]
    plane.kubectl("create", "namespace", namespace, check=False)
    kubectl_apply(plane, example)
    stored = json.loads(
        plane.kubectl(
            "get", "httproute", route["metadata"]["name"], "-n", namespace, "-o", "json"
        ).stdout
    )
    (parent,) = stored["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"]) == (GATEWAY_NAME, GATEWAY_NAMESPACE)
    (rule,) = stored["spec"]["rules"]
    (backend,) = rule["backendRefs"]
    (service,) = [o for o in example if o["kind"] == "Service"]
    assert (backend["name"], backend["port"]) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    # Defaulted by the CRD's schema on the server: a match on every path.
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    gateway = json.loads(
        plane.kubectl("get", "gateway", GATEWAY_NAME, "-n", GATEWAY_NAMESPACE, "-o", "json").stdout
    )
    assert gateway["spec"]["gatewayClassName"] == GATEWAY_NAME


def test_an_httproute_the_schema_forbids_is_refused(
    plane: ControlPlane, crds_applied: list[str], namespaces: list[str]
) -> None:
    # Gateway API's CEL rule on HTTPRoute path matches (standard channel's HTTPRoute CRD): an
    # Exact or PathPrefix path must start with '/'.
    (route,) = [o for o in route_objects() if o["kind"] == "HTTPRoute"]
    broken = json.loads(json.dumps(route))
    broken["metadata"]["name"] = "broken"
    broken["metadata"]["namespace"] = "default"
    broken["spec"]["rules"][0]["matches"] = [{"path": {"type": "Exact", "value": "no-slash"}}]
    answer = plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input_text=json.dumps(broken), check=False
    )
    assert answer.returncode != 0
    # The rule's message in the CRD (x-kubernetes-validations of spec.rules[].matches[].path).
    assert "value must be an absolute path and start with '/'" in answer.stderr, answer.stderr
