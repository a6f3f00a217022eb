"""Controllers renew their own kubeadm certificates (ignition/cert_renewal.py, the script and
units in ignition/files/renewal/), on the simulated host of tests/host/sim_machine.py: the REAL
script and units, taken out of the Ignition the REAL Ignition binary applied, run against the
stand-in kubeadm (`certs check-expiration -o jsonpath=...`, `certs renew NAME`) of
tests/host/standin_kubeadm_certs.py and the crictl (`ps`, `stop`, with the kubelet restarting a
stopped static pod's container) of tests/host/standin_runtime.py: the crictl setup unpacks from
the archive Ignition fetched, pointed at containerd's socket.

Upstream facts the design rests on, and where they come from:
- kubeadm's leaf certificates and kubeconfig client certificates last one year
  (`cmd/kubeadm/app/constants` CertificateValidityPeriod); `kubeadm upgrade` renews them per
  component (`cmd/kubeadm/app/phases/upgrade/staticpods.go` renewCertsByComponent), admin.conf
  always and super-admin.conf when it exists (StaticPodControlPlane); `kubeadm certs renew`
  renews from the local CA, keeping the SANs, and "After renewal, in order to make changes
  effective, is required to restart control-plane components" (`cmd/kubeadm/app/cmd/certs.go`).
- `check-expiration` lists admin.conf, apiserver, apiserver-etcd-client,
  apiserver-kubelet-client, controller-manager.conf, etcd-healthcheck-client, etcd-peer,
  etcd-server, front-proxy-client, scheduler.conf, super-admin.conf, sorted by name
  (`phases/certs/renewal/manager.go` Certificates), a missing one with `missing: true`
  (certs.go fetchCertificateExpirationInfo); `-o` takes json, yaml and jsonpath besides the
  table (`util/output`), which rounds its RESIDUAL TIME for people.
- `kubeadm upgrade` restarts etcd first, then kube-apiserver, kube-controller-manager,
  kube-scheduler (staticpods.go StaticPodControlPlane, constants.ControlPlaneComponents), each
  waited for before the next; the renewal keeps that order.
- The kubeadm-certs docs ("Manual certificate renewal") restart a static pod by moving its
  manifest out of /etc/kubernetes/manifests and back; this renewal stops the container with
  crictl instead, which the kubelet restarts (restartPolicy Always, the default kubeadm's
  manifests keep) with nothing changed on disk, so a machine that dies half-way keeps its
  manifests (kubespray's renewal removes the pods with crictl likewise).

Needs root (mount namespaces) and the Ignition binary, as tests/host/test_setup_service.py does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ignition_root import IGNITION_BINARY, apply_ignition, install_host_units
from real_tools import shellcheck, systemd_verify
from repo_paths import TEST_SEED
from sim_cluster import empty_cluster
from sim_machine import STANDINS, SimMachine
from sim_systemd import preset_policy
from standin_kubeadm_certs import COMPONENT_CERTS, KUBEADM_CERTS
from standin_runtime import grpc_address

from ignition.assets import read_asset
from ignition.cert_renewal import (
    RENEW_BEFORE_DAYS,
    RENEWAL_BIN,
    RENEWAL_SERVICE,
    RENEWAL_TIMER,
)
from ignition.material import ClusterMaterial, standin_bootstrap_token
from ignition.node import SetupPolicy, machine_ignition_json
from stackconfig import StackConfig

pytest_plugins = ["sim_fixtures"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root"),
    pytest.mark.skipif(not IGNITION_BINARY.exists(), reason="the Ignition binary is missing"),
]

FAST = SetupPolicy(max_attempts=4, backoff_base_seconds=0, backoff_max_seconds=1)
DAY = 86400.0
PENDING = "/var/lib/stubernetes/cert-renewal.pending"
# The restart order: kubeadm upgrade's (see the module's docstring).
ORDER = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]


def config_for(stack: StackConfig, name: str, material: ClusterMaterial) -> bytes:
    machine = stack.machine(name)
    return machine_ignition_json(
        stack, machine, material, standin_bootstrap_token(TEST_SEED, name), FAST
    )


@pytest.fixture(scope="module")
def done_controller(
    tmp_path_factory: pytest.TempPathFactory, served_stack: StackConfig, material: ClusterMaterial
) -> SimMachine:
    """The example's only controller after its setup: kubeadm init done, the done stamp there."""
    machine = SimMachine.create(
        tmp_path_factory.mktemp("c1") / "c1",
        config_for(served_stack, "c1", material),
        empty_cluster(),
    )
    boots = machine.boot_until_settled()
    assert not boots[-1].ran and machine.file("/var/lib/stubernetes/done").exists(), boots
    return machine


