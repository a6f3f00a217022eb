"""What the running cluster says at the program's start (stackconfig/cluster_facts.py, read by
components/cluster_facts.py through the command provider's `local:run` invoke): the refusals
that need the cluster, and the etcd backups' line in `pulumi preview` and `pulumi up`.

The script itself runs against the real API server in tests/real/test_cluster_facts_real.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from program_stacks import sized_stack
from test_reinstall import SECRET_KEYS
from test_upgrade_plan import recorded_outputs, with_version

from stackconfig.cluster_facts import (
    ClusterFacts,
    UpgradeAsk,
    cluster_upgrade_problems,
    parse_cluster_facts,
    snapshot_line,
)
from stubernetes.mocks import RecordingMonitor, StandInMocks
from stubernetes.program_run import ProgramRun, run_program

SNAPSHOT = {
    "name": "lab-etcd-20261206T120000Z-r266.db.gpg",
    "time": "2026-12-06T12:00:00Z",
    "size": 40123,
    "dbSize": 290816,
    "revision": 266,
    "keys": 812,
    "destination": "s3://backups/lab",
}
NOW = datetime(2026, 12, 6, 13, 30, tzinfo=UTC)


def facts_text(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def test_the_scripts_output_is_read_line_by_line() -> None:
    facts = parse_cluster_facts(
        facts_text(
            "reachable\tyes",
            "kubelet\tc1\tv1.36.4",
            "kubelet\tw1\tv1.36.3",
            "kubelet\tkwok-0\tkwok-v0.8.0",  # kwok's Nodes run no kubelet: left out
            "upgrade\tstubernetes-upgrade-w1\t1.36.4\tkubeadm-installed",
            "upgrade\tstubernetes-upgrade-c1\t\t",  # never asked: left out
            "backup\t" + json.dumps(SNAPSHOT),
        )
    )
    assert facts == ClusterFacts(
        reachable=True,
        kubelets={"c1": "1.36.4", "w1": "1.36.3"},
        upgrades={"w1": UpgradeAsk("1.36.4", "kubeadm-installed")},
        last_snapshot=SNAPSHOT,
    )


def test_no_output_is_no_facts_and_an_unreachable_cluster_is_a_fact() -> None:
    assert parse_cluster_facts("") is None
    assert parse_cluster_facts("reachable\tno\tdial tcp 192.168.10.5:6443: i/o timeout\n") == (
        ClusterFacts(reachable=False, error="dial tcp 192.168.10.5:6443: i/o timeout")
    )


def problems(facts: ClusterFacts, recorded: str | None, release: str) -> list[str]:
    return [str(p) for p in cluster_upgrade_problems(facts, recorded, release)]


def asked(release: str, state: str) -> ClusterFacts:
    return ClusterFacts(reachable=True, upgrades={"w1": UpgradeAsk(release, state)})


def test_a_bump_while_an_upgrade_is_unfinished_is_refused_naming_the_machine() -> None:
    assert problems(asked("1.36.4", "kubeadm-installed"), "1.36.3", "1.36.5") == [
        "cluster: field 'kubernetesVersion': an upgrade to 1.36.4 is unfinished (machine w1: "
        "kubeadm-installed); set kubernetesVersion to 1.36.4 and finish it with `pulumi up` "
        "before asking 1.36.5 (kubernetes.io/docs/tasks/administer-cluster/kubeadm/"
        "kubeadm-upgrade/)"
    ]


@pytest.mark.parametrize(
    ("ask", "recorded", "release"),
    [
        (asked("1.36.4", "failed"), "1.36.3", "1.36.4"),  # the same release: the rollout resumes
        (asked("1.36.4", "done"), "1.36.3", "1.36.5"),  # that machine finished
        (asked("1.36.3", "asked"), "1.36.4", "1.36.5"),  # history: an update that completed
    ],
)
def test_what_is_not_an_unfinished_upgrade(ask: ClusterFacts, recorded: str, release: str) -> None:
    assert problems(ask, recorded, release) == []


def test_a_release_older_than_a_running_kubelet_is_refused() -> None:
    facts = ClusterFacts(reachable=True, kubelets={"w1": "1.36.4", "w2": "1.36.3"})
    assert problems(facts, "1.36.3", "1.36.3") == [
        "cluster: field 'kubernetesVersion': 1.36.3 is older than the kubelet of w1 (1.36.4); a "
        "kubelet must not be newer than the API server (kubernetes.io/releases/"
        "version-skew-policy/ ('kubelet'))"
    ]
    assert problems(facts, "1.36.3", "1.36.4") == []


def test_the_backups_line() -> None:
    fresh = ClusterFacts(reachable=True, last_snapshot=SNAPSHOT)
    assert snapshot_line(fresh, 6 * 3600, NOW) == (
        "etcd backups: last good snapshot lab-etcd-20261206T120000Z-r266.db.gpg taken "
        "2026-12-06T12:00:00Z (90 min ago), revision 266, 40123 bytes encrypted, at "
        "s3://backups/lab",
        False,
    )
    stale, warn = snapshot_line(fresh, 1800, NOW)
    assert warn and stale.endswith("older than two intervals: check the controllers' backup timers")
    assert snapshot_line(ClusterFacts(reachable=True), 3600, NOW) == (
        "etcd backups: no snapshot recorded yet (kube-system/stubernetes-etcd-backup)",
        True,
    )
    assert snapshot_line(ClusterFacts(reachable=False, error="refused"), 3600, NOW) == (
        "etcd backups: the cluster did not answer (refused)",
        True,
    )


def run(values: dict[str, Any], previous: dict[str, Any] | None, facts: str) -> RecordingMonitor:
    monitor = RecordingMonitor(
        StandInMocks("stubernetes", previous_outputs=previous, cluster_facts=facts)
    )
    run_program(values, SECRET_KEYS, monitor=monitor)
    return monitor


@pytest.fixture(scope="module")
def installed(example_values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    values = with_version(sized_stack(example_values, 1, 2), "1.35.8")
    first: ProgramRun = run_program(
        values,
        SECRET_KEYS,
        monitor=RecordingMonitor(StandInMocks("stubernetes")),
    )
    # The secret outputs are left out of a render's outputs; the engine gives them back.
    previous = {**recorded_outputs(first), "kubeconfig": "apiVersion: v1\nkind: Config\n"}
    assert previous["clusterExists"] is True
    return values, previous


def test_under_mocks_an_unfinished_upgrade_stops_the_program_before_any_resource(
    installed: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    values, previous = installed
    monitor = RecordingMonitor(
        StandInMocks(
            "stubernetes",
            previous_outputs=previous,
            cluster_facts=facts_text(
                "reachable\tyes", "upgrade\tstubernetes-upgrade-w1\t1.36.3\tasked"
            ),
        )
    )
    with pytest.raises(Exception, match=r"an upgrade to 1\.36\.3 is unfinished \(machine w1"):
        run_program(with_version(values, "1.36.4"), SECRET_KEYS, monitor=monitor)
    assert [r.type for r in monitor.registrations if r.custom] == []


def test_under_mocks_the_last_snapshot_is_said(
    installed: tuple[dict[str, Any], dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    values, previous = installed
    with_backups = {**values, "backups": {"interval": "6h", "keep": 3}}
    facts = facts_text("reachable\tyes", "backup\t" + json.dumps(SNAPSHOT))
    with caplog.at_level(logging.INFO):
        run(with_backups, previous, facts)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("etcd backups:")]
    assert len(said) == 1
    assert "last good snapshot lab-etcd-20261206T120000Z-r266.db.gpg" in said[0]


def test_a_new_stack_asks_no_cluster(
    example_values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    values = {**sized_stack(example_values, 1, 1), "backups": {"interval": "6h", "keep": 3}}
    with caplog.at_level(logging.INFO):
        # Whatever a cluster would say, a new stack has none to ask: nothing is said of it.
        run(values, None, facts_text("reachable\tyes", "backup\t" + json.dumps(SNAPSHOT)))
    assert not [r for r in caplog.records if r.getMessage().startswith("etcd backups:")]
