"""What the running cluster says of itself, and the rules that need it.

components/scripts/cluster-facts reads it at the program's start (components/cluster_facts.py):
the kubelet version of every Node, the release each machine's upgrade ConfigMap last asked and
the state its upgrade service answered, and the etcd backup's last good snapshot. Plain text in,
plain data and problems out.

The stack's own history (the output `kubernetesRelease`, stackconfig/upgrade_rules.py) says
which release the last completed update left the cluster at; only the cluster can say that a
rollout began after it and did not finish, or that a kubelet already runs a newer release:
- a bump while an upgrade is unfinished: a machine that was asked for a release other than the
  recorded one (the update that asked it did not complete) must get that release, or the
  rollout must be finished first; asking a third release would leave machines on three
  releases, which kubeadm's one-minor-at-a-time rule and the skew policy do not cover
  (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/);
- no kubelet newer than the API server: "kubelet must not be newer than kube-apiserver"
  (kubernetes.io/releases/version-skew-policy/, "kubelet"), so the stack's release may not be
  older than any Node's kubelet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackconfig.problems import Problem
from stackconfig.upgrade_rules import FIELD, KUBELET_SKEW_SOURCE, WHERE, release_key

UNFINISHED_SOURCE = "kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/"
# A kubelet reports v<major>.<minor>.<patch>[-pre] (kubernetes pkg/kubelet/nodestatus/setters.go
# VersionInfo); a Node's agent that reports anything else (kwok's simulated Nodes) runs no
# kubelet the rules apply to.
KUBELET_VERSION = re.compile(r"^v?(\d+\.\d+\.\d+)")
# What the upgrade step asks (components/scripts/upgrade-machine RELEASE): an exact release.
RELEASE = re.compile(r"\d+\.\d+\.\d+")
# The upgrade ConfigMaps' names (ignition/upgrade.py upgrade_configmap).
UPGRADE_PREFIX = "stubernetes-upgrade-"


@dataclass(frozen=True)
class UpgradeAsk:
    release: str
    state: str


@dataclass(frozen=True)
class ClusterFacts:
    reachable: bool
    error: str = ""
    kubelets: dict[str, str] = field(default_factory=dict)
    """Node name -> the release its kubelet runs (Nodes without a kubelet release left out)."""
    upgrades: dict[str, UpgradeAsk] = field(default_factory=dict)
    """Machine -> what its upgrade step last asked (machines never asked left out)."""
    last_snapshot: dict[str, Any] | None = None
    """The etcd backup's last-good.json, as the backup wrote it."""


def parse_cluster_facts(text: str) -> ClusterFacts | None:
    """The script's output; None when it said nothing (it did not run: an offline render)."""
    reachable: bool | None = None
    error = ""
    kubelets: dict[str, str] = {}
    upgrades: dict[str, UpgradeAsk] = {}
    last_snapshot: dict[str, Any] | None = None
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "reachable":
            reachable = fields[0] == "yes"
            error = fields[1] if len(fields) > 1 else ""
        elif kind == "kubelet" and len(fields) == 2:
            version = KUBELET_VERSION.match(fields[1])
            if version:
                kubelets[fields[0]] = version.group(1)
        elif kind == "upgrade" and len(fields) == 3 and fields[0].startswith(UPGRADE_PREFIX):
            if RELEASE.fullmatch(fields[1]):
                upgrades[fields[0].removeprefix(UPGRADE_PREFIX)] = UpgradeAsk(*fields[1:])
        elif kind == "backup":
            try:
                value = json.loads(rest)
            except json.JSONDecodeError:
                continue
            last_snapshot = value if isinstance(value, dict) else None
    if reachable is None:
        return None
    return ClusterFacts(reachable, error, kubelets, upgrades, last_snapshot)


def cluster_upgrade_problems(
    facts: ClusterFacts, recorded: str | None, release: str
) -> list[Problem]:
    """The refusals for asking `release` of a cluster whose last completed update recorded
    `recorded`, given what the cluster says."""
    problems: list[Problem] = []
    unfinished = sorted(
        (machine, ask)
        for machine, ask in facts.upgrades.items()
        if _unfinished(ask, recorded) and ask.release != release
    )
    for machine, ask in unfinished:
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"an upgrade to {ask.release} is unfinished (machine {machine}: "
                f"{ask.state or 'asked'}); set {FIELD} to {ask.release} and finish it with "
                f"`pulumi up` before asking {release} ({UNFINISHED_SOURCE})",
            )
        )
    newer = sorted(
        (node, running)
        for node, running in facts.kubelets.items()
        if release_key(running) > release_key(release)
    )
    for node, running in newer:
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"{release} is older than the kubelet of {node} ({running}); a kubelet must "
                f"not be newer than the API server ({KUBELET_SKEW_SOURCE})",
            )
        )
    return problems


def _unfinished(ask: UpgradeAsk, recorded: str | None) -> bool:
    """Asked by an update that did not complete (newer than what the last completed one
    recorded) and not yet done. An ask at or below the recorded release is history: that update
    completed (a machine reinstalled mid-upgrade keeps its ConfigMap's old ask)."""
    if ask.state == "done":
        return False
    return recorded is None or release_key(ask.release) > release_key(recorded)


def snapshot_line(facts: ClusterFacts, interval_seconds: int, now: datetime) -> tuple[str, bool]:
    """What `pulumi up` says of the backups, and whether it is a warning: none yet, or the last
    one older than two intervals (a snapshot missed)."""
    if not facts.reachable:
        return f"etcd backups: the cluster did not answer ({facts.error})", True
    last = facts.last_snapshot
    if last is None:
        return "etcd backups: no snapshot recorded yet (kube-system/stubernetes-etcd-backup)", True
    taken = str(last.get("time", ""))
    try:
        age = (now - datetime.fromisoformat(taken.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return f"etcd backups: the last snapshot's time is unreadable: {taken!r}", True
    text = (
        f"etcd backups: last good snapshot {last.get('name')} taken {taken}"
        f" ({_age(age)} ago), revision {last.get('revision')}, {last.get('size')} bytes"
        f" encrypted, at {last.get('destination')}"
    )
    if age > 2 * interval_seconds:
        return f"{text}; older than two intervals: check the controllers' backup timers", True
    return text, False


def _age(seconds: float) -> str:
    minutes = max(0, int(seconds)) // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"