@pytest.fixture
def controller(done_controller: SimMachine, tmp_path: Path) -> Iterator[SimMachine]:
    yield done_controller.clone(tmp_path / "c1")


def renew_run(machine: SimMachine) -> tuple[int | None, str]:
    """One run of the service, as the timer starts it: its exit status and journal lines."""
    journal = machine.sim / "journal" / f"boot-{machine.state()['boots']}.log"
    before = len(journal.read_text()) if journal.exists() else 0
    boot = machine.start_unit(RENEWAL_SERVICE)
    assert boot.ran, boot
    assert not boot.outside_writes and not boot.hung and boot.killed is None, boot
    return boot.exit_code, journal.read_text()[before:]


def expire_in(machine: SimMachine, days: dict[str, float], default: float = 300) -> float:
    """Every certificate the machine has expires in `default` days, those named in `days`;
    returns now."""
    now = time.time()
    expiry = {name: now + default * DAY for name in KUBEADM_CERTS}
    expiry.update({name: now + d * DAY for name, d in days.items()})
    machine.set_certificate_expiry(expiry)
    return now


def renewed(machine: SimMachine, since: int = 0) -> list[str]:
    return [c.argv[3] for c in machine.calls() if c.key == "kubeadm certs renew" and c.seq > since]


def stops(machine: SimMachine, since: int = 0) -> list[str]:
    return [c.argv[-1] for c in machine.calls() if c.key == "crictl stop" and c.seq > since]


def events(machine: SimMachine) -> list[list[str]]:
    return list(machine.state().get("container_events", []))


def restarts(events_after: list[list[str]]) -> list[str]:
    return [component for what, component, _ in events_after if what == "stop"]


def assert_one_at_a_time(events_after: list[list[str]]) -> None:
    """Each stop is followed by the same component's new container before the next stop."""
    pending = None
    for what, component, _ in events_after:
        if what == "stop":
            assert pending is None, f"{component} stopped while {pending} was not back"
            pending = component
        elif pending is not None:
            assert component == pending, events_after
            pending = None
    assert pending is None, f"{pending} never came back"


# ------------------------------------------------------------------------------ the Ignition


def test_only_controllers_get_the_timer(
    served_stack: StackConfig, material: ClusterMaterial
) -> None:
    for machine in served_stack.machines:
        config = json.loads(config_for(served_stack, machine.name, material))
        units = {u["name"]: u for u in config["systemd"]["units"]}
        paths = {f["path"] for f in config["storage"]["files"]}
        assert (RENEWAL_TIMER in units) == machine.is_controller, machine.name
        assert (RENEWAL_SERVICE in units) == machine.is_controller, machine.name
        assert (RENEWAL_BIN in paths) == machine.is_controller, machine.name
        if machine.is_controller:
            # Only the timer is enabled; the service has no [Install], the timer starts it.
            assert units[RENEWAL_TIMER]["enabled"] is True
            assert "enabled" not in units[RENEWAL_SERVICE]
        assert [f["path"] for f in config["storage"]["files"]] == sorted(paths)


def test_the_script_and_units_as_written(
    tmp_path: Path, served_stack: StackConfig, material: ClusterMaterial
) -> None:
    """What the REAL Ignition writes: the timer enabled by its preset, the service conditioned
    on setup's done stamp; systemd-analyze verify and shellcheck report nothing (any output is
    a failure, as in tests/host/test_ignition_real_tools.py)."""
    root, work = tmp_path / "root", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    apply_ignition(config_for(served_stack, "c1", material), root, work)
    assert preset_policy(root, RENEWAL_TIMER) == "enable"
    timer = (root / "etc/systemd/system" / RENEWAL_TIMER).read_text().splitlines()
    for line in ("OnCalendar=daily", "Persistent=true", "RandomizedDelaySec=4h"):
        assert line in timer
    service = (root / "etc/systemd/system" / RENEWAL_SERVICE).read_text()
    assert "ConditionPathExists=/var/lib/stubernetes/done" in service.splitlines()
    assert "[Install]" not in service
    script = root / RENEWAL_BIN.lstrip("/")
    assert script.stat().st_mode & 0o777 == 0o755
    assert f"RENEW_BEFORE_DAYS={RENEW_BEFORE_DAYS}" in script.read_text().splitlines()
    assert shellcheck([script], cwd=script.parent) == ""
    install_host_units(root)
    for unit in (RENEWAL_SERVICE, RENEWAL_TIMER):
        assert systemd_verify(root, f"/etc/systemd/system/{unit}") == ""


