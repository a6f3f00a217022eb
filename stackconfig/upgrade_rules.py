"""Which changes of the Kubernetes release an update must refuse, from the stack's last update.

The release the cluster last ran is what the last update that completed recorded (the stack
output `kubernetesRelease`, exported by components/program.py and read back at the program's
start as every previous output is: components/previous.py). A failed update records nothing, so
after a rollout that stopped half-way the recorded release is still the old one, and running
the same update again finishes it.

Plain data in, problems out, one per rule, each naming the rule's upstream source:
- one minor at a time: kubeadm upgrades "from one MINOR version to the next MINOR version, or
  between PATCH versions of the same MINOR", "skipping MINOR versions when upgrading is
  unsupported" (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/), and
  kube-apiserver instances may be at most one minor apart
  (kubernetes.io/releases/version-skew-policy/, "kube-apiserver");
- no downgrade: kubeadm's upgrade guide documents upgrades only (kubeadm-upgrade), and the
  stacked etcd's stored data goes back a minor only through etcd's own downgrade procedure
  (etcd.io/docs/v3.6/downgrades/); kubeadm itself would try one minor back
  (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go,
  MaximumAllowedMinorVersionDowngradeSkew), which this program never asks of it;
- no bump while the controllers change: the stacked etcd members are the controllers
  (stackconfig/removal.py), kubeadm upgrades "one control plane node at a time" of a fixed set
  (kubeadm-upgrade, "Upgrade control plane nodes"), and a controller that joins mid-rollout
  would join with the new release while the others run the old one; add or remove
  controllers in an update of their own;
- no bump while a worker joins: a worker added or reinstalled boots the stack's release from its
  Ignition and may join before the controllers run it, and "kubelet must not be newer than
  kube-apiserver" (kubernetes.io/releases/version-skew-policy/, "kubelet"); a worker removed
  is no such problem. A rollout is one update: until it completes, the recorded release is the
  old one and the same rule refuses a reinstall in the update that resumes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.model import Machine, StackConfig
from stackconfig.problems import Problem
from stackconfig.removal import PreviousMachine, previous_machines

# The stack output: the exact release ("1.36.4") of the last update that completed.
KUBERNETES_RELEASE_OUTPUT = "kubernetesRelease"
WHERE = "cluster"
FIELD = "kubernetesVersion"

SKEW_SOURCE = (
    "kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/ and "
    "kubernetes.io/releases/version-skew-policy/"
)
DOWNGRADE_SOURCE = (
    "kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/ documents upgrades "
    "only; etcd.io/docs/v3.6/downgrades/"
)
KUBELET_SKEW_SOURCE = "kubernetes.io/releases/version-skew-policy/ ('kubelet')"
MEMBERSHIP_SOURCE = (
    "kubeadm-upgrade, 'Upgrade control plane nodes'; etcd.io/docs/v3.6/op-guide/"
    "runtime-configuration/"
)


def release_key(release: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in release.split("."))
    return major, minor, patch


def previous_release(outputs: Mapping[str, Any]) -> str | None:
    """The release the last completed update recorded; None for a new stack (or one whose last
    update predates the output), or a value that is not a release."""
    value = outputs.get(KUBERNETES_RELEASE_OUTPUT)
    if not isinstance(value, str):
        return None
    try:
        release_key(value)
    except ValueError:
        return None
    return value


def changed_controllers(outputs: Mapping[str, Any], stack: StackConfig) -> list[str]:
    """The controllers added, removed or reinstalled since the last update, by name: each one
    an etcd member that leaves or joins."""
    before = {m.name: m for m in previous_machines(outputs) if m.is_controller}
    now = {m.name: m for m in stack.controllers}
    changed = set(before) ^ set(now)
    changed |= {name for name in set(before) & set(now) if _reinstalled(before[name], now[name])}
    return sorted(changed)


def _reinstalled(before: PreviousMachine, now: Machine) -> bool:
    """A machine of the last update whose generation the stack has changed since."""
    return before.generation is not None and before.generation != now.generation


def joining_workers(outputs: Mapping[str, Any], stack: StackConfig) -> list[str]:
    """The workers added or reinstalled since the last update, by name: each one boots the
    stack's release from its Ignition and joins with it."""
    previous = previous_machines(outputs)
    if not previous:
        return []
    before = {m.name: m for m in previous if not m.is_controller}
    return sorted(
        m.name
        for m in stack.machines
        if not m.is_controller and (m.name not in before or _reinstalled(before[m.name], m))
    )


def release_problems(
    running: str | None,
    wanted: str,
    controllers_changed: list[str],
    workers_joining: list[str] | None = None,
) -> list[Problem]:
    """The refusals of going from `running` (None: unknown) to `wanted`."""
    if running is None or running == wanted:
        return []
    (old_major, old_minor, _), (new_major, new_minor, _) = release_key(running), release_key(wanted)
    problems: list[Problem] = []
    if release_key(wanted) < release_key(running):
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"{wanted} is older than {running}, which the cluster runs: Kubernetes is "
                f"never downgraded ({DOWNGRADE_SOURCE})",
            )
        )
    elif (new_major, new_minor) != (old_major, old_minor) and (
        new_major != old_major or new_minor != old_minor + 1
    ):
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"{running} to {wanted} skips a minor: upgrade one minor at a time, first to "
                f"{old_major}.{old_minor + 1} ({SKEW_SOURCE})",
            )
        )
    if controllers_changed:
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"{running} to {wanted} in the same update as a change of the controllers ("
                + ", ".join(controllers_changed)
                + " added, removed or reinstalled): change the release and the controllers in "
                f"separate updates ({MEMBERSHIP_SOURCE})",
            )
        )
    if workers_joining:
        problems.append(
            Problem(
                WHERE,
                FIELD,
                f"{running} to {wanted} in the same update as a worker joining ("
                + ", ".join(workers_joining)
                + " added or reinstalled): it would join with "
                f"{wanted} before the controllers run it, and a kubelet must not be newer than "
                f"the API server; add or reinstall it in an update of its own, before or after "
                f"the upgrade ({KUBELET_SKEW_SOURCE})",
            )
        )
    return problems


def stack_upgrade_problems(outputs: Mapping[str, Any], stack: StackConfig) -> list[Problem]:
    """The refusals for applying `stack` to a stack whose last update output `outputs`."""
    return release_problems(
        previous_release(outputs),
        stack.cluster.kubernetes_release,
        changed_controllers(outputs, stack),
        joining_workers(outputs, stack),
    )
