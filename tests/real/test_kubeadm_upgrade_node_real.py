"""The real `kubeadm upgrade node` on a controller: the command line every controller after the
first runs, `kubeadm upgrade node --patches /etc/stubernetes/kubeadm-patches`
(ignition/files/upgrade/stubernetes-upgrade).

A controller after the first finds the cluster's configuration at the new release (the first
controller's `kubeadm upgrade apply` uploaded it) and its own static Pods still at the old one.
`upgrade node` reads the ClusterConfiguration from the cluster (kubernetes
`cmd/kubeadm/app/cmd/upgrade/node.go` newNodeData), upgrades this machine's static Pods with
the code apply uses (`cmd/kubeadm/app/cmd/phases/upgrade/node/controlplane.go` runControlPlane
-> `upgrade.PerformStaticPodUpgrade`), then the kubelet's configuration, and the addons once no
control-plane instance is left on an older API server (`cmd/kubeadm/app/cmd/phases/upgrade/
addons.go`, `cmd/kubeadm/app/phases/upgrade/postupgrade.go` UnupgradedControlPlaneInstances).

That state is made here on the one controller of the founded cluster (control_plane.upgrade
founded_cluster, v1.35.8): the new kubeadm's `upgrade apply v1.36.3` runs with this machine's
own phases skipped (`--skip-phases control-plane,kubeconfig,kubelet-config,addon`), so it
uploads the new configuration, the bootstrap-token rules and the post-upgrade changes, what the
first controller's apply leaves the cluster; then `kubeadm upgrade node` runs on it.

What stays unproven: a second etcd member and API server beside the first (two controllers would
need two network namespaces and two kubelet stand-ins here), so etcd's majority through a
rolling upgrade rests on kubeadm restarting one member at a time, one machine after the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from control_plane.cluster import ControlPlane
from control_plane.upgrade import (
    BEFORE,
    ETCD_AFTER,
    IGNORE_HOST_CHECKS,
    KUBE_COMPONENTS,
    RELEASE,
    Upgrade,
    cluster_configuration,
    founded_cluster,
    image,
    manifests,
    new_kubeadm,
    previous_minor_program,
    restart_problems,
    selinux_level,
    upgrade_with,
)

from ignition.kubeadm import ETCD_SELINUX_LEVEL, KUBEADM_PATCHES

pytestmark = pytest.mark.real

# The machine's own phases of `kubeadm upgrade apply` (`cmd/kubeadm/app/cmd/upgrade/apply.go`
# newCmdApply: preflight, control-plane, upload-config, kubeconfig, kubelet-config,
# bootstrap-token, addon, post-upgrade), skipped to leave the cluster as the first controller's
# apply leaves it for the others.
MACHINE_PHASES = "control-plane,kubeconfig,kubelet-config,addon"
# The CoreDNS image each kubeadm installs (`cmd/kubeadm/app/constants/constants.go`
# CoreDNSVersion: v1.13.1 in v1.35.8, v1.14.2 in v1.36.3).
COREDNS_BEFORE = "registry.k8s.io/coredns/coredns:v1.13.1"
COREDNS_AFTER = "registry.k8s.io/coredns/coredns:v1.14.2"


def _coredns_image(plane: ControlPlane) -> str:
    deployment = json.loads(
        plane.kubectl("-n", "kube-system", "get", "deployment", "coredns", "-o", "json").stdout
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


@pytest.fixture(scope="module")
def upgrade(
    example_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgrade]:
    work = tmp_path_factory.mktemp("kubeadm-upgrade-node")
    with founded_cluster(previous_minor_program(example_values), work) as plane:
        before = manifests(plane.root)
        first = new_kubeadm(
            plane,
            ["upgrade", "apply", RELEASE, "--yes", f"--skip-phases={MACHINE_PHASES}",
             IGNORE_HOST_CHECKS],
            timeout=600,
        )  # fmt: skip
        # What the test of the cluster-wide apply reads: the machine untouched, CoreDNS old.
        untouched = manifests(plane.root) == before
        coredns = _coredns_image(plane)
        (plane.work / "after-first-apply.json").write_text(
            json.dumps({"untouched": untouched, "coredns": coredns})
        )
        yield upgrade_with(
            plane,
            ["upgrade", "node", "--patches", KUBEADM_PATCHES, IGNORE_HOST_CHECKS],
            earlier=[first],
        )


def test_the_first_controllers_apply_leaves_this_machine_as_it_was(upgrade: Upgrade) -> None:
    (first,) = upgrade.earlier
    assert first.returncode == 0, first.report()
    state = json.loads((upgrade.plane.work / "after-first-apply.json").read_text())
    assert state == {"untouched": True, "coredns": COREDNS_BEFORE}
    for name in KUBE_COMPONENTS:
        assert image(upgrade.manifests_before[name]).endswith(f":{BEFORE}")
    # The configuration every later controller reads, at the new release.
    assert cluster_configuration(upgrade.plane)["kubernetesVersion"] == RELEASE


def test_kubeadm_upgrade_node_upgrades_this_controller(upgrade: Upgrade) -> None:
    run = upgrade.run
    assert run.returncode == 0, run.report()
    assert (
        f"[upgrade/control-plane] Upgrading your Static Pod-hosted control plane instance to "
        f'version "{RELEASE}"...' in run.stdout
    )
    assert (
        "[upgrade/control-plane] The control plane instance for this node was successfully "
        "upgraded!" in run.stdout
    )
    assert (
        "[upgrade/kubelet-config] The kubelet configuration for this node was successfully "
        "upgraded!" in run.stdout
    )


def test_the_manifests_name_the_new_release_and_keep_the_patches(upgrade: Upgrade) -> None:
    for name in KUBE_COMPONENTS:
        assert image(upgrade.manifests_after[name]).endswith(f":{RELEASE}")
    assert image(upgrade.manifests_after["etcd"]) == f"registry.k8s.io/etcd:{ETCD_AFTER}"
    # --patches: the program's SELinux level on etcd, which no cluster object keeps.
    assert selinux_level(upgrade.manifests_after["etcd"]) == ETCD_SELINUX_LEVEL


def test_every_component_was_restarted_on_the_new_binary(upgrade: Upgrade) -> None:
    assert restart_problems(upgrade) == []
    version = json.loads(upgrade.plane.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == RELEASE


def test_the_last_controller_upgrades_the_addons(upgrade: Upgrade) -> None:
    """No control-plane instance is left on the old API server, so `upgrade node` applies the
    new release's CoreDNS and kube-proxy."""
    assert "[addons] Applied essential addon: CoreDNS" in upgrade.run.stdout
    assert _coredns_image(upgrade.plane) == COREDNS_AFTER


def test_its_control_plane_certificates_are_renewed(upgrade: Upgrade) -> None:
    """PerformStaticPodUpgrade renews each component's certificates as it upgrades it, as in
    apply (test_kubeadm_upgrade_apply_real RENEWED, without admin.conf and super-admin.conf,
    which only apply renews)."""
    before, after = upgrade.certificates_before, upgrade.certificates_after
    renewed = {name for name in after if after[name].serial != before[name].serial}
    assert {"pki/apiserver.crt", "pki/etcd/server.crt", "controller-manager.conf"} <= renewed
    assert not {"pki/ca.crt", "pki/etcd/ca.crt", "kubelet.conf"} & renewed