def test_the_renewal_has_a_crictl_on_the_node(done_controller: SimMachine) -> None:
    """The commands a node has: the image's (the simulated host's stand-ins) and what setup
    unpacked into /usr/local/bin: crictl, from the archive Ignition fetched and checked (the
    Fedora CoreOS image ships no cri-tools)."""
    assert "crictl" in STANDINS or done_controller.file("/usr/local/bin/crictl").exists()


def test_the_renewal_points_crictl_at_the_runtimes_socket(done_controller: SimMachine) -> None:
    service = done_controller.file(f"/etc/systemd/system/{RENEWAL_SERVICE}").read_text()
    address = grpc_address(str(done_controller.root))
    assert f"Environment=CONTAINER_RUNTIME_ENDPOINT=unix://{address}" in service.splitlines()


def test_the_scripts_grouping_is_kubeadm_upgrades() -> None:
    """The script's component_of, run by bash: each certificate to the static pod that
    `kubeadm upgrade` renews it for (the stand-in's COMPONENT_CERTS), nothing for the rest."""
    script = read_asset(f"renewal/{Path(RENEWAL_BIN).name}")
    names = " ".join(sorted(KUBEADM_CERTS))
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'source /dev/stdin; for n in {names}; do echo "$n=$(component_of $n)"; done',
        ],
        input=script,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = {cert: component for component, certs in COMPONENT_CERTS.items() for cert in certs}
    got = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert got == {name: expected.get(name, "") for name in KUBEADM_CERTS}


# --------------------------------------------------------------------------------- the runs


def test_nothing_runs_before_setup_is_done(
    tmp_path: Path, served_stack: StackConfig, material: ClusterMaterial
) -> None:
    machine = SimMachine.create(
        tmp_path / "c1", config_for(served_stack, "c1", material), empty_cluster()
    )
    boot = machine.start_unit(RENEWAL_SERVICE)
    assert not boot.ran
    assert boot.skipped == "ConditionPathExists=/var/lib/stubernetes/done failed"
    assert machine.calls() == []


def test_nothing_renewed_far_from_expiry(controller: SimMachine) -> None:
    expire_in(controller, {"apiserver": RENEW_BEFORE_DAYS + 1})
    before = events(controller)
    status, journal = renew_run(controller)
    assert status == 0, journal
    assert renewed(controller) == [] and stops(controller) == []
    assert restarts(events(controller)[len(before) :]) == []
    assert "nothing to renew: the first to expire, apiserver, expires" in journal
    assert not controller.file(PENDING).exists()


def test_due_ones_renewed_and_their_pods_restarted(controller: SimMachine) -> None:
    now = expire_in(
        controller,
        {
            "admin.conf": 10,
            "apiserver": 30,
            "etcd-peer": RENEW_BEFORE_DAYS - 1,
            "front-proxy-client": 1,
            "scheduler.conf": RENEW_BEFORE_DAYS + 1,
        },
    )
    status, journal = renew_run(controller)
    assert status == 0, journal
    # Renewed in name order, the due ones only; admin.conf restarts nothing.
    assert renewed(controller) == ["admin.conf", "apiserver", "etcd-peer", "front-proxy-client"]
    after = events(controller)
    stopped = restarts(after)
    assert stopped == ["etcd", "kube-apiserver"]
    assert_one_at_a_time(after)
    containers = controller.state()["containers"]
    certificates = controller.state()["certificates"]
    for component in ("etcd", "kube-apiserver"):
        # Its new container loaded the certificates as they are now, the renewed ones too.
        loaded = containers[component]["loaded"]
        assert loaded == {c: certificates[c] for c in COMPONENT_CERTS[component]}, component
    assert certificates["etcd-peer"] > now + 364 * DAY
    assert certificates["apiserver"] > now + 364 * DAY
    for component in ("kube-controller-manager", "kube-scheduler"):
        assert component not in stopped
    for name in ("admin.conf", "apiserver", "etcd-peer", "front-proxy-client"):
        assert re.search(rf"{re.escape(name)}: expires \S+, within 60 days: renewing", journal)
        assert re.search(rf"{re.escape(name)}: renewed, now expires \S+", journal)
    assert "etcd: restarted (container " in journal
    assert "done: renewed 4 certificate(s)" in journal
    assert not controller.file(PENDING).exists()


