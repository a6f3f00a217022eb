"""SELinux stays enforcing: the setup labels the host directories confined containers use
before kubeadm runs, and etcd keeps a fixed level (sim_machine, standin_selinux).
"""

from __future__ import annotations

import pytest
from setup_harness import SIMULATED, MachineFactory, assert_done, describe
from sim_crash import invariant_violations
from sim_machine import CallRecord, SimMachine

from ignition.node import SetupPolicy

pytest_plugins = ["sim_fixtures"]

pytestmark = SIMULATED

# Fedora CoreOS enforces SELinux, and containerd (`enable_selinux = true`) runs a container
# that is not privileged as container_t, whatever its host namespaces (standin_selinux.py), which
# may use a host directory only if it is labelled for containers: an unprivileged pod cannot
# write a host path without that label (flannel-io/flannel#1202: flannel, container_t, denied
# write on /run/flannel, container_var_run_t; fine as a privileged container, which is how the
# pod network runs). kubeadm's etcd is such a pod: denied write on /var/lib/etcd, var_lib_t
# (kubernetes/kubeadm#279), and on container_var_lib_t (kubernetes/kubernetes#49328); its
# install docs only say to set SELinux permissive, "required to allow containers to access the
# host filesystem" (kubernetes/website install-kubeadm.md). container-selinux's container.fc
# labels neither /var/lib/etcd nor OpenEBS's directory for containers (/var/lib/kubelet is
# container_var_lib_t, /etc/kubernetes kubernetes_file_t, which no container domain may read in
# container.te; Typhoon's Fedora CoreOS controllers `chcon -R -t container_file_t` their PKI).
# The stand-in kubeadm fails a control plane whose /etc/kubernetes/pki or /var/lib/etcd is not
# container_file_t, with the audit records the journal would show.


def label_calls(machine: SimMachine) -> list[CallRecord]:
    return [c for c in machine.calls() if c.key == "chcon"]


@pytest.mark.parametrize("name", ["c2", "w1"], ids=["controller", "worker"])
def test_host_paths_are_labelled_for_containers_before_kubeadm(
    make_machine: MachineFactory, name: str
) -> None:
    machine = make_machine(name)
    machine.boot_until_settled()
    assert_done(machine)
    calls = machine.calls()
    kubeadm = next(c for c in calls if c.key == "kubeadm join")
    labels = label_calls(machine)
    assert labels and all(c.seq < kubeadm.seq for c in labels)
    assert all(c.argv[:6] == ["chcon", "-R", "-t", "container_file_t", "-l", "s0"] for c in labels)
    expected = ["/var/openebs/local"]
    if name == "c2":
        expected = ["/etc/kubernetes", "/var/lib/etcd", *expected]
    assert [c.argv[6] for c in labels] == expected
    selinux = machine.state()["selinux"]
    assert selinux["labels"] == {
        path: {"type": "container_file_t", "level": "s0"} for path in expected
    }
    assert machine.file("/var/openebs/local").is_dir()
    assert machine.state()["etcd_level"] == ("s0" if name == "c2" else None)


def test_without_the_labels_the_control_plane_cannot_start(make_machine: MachineFactory) -> None:
    """The same controller with nothing to label (what a setup without this step did): its
    static pods are denied /etc/kubernetes/pki and /var/lib/etcd, and the join fails."""
    policy = SetupPolicy(max_attempts=1, backoff_base_seconds=0, backoff_max_seconds=0)
    machine = make_machine("c2", policy)
    env = machine.file("/etc/stubernetes/setup.env")
    env.write_text(
        env.read_text().replace(
            "CONTAINER_FILE_PATHS='/etc/kubernetes /var/lib/etcd /var/openebs/local'",
            "CONTAINER_FILE_PATHS=/var/openebs/local",
        )
    )
    boots = machine.boot_until_settled(max_boots=3)
    status = machine.status()
    assert status["state"] == "failed", describe(boots)
    assert "timeout waiting for etcd cluster to be available" in status["last_error"]
    journal = "".join(b.journal for b in boots)
    assert (
        'comm="etcd" name="etcd"' in journal
        and "tcontext=system_u:object_r:var_lib_t:s0" in journal
    )
    assert "tcontext=system_u:object_r:kubernetes_file_t:s0" in journal


def test_a_failing_label_step_keeps_kubeadm_from_running(make_machine: MachineFactory) -> None:
    machine = make_machine("c2")
    failing = {
        "do": "fail",
        "rc": 1,
        "stderr": ["chcon: failed to change context of '/etc/kubernetes'"],
    }
    machine.set_plan({"faults": {"chcon": [failing]}})
    boots = machine.boot_until_settled()
    assert_done(machine)
    calls = machine.calls()
    failed = next(c for c in calls if c.key == "chcon")
    assert failed.rc == 1
    kubeadm = next(c for c in calls if c.key == "kubeadm join")
    assert kubeadm.status["attempts"] == "1"  # kubeadm ran only on the attempt after it
    assert "chcon: failed to change context" in kubeadm.status["last_error"]
    assert invariant_violations(machine, boots) == []


def test_etcd_reads_its_data_after_a_reboot_only_at_a_fixed_level(
    make_machine: MachineFactory,
) -> None:
    """After a reboot the etcd static pod is a new sandbox: at its fixed level (kubeadm's patch)
    it reads what it wrote; at the categories containerd picks for each new sandbox (a config
    without the patch) it could not, and the founding controller's API server would stay down."""
    # At the fixed level: test_fresh_machine_is_done_in_one_boot boots it again.
    machine = make_machine("c1")
    machine.update_state(lambda state: state["facts"].update(etcd_selinux_level=None))
    assert machine.boot().exit_code == 0  # kubeadm init
    assert_done(machine)
    assert machine.state()["etcd_level"] == "random"
    assert machine.cluster()["api"] == "up"  # the etcd that wrote the data still runs
    machine.boot()
    assert machine.cluster()["api"] == "down"


def test_without_selinux_nothing_is_labelled(make_machine: MachineFactory) -> None:
    machine = make_machine("c2")
    machine.update_state(lambda state: state["selinux"].update(enabled=False))
    boots = machine.boot_until_settled()
    assert_done(machine)
    assert label_calls(machine) == []
    assert "SELinux is disabled: no labels to set" in boots[0].journal
