"""The engine lab's stand-in upgrade service (tests/engine/upgrade_service.py) against a
recording kubectl: it answers as the real service (ignition/files/upgrade/stubernetes-upgrade)
reports, once per attempt, and only the asks the upgrade step makes."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

from engine.upgrade_service import UpgradeServices, ignition_kubelet_release


class Cluster:
    """One Node's kubelet version and its upgrade ConfigMap, as kubectl sees them."""

    def __init__(self, kubelet: str, data: dict[str, str]) -> None:
        self.kubelet = kubelet
        self.data = data
        self.calls: list[tuple[str, ...]] = []

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        out = ""
        if args[:2] == ("get", "configmaps"):
            item = {"metadata": {"name": "stubernetes-upgrade-c2"}, "data": dict(self.data)}
            out = json.dumps({"items": [item]})
        elif args[:2] == ("get", "nodes"):
            info = {"kubeletVersion": self.kubelet}
            node = {"metadata": {"name": "c2"}, "status": {"nodeInfo": info}}
            out = json.dumps({"items": [node]})
        elif args[:3] == ("patch", "configmap", "stubernetes-upgrade-c2"):
            self.data.update(json.loads(args[-1])["data"])
        elif args[:3] == ("patch", "node", "c2"):
            assert "--subresource=status" in args
            self.kubelet = json.loads(args[-1])["status"]["nodeInfo"]["kubeletVersion"]
        else:
            raise AssertionError(args)
        return subprocess.CompletedProcess(list(args), 0, out, "")


def services(cluster: Cluster) -> tuple[UpgradeServices, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    found = UpgradeServices(
        cluster.kubectl, lambda: ["c2"], records.append, lambda _: lambda _: None, threading.Event()
    )
    return found, records


ASK = {"release": "1.36.4", "attempt": "a1", "kubeadm_upgrade": "node", "state": "asked"}


def test_a_newer_release_is_upgraded_through_the_real_services_states() -> None:
    cluster = Cluster("v1.36.3", dict(ASK))
    upgrade, records = services(cluster)
    upgrade.poll()
    assert [r["state"] for r in records] == [
        "downloading",
        "kubeadm upgrade node",
        "restarting the kubelet",
        "done",
    ]
    assert cluster.kubelet == "v1.36.4"
    assert (cluster.data["state"], cluster.data["version"]) == ("done", "1.36.4")
    calls = len(cluster.calls)
    upgrade.poll()
    assert len(cluster.calls) == calls + 2, "an attempt answered is not taken up again"


def test_a_fault_fails_the_kubeadm_upgrade_with_the_real_services_error_until_cleared() -> None:
    cluster = Cluster("v1.36.3", dict(ASK))
    upgrade, records = services(cluster)
    upgrade.set_fault("c2", "error execution phase kubelet-config: boom")
    upgrade.poll()
    assert cluster.data["state"] == "failed" and cluster.kubelet == "v1.36.3"
    assert (
        cluster.data["error"]
        == "kubeadm upgrade node failed: error execution phase kubelet-config: boom"
    )
    assert upgrade.set_fault("c2", None) == {}
    upgrade.poll()
    assert cluster.data["state"] == "failed", "the failed attempt runs again only when asked again"
    cluster.data["attempt"] = "a2"
    upgrade.poll()
    assert cluster.data["state"] == "done" and cluster.kubelet == "v1.36.4"
    assert [r["attempt"] for r in records][-1] == "a2"


def test_an_ask_without_an_attempt_and_a_kwok_version_are_left_alone() -> None:
    for kubelet, data in (
        ("v1.36.3", {"release": "1.36.4", "state": "asked"}),
        ("kwok-v0.8.0", dict(ASK)),
    ):
        cluster = Cluster(kubelet, data)
        upgrade, records = services(cluster)
        upgrade.poll()
        assert records == [] and cluster.kubelet == kubelet


def test_the_running_release_is_done_and_an_older_one_refused() -> None:
    cluster = Cluster("v1.36.4", dict(ASK))
    upgrade, records = services(cluster)
    upgrade.poll()
    assert [r["state"] for r in records] == ["done"]
    cluster = Cluster("v1.36.5", dict(ASK))
    upgrade, records = services(cluster)
    upgrade.poll()
    assert cluster.data["error"] == "refusing 1.36.4: this machine runs 1.36.5, never downgraded"


def test_the_release_an_ignition_installs_is_its_kubelet_downloads() -> None:
    upstream = "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet"
    cached = "http://127.0.0.1:8080/assets/kubernetes/v1.36.4/bin/linux/amd64/kubelet"
    kubeadm = "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm"
    assert ignition_kubelet_release({"/usr/local/bin/kubelet": upstream}) == "1.36.3"
    assert ignition_kubelet_release({"/usr/local/bin/kubelet": cached}) == "1.36.4"
    assert ignition_kubelet_release({"/usr/local/bin/kubeadm": kubeadm}) is None