def test_all_due_restart_one_at_a_time_in_upgrade_order(controller: SimMachine) -> None:
    expire_in(controller, {}, default=5)
    before = len(events(controller))
    status, journal = renew_run(controller)
    assert status == 0, journal
    present = [n for n in sorted(KUBEADM_CERTS) if controller.file(KUBEADM_CERTS[n][0]).exists()]
    # The init controller has super-admin.conf too (kubeadm init writes it).
    assert "super-admin.conf" in present
    assert renewed(controller) == present
    after = events(controller)[before:]
    assert restarts(after) == ORDER
    assert_one_at_a_time(after)


def test_failing_renew_restarts_nothing_and_the_next_run_finishes(controller: SimMachine) -> None:
    expire_in(controller, {"apiserver": 5, "etcd-server": 5, "scheduler.conf": 5})
    controller.set_plan(
        {
            "faults": {
                "kubeadm certs renew": [
                    {"do": "ok"},
                    {"do": "fail", "stderr": ["error: failed to renew etcd-server"]},
                ]
            }
        }
    )
    status, journal = renew_run(controller)
    assert status == 1, journal
    assert renewed(controller) == ["apiserver", "etcd-server"]
    assert stops(controller) == []
    assert "etcd-server: kubeadm certs renew failed (exit 1); nothing restarted" in journal
    # What the renewed apiserver certificate needs is kept for the next run.
    assert set(controller.file(PENDING).read_text().split()) == {
        "etcd",
        "kube-apiserver",
        "kube-scheduler",
    }
    controller.set_plan({})
    seq = controller.call_count()
    before = len(events(controller))
    status, journal = renew_run(controller)
    assert status == 0, journal
    # apiserver is no longer due; its component restarts all the same.
    assert renewed(controller, seq) == ["etcd-server", "scheduler.conf"]
    assert restarts(events(controller)[before:]) == ["etcd", "kube-apiserver", "kube-scheduler"]
    assert not controller.file(PENDING).exists()


def test_failing_check_exits_non_zero(controller: SimMachine) -> None:
    controller.set_plan({"faults": {"kubeadm certs check-expiration": [{"do": "fail"}]}})
    status, journal = renew_run(controller)
    assert status == 1
    assert "kubeadm certs check-expiration failed" in journal
    assert renewed(controller) == [] and stops(controller) == []


def test_killed_mid_restart_the_next_run_restarts_the_rest(controller: SimMachine) -> None:
    """A power cut while the second component restarts: the next run restarts what is left,
    and renews nothing again."""
    expire_in(controller, {}, default=5)
    controller.set_plan({"faults": {"crictl stop": [{"do": "ok"}, {"do": "kill"}]}})
    boot = controller.start_unit(RENEWAL_SERVICE)
    assert boot.killed is not None
    assert controller.file(PENDING).read_text().split() == ORDER[1:]
    controller.set_plan({})
    seq = controller.call_count()
    before = len(events(controller))
    status, journal = renew_run(controller)
    assert status == 0, journal
    assert renewed(controller, seq) == []
    assert restarts(events(controller)[before:]) == ORDER[1:]
    assert f"still to restart from an earlier run: {' '.join(ORDER[1:])}" in journal


def test_a_second_run_does_nothing(controller: SimMachine) -> None:
    expire_in(controller, {"apiserver": 5, "controller-manager.conf": 5})
    status, journal = renew_run(controller)
    assert status == 0, journal
    assert restarts(events(controller)) == ["kube-apiserver", "kube-controller-manager"]
    seq = controller.call_count()
    state = controller.state()
    status, journal = renew_run(controller)
    assert status == 0, journal
    assert renewed(controller, seq) == [] and stops(controller, seq) == []
    assert controller.state()["containers"] == state["containers"]
    assert "nothing to renew" in journal
