"""Refuse, before any resource is registered, an update that would take too much of the cluster.

The rules are pure (stackconfig/removal.py, stackconfig/upgrade_rules.py, and
stackconfig/cluster_facts.py for what only the running cluster can tell); this applies them to
the stack's previous outputs and the cluster's facts, which the program reads at its start
(components/previous.py, components/cluster_facts.py), and stops the program with one line per
problem, every problem at once, as a bad stack config does (components/config.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from stackconfig import StackConfig
from stackconfig.cluster_facts import ClusterFacts, cluster_upgrade_problems
from stackconfig.removal import stack_removal_problems
from stackconfig.upgrade_rules import previous_release, stack_upgrade_problems


def refuse_unsafe_removals(
    stack: StackConfig, previous_outputs: Mapping[str, Any], facts: ClusterFacts | None = None
) -> None:
    problems = stack_removal_problems(previous_outputs, stack)
    problems += stack_upgrade_problems(previous_outputs, stack)
    if facts is not None:
        recorded = previous_release(previous_outputs)
        problems += cluster_upgrade_problems(facts, recorded, stack.cluster.kubernetes_release)
    if problems:
        raise pulumi.RunError(
            "refusing this update of the machines:\n" + "\n".join(str(p) for p in problems)
        )
