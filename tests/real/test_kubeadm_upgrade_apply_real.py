"""The real `kubeadm upgrade plan` and `apply` from the previous minor to the example's, on the
program's own control plane.

The stack is the example's at the previous minor's release (control_plane.stacks
for_built_kubeadm with the tool "kubernetes-previous", v1.35.8): the program renders it, and
kubeadm v1.35.8's init phases found the init controller's control plane, v1.35.8, with the
kubelet stand-in (control_plane.kubelet_standin) running its static Pods and posting their
mirror Pods and its Node, which `kubeadm upgrade apply` reads; the machine is then as the upgrade
service finds it (control_plane.upgrade founded_cluster, which says what differs from a machine).

Then kubeadm v1.36.3 (the tool "kubernetes", the example's release) runs `kubeadm upgrade plan
v1.36.3` (the release named: without one it asks dl.k8s.io, which the tests cannot reach), and
`kubeadm upgrade apply v1.36.3 --yes --patches /etc/stubernetes/kubeadm-patches`,
ignition/files/upgrade/stubernetes-upgrade's command line on the first controller, with
kubeadm's defaults the service keeps (--certificate-renewal=true, --etcd-upgrade=true:
kubernetes `cmd/kubeadm/app/cmd/upgrade/apply.go` newCmdApply,
`cmd/kubeadm/app/cmd/upgrade/common.go` addApplyPlanFlags).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from control_plane.upgrade import (
    BEFORE,
    ETCD_AFTER,
    ETCD_BEFORE,
    IGNORE_HOST_CHECKS,
    KUBE_COMPONENTS,
    OBJECT_NAME,
    RELEASE,
    Upgrade,
    cluster_configuration,
    founded_cluster,
    image,
    new_kubeadm,
    previous_minor_program,
    restart_problems,
    selinux_level,
    upgrade_with,
)

from ignition.kubeadm import ETCD_SELINUX_LEVEL, KUBEADM_PATCHES

pytestmark = pytest.mark.real

# What `kubeadm upgrade apply` renews with --certificate-renewal (its default): each
# component's certificates as it upgrades it (`cmd/kubeadm/app/phases/upgrade/staticpods.go`
# renewCertsByComponent: etcd's server, peer and healthcheck client; the API server's serving
# cert, its kubelet client, front-proxy client and etcd client; the kubeconfigs of the
# controller manager and scheduler), then admin.conf and super-admin.conf (StaticPodControlPlane).
RENEWED = {
    "pki/etcd/server.crt",
    "pki/etcd/peer.crt",
    "pki/etcd/healthcheck-client.crt",
    "pki/apiserver.crt",
    "pki/apiserver-kubelet-client.crt",
    "pki/front-proxy-client.crt",
    "pki/apiserver-etcd-client.crt",
    "controller-manager.conf",
    "scheduler.conf",
    "admin.conf",
    "super-admin.conf",
}


@pytest.fixture(scope="module")
def upgrade(
    example_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgrade]:
    work = tmp_path_factory.mktemp("kubeadm-upgrade-apply")
    with founded_cluster(previous_minor_program(example_values), work) as plane:
        plan = new_kubeadm(plane, ["upgrade", "plan", RELEASE, IGNORE_HOST_CHECKS])
        apply = ["upgrade", "apply", RELEASE, "--yes", "--patches", KUBEADM_PATCHES]
        yield upgrade_with(plane, [*apply, IGNORE_HOST_CHECKS], earlier=[plan])


def test_kubeadm_upgrade_apply_exits_0(upgrade: Upgrade) -> None:
    assert upgrade.run.returncode == 0, upgrade.run.report()
    assert (
        f'[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "{RELEASE}"'
        in upgrade.run.stdout
    )


def _plan_rows(stdout: str) -> set[tuple[str, ...]]:
    """The COMPONENT NODE CURRENT TARGET rows of `kubeadm upgrade plan`'s tables (kubernetes
    `cmd/kubeadm/app/cmd/upgrade/plan.go` printUpgradePlan, a tabwriter)."""
    return {tuple(line.split()) for line in stdout.splitlines() if len(line.split()) == 4}


def test_kubeadm_upgrade_plan_says_the_upgrade(upgrade: Upgrade) -> None:
    """`kubeadm upgrade plan v1.36.3` on the v1.35.8 cluster the program founded: every
    component of the init controller from the previous minor to the new one, etcd to the new
    minor's, the kubelet left for the node's own upgrade, and the command to run."""
    (plan,) = upgrade.earlier
    assert plan.returncode == 0, plan.report()
    rows = _plan_rows(plan.stdout)
    node = upgrade.node
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"):
        assert (name, node, BEFORE, RELEASE) in rows, plan.stdout
    assert ("etcd", node, ETCD_BEFORE, ETCD_AFTER) in rows, plan.stdout
    assert f"\tkubeadm upgrade apply {RELEASE}\n" in plan.stdout


def test_the_manifests_name_the_new_release(upgrade: Upgrade) -> None:
    for name in KUBE_COMPONENTS:
        assert image(upgrade.manifests_before[name]).endswith(f":{BEFORE}")
        assert image(upgrade.manifests_after[name]).endswith(f":{RELEASE}")


def test_the_api_server_runs_the_new_release(upgrade: Upgrade) -> None:
    version = json.loads(upgrade.plane.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == RELEASE


def test_every_component_was_restarted_on_the_new_binary(upgrade: Upgrade) -> None:
    # etcd too, on the etcd of the new minor (test_etcd_moves_to_the_new_minors_release).
    assert restart_problems(upgrade) == []


def test_kubeadm_config_names_the_new_release(upgrade: Upgrade) -> None:
    assert cluster_configuration(upgrade.plane)["kubernetesVersion"] == RELEASE


def test_the_upgrade_renews_the_control_planes_certificates_and_no_other(upgrade: Upgrade) -> None:
    before, after = upgrade.certificates_before, upgrade.certificates_after
    assert sorted(before) == sorted(after)
    renewed = {name for name in after if after[name].serial != before[name].serial}
    assert renewed == RENEWED
    for name in renewed:
        assert after[name].not_after > before[name].not_after
    # The CAs, the service-account key's pair and the kubelet's own kubeconfig stay.
    assert {"pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "kubelet.conf"} <= set(
        after
    ) - renewed


def test_etcd_moves_to_the_new_minors_release(upgrade: Upgrade) -> None:
    """kubeadm v1.36.3 upgrades etcd to the one it names for 1.36 (--etcd-upgrade, its default:
    `cmd/kubeadm/app/phases/upgrade/staticpods.go` performEtcdStaticPodUpgrade writes the new
    image when the running manifest's is older). The stand-in runs one etcd binary for both
    tags (control_plane.kubelet_standin), so what is proven is kubeadm's manifest and its wait
    for the restarted member, not a data migration between etcd patches."""
    assert image(upgrade.manifests_before["etcd"]) == f"registry.k8s.io/etcd:{ETCD_BEFORE}"
    assert image(upgrade.manifests_after["etcd"]) == f"registry.k8s.io/etcd:{ETCD_AFTER}"


def test_etcd_keeps_the_programsselinux_level(upgrade: Upgrade) -> None:
    assert selinux_level(upgrade.manifests_before["etcd"]) == ETCD_SELINUX_LEVEL
    assert selinux_level(upgrade.manifests_after["etcd"]) == ETCD_SELINUX_LEVEL


def test_objects_written_before_are_still_served(upgrade: Upgrade) -> None:
    data = upgrade.plane.kubectl("get", "configmap", OBJECT_NAME, "-o", "jsonpath={.data.written}")
    assert data.stdout == "before"
