"""The machine's side of a Kubernetes upgrade (ignition/files/upgrade/stubernetes-upgrade), run
unchanged against stand-ins (tests/host/upgrade_standins.py says what each models).

What it must do, from kubeadm's upgrade guide (kubernetes.io/docs/tasks/administer-cluster/
kubeadm/kubeadm-upgrade/): the new kubeadm first, then `kubeadm upgrade apply v<release>` on the
first controller or `kubeadm upgrade node` elsewhere, then the new kubelet and kubectl, then a
restart of the kubelet. A kubeadm upgrade killed before it finished may run again (kubeadm
documents the command as idempotent, "Recovering from a failure state"); one that finished must
not, and nothing runs a binary whose sha256 is not the one asked for.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from upgrade_standins import KILLED, NEW, OLD, UpgradeWorld


def upgraded(world: UpgradeWorld) -> None:
    assert world.version("kubelet") == NEW
    assert world.version("kubectl") == NEW
    assert world.version("kubeadm") == NEW
    assert world.configmap()["state"] == "done"
    assert world.configmap()["version"] == NEW
    assert f"restart kubelet.service Kubernetes v{NEW}" in world.lines("systemctl.log")
    assert "phase=done" in (world.state / "upgrade.state").read_text().splitlines()


def kubeadm_upgrades(world: UpgradeWorld) -> list[str]:
    return world.lines("kubeadm.log")


def test_an_ask_is_carried_out_in_kubeadms_order(tmp_path: Path) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask(how="apply")
    result = world.run()
    assert result.returncode == 0, result.stderr
    upgraded(world)
    # The new kubeadm ran the upgrade (its version in the log), before the kubelet restarted.
    assert kubeadm_upgrades(world) == [f"{NEW} upgrade apply v{NEW} --yes"]
    calls = [line.split(" ", 2)[1:] for line in world.lines("calls.log")]
    kubeadm_at = calls.index(["kubeadm", f"upgrade apply v{NEW} --yes"])
    restart_at = calls.index(["systemctl", "restart kubelet.service"])
    assert kubeadm_at < restart_at
    # Nothing runs again once done: the next run only reads the ask.
    before = world.calls()
    assert world.run().returncode == 0
    assert kubeadm_upgrades(world) == [f"{NEW} upgrade apply v{NEW} --yes"]
    assert [line.split(" ")[1] for line in world.lines("calls.log")[before:]] == [
        "kubectl",
        "kubelet",
        "kubectl",
    ]


def test_a_controller_gives_kubeadm_its_patches_again(tmp_path: Path) -> None:
    # kubeadm writes the manifests anew and keeps no patches directory in the cluster: without
    # --patches an upgrade drops etcd's SELinux level
    # (tests/real/test_kubeadm_upgrade_apply_real.py).
    world = UpgradeWorld.make(tmp_path)
    (tmp_path / "kubeadm-patches").mkdir()
    world.ask(how="apply")
    assert world.run().returncode == 0
    upgraded(world)
    patches = tmp_path / "kubeadm-patches"
    assert kubeadm_upgrades(world) == [f"{NEW} upgrade apply v{NEW} --yes --patches {patches}"]


def test_a_worker_runs_kubeadm_upgrade_node(tmp_path: Path) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask(how="node")
    assert world.run().returncode == 0
    upgraded(world)
    assert kubeadm_upgrades(world) == [f"{NEW} upgrade node"]


def full_run_calls() -> list[str]:
    """The stand-ins an uninterrupted upgrade calls, in order."""
    with tempfile.TemporaryDirectory() as root:
        world = UpgradeWorld.make(Path(root))
        world.ask()
        assert world.run().returncode == 0
        return [line.split(" ")[1] for line in world.lines("calls.log")]


FULL_RUN = full_run_calls()
CALLS = len(FULL_RUN)


@pytest.mark.parametrize("kill_when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, CALLS + 1))
def test_a_kill_at_any_call_converges_and_kubeadm_runs_again_only_if_killed_itself(
    tmp_path: Path, kill_at: int, kill_when: str
) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask()
    killed = world.run(kill_at=kill_at, kill_when=kill_when)
    assert killed.returncode == KILLED
    killed_call = world.lines("calls.log")[kill_at - 1].split(" ", 2)[1:]
    # As after a reboot: the timer runs the service again, until it has nothing left to do.
    for _ in range(3):
        result = world.run()
        assert result.returncode == 0, result.stderr
        if world.configmap().get("state") == "done":
            break
    upgraded(world)
    runs = kubeadm_upgrades(world)
    if killed_call[0] == "kubeadm" and kill_when == "after":
        # Killed after kubeadm finished, before the state said so: run again, as kubeadm
        # allows; never a third time.
        assert runs == [f"{NEW} upgrade apply v{NEW} --yes"] * 2
    else:
        assert runs == [f"{NEW} upgrade apply v{NEW} --yes"]


def test_a_failed_kubeadm_upgrade_waits_for_a_new_ask_and_resumes_without_downloading(
    tmp_path: Path,
) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask(attempt="a1")
    (world.world / "kubeadm.fail").touch()
    assert world.run().returncode == 1
    assert world.configmap()["state"] == "failed"
    assert "kubeadm upgrade apply v1.36.4 failed" in world.configmap()["error"]
    assert "told to fail" in world.configmap()["error"]
    assert world.version("kubelet") == OLD
    # The same ask: nothing runs again.
    (world.world / "kubeadm.fail").unlink()
    assert world.run().returncode == 0
    assert kubeadm_upgrades(world) == []
    # A new ask (the step run again): on from the last finished phase; nothing downloaded again.
    world.ask(attempt="a2")
    before = len(world.lines("calls.log"))
    assert world.run().returncode == 0
    upgraded(world)
    assert not [c for c in world.lines("calls.log")[before:] if c.split(" ")[1] == "curl"]


def test_a_binary_with_another_digest_is_never_installed(tmp_path: Path) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask()
    world.install(world.world / "served" / "kubeadm", b"#!/bin/sh\necho tampered\n")
    assert world.run().returncode == 1
    assert (
        "kubeadm from https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm: sha256 is not"
        in (world.configmap()["error"])
    )
    assert (world.version("kubeadm"), world.version("kubelet")) == (OLD, OLD)
    assert kubeadm_upgrades(world) == []


def test_a_release_it_runs_already_is_done_at_once(tmp_path: Path) -> None:
    """A machine installed at the release (its Ignition) has nothing to upgrade."""
    world = UpgradeWorld.make(tmp_path, running=NEW)
    world.ask()
    assert world.run().returncode == 0
    assert world.configmap()["state"] == "done"
    assert kubeadm_upgrades(world) == [] and world.lines("systemctl.log") == []


def test_an_older_release_is_refused(tmp_path: Path) -> None:
    world = UpgradeWorld.make(tmp_path, running=NEW, served=OLD)
    world.ask(release=OLD)
    assert world.run().returncode == 1
    assert world.configmap()["state"] == "failed"
    assert "never downgraded" in world.configmap()["error"]
    assert world.version("kubelet") == NEW and kubeadm_upgrades(world) == []


def test_another_release_while_one_is_half_done_is_refused(tmp_path: Path) -> None:
    world = UpgradeWorld.make(tmp_path)
    world.ask(attempt="a1")
    # Killed right after kubeadm's upgrade was recorded: the control plane is at 1.36.4, the
    # kubelet not yet.
    calls = [line.split(" ")[1] for line in world.lines("calls.log")]
    assert calls == []
    first = world.run(kill_at=CALLS - 3, kill_when="after")
    assert first.returncode == KILLED
    assert (
        "phase=upgraded" in (world.state / "upgrade.state").read_text()
        or "phase=installed" in (world.state / "upgrade.state").read_text()
    )
    world.install(world.world / "served" / "kubelet", world.bin.joinpath("kubelet").read_bytes())
    world.ask(release="1.36.5", attempt="a2")
    assert world.run().returncode == 1
    assert world.configmap()["error"].startswith("the upgrade to 1.36.4 is unfinished")
    assert kubeadm_upgrades(world) == [f"{NEW} upgrade apply v{NEW} --yes"]
