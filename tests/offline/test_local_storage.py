"""The storage release (name and namespace openebs), rendered by Helm's engine from our chart of
OpenEBS Local PV Hostpath (charts/stubernetes-local-storage) with the values the program gives
it, so these tests check the objects the release creates. What the API server makes of them:
tests/real/test_system_releases_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python
import pytest
import yaml
from chart_tools import chart_dir, find, lint_findings, pod_spec, render, validation_errors

from stackconfig import StackConfig
from stackconfig.node_paths import OPENEBS_HOSTPATH_DIR
from stackconfig.releases import LOCAL_STORAGE_CHART_PATH, STORAGE_RELEASE, system_releases

CHART = chart_dir("stubernetes-local-storage")
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def storage_values(stack: StackConfig) -> dict[str, Any]:
    (release,) = [r for r in system_releases(stack) if r.name == STORAGE_RELEASE]
    # Our chart, named by its path in the checkout, under the umbrella chart's release name
    # and namespace, so a cluster's release of the umbrella chart is upgraded in place.
    assert release.chart == str(LOCAL_STORAGE_CHART_PATH) and release.repository is None
    assert (release.name, release.namespace) == ("openebs", "openebs")
    assert CHART.samefile(LOCAL_STORAGE_CHART_PATH.resolve())
    return release.values


@pytest.fixture(scope="module")
def objects(chart: helm_python.Chart, example_stack: StackConfig) -> list[Manifest]:
    return render(chart, storage_values(example_stack), release="openebs", namespace="openebs")


def provisioner_env(objects: list[Manifest]) -> dict[str, Any]:
    (container,) = pod_spec(find(objects, "Deployment"))["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_default_class_makes_hostpath_volumes_under_the_nodes_directory(
    objects: list[Manifest],
) -> None:
    # openebs/dynamic-localpv-provisioner deploy/helm/charts/templates/hostpath-class.yaml:
    # provisioner openebs.io/local, StorageType and BasePath in cas.openebs.io/config, bound
    # when the first pod is scheduled (the volume is a directory on that pod's node).
    sc = find(objects, "StorageClass")
    assert sc["metadata"]["name"] == "openebs-hostpath"
    assert sc["provisioner"] == "openebs.io/local"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Delete"
    annotations = sc["metadata"]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert annotations["openebs.io/cas-type"] == "local"
    config = yaml.safe_load(annotations["cas.openebs.io/config"])
    assert config == [
        {"name": "StorageType", "value": "hostpath"},
        {"name": "BasePath", "value": OPENEBS_HOSTPATH_DIR},
    ]


def test_the_provisioner_gets_its_settings_from_the_environment(objects: list[Manifest]) -> None:
    # The variables upstream's deployment.yaml sets; analytics off (upstream's default is on).
    env = provisioner_env(objects)
    assert env["OPENEBS_IO_BASE_PATH"] == OPENEBS_HOSTPATH_DIR
    assert env["OPENEBS_IO_HELPER_IMAGE"] == "openebs/linux-utils:4.6.0"
    assert env["OPENEBS_IO_ENABLE_ANALYTICS"] == "false"
    assert env["LEADER_ELECTION_ENABLED"] == "true"
    assert env["OPENEBS_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["OPENEBS_SERVICE_ACCOUNT"] == {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}
    (container,) = pod_spec(find(objects, "Deployment"))["containers"]
    assert container["image"] == "openebs/provisioner-localpv:4.6.0"


def test_the_objects_keep_the_umbrella_charts_names_and_selector(
    objects: list[Manifest],
) -> None:
    # The umbrella chart's subchart localpv-provisioner, in a release named openebs, names its
    # objects openebs-localpv-provisioner and selects its pods by app, release and component
    # (dynamic-localpv-provisioner deploy/helm/charts/templates/_helpers.tpl). A Deployment's
    # selector is immutable: another one would make the upgrade from the umbrella chart fail.
    deployment = find(objects, "Deployment")
    assert deployment["metadata"]["name"] == "openebs-localpv-provisioner"
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app": "localpv-provisioner",
        "release": "openebs",
        "component": "localpv-provisioner",
    }
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        assert find(objects, kind)["metadata"]["name"] == "openebs-localpv-provisioner"


def test_the_provisioner_runs_as_its_service_account_bound_to_its_role(
    objects: list[Manifest],
) -> None:
    account = find(objects, "ServiceAccount")
    assert (
        pod_spec(find(objects, "Deployment"))["serviceAccountName"] == account["metadata"]["name"]
    )
    binding = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == find(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "openebs"}
    ]
    # What it does with them (upstream's rbac.yaml): PersistentVolumes made and deleted,
    # helper pods run, and its leader-election lease.
    rules = find(objects, "ClusterRole")["rules"]
    granted = {(r, v) for rule in rules for r in rule.get("resources", []) for v in rule["verbs"]}
    assert {("persistentvolumes", "*"), ("pods", "*"), ("leases", "update")} <= granted


def test_only_the_provisioner_and_its_class(objects: list[Manifest]) -> None:
    # Local PV Hostpath alone: no CRDs, no engines, no hooks of the umbrella chart.
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "ServiceAccount",
        "StorageClass",
    ]


def test_the_chart_refuses_a_relative_or_missing_base_path(
    chart: helm_python.Chart, example_stack: StackConfig
) -> None:
    values = storage_values(example_stack)
    # The schema's pattern: the provisioner takes BasePath as a directory on the node.
    for wrong in ("", "var/openebs/local"):
        with pytest.raises(Exception, match=r"basePath.*does not match"):
            render(chart, {**values, "basePath": wrong}, release="openebs")


def test_the_chart_lints_clean(example_stack: StackConfig) -> None:
    assert lint_findings(CHART, storage_values(example_stack), kube_version="v1.36.0") == []


def test_rendered_objects_are_valid_for_the_pinned_kubernetes(objects: list[Manifest]) -> None:
    assert validation_errors(objects, "1.36.0") == []
