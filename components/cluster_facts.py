"""Read the running cluster once, at the program's start, for the refusals that need it
(components/removals.py) and to say how the etcd backups stand.

The reading is the command provider's `local:run` invoke, which runs "on any preview or
deployment" (pulumi/pulumi-command `provider/pkg/provider/local/runController.go`, Run.Invoke:
the command runs and a non-zero exit fails the invoke), so `pulumi preview` refuses what
`pulumi up` would refuse, before any resource is registered. It runs only for a cluster that
an earlier completed update found answering, with that update's admin kubeconfig (the stack's
previous outputs: components/previous.py): a new stack has no cluster to ask. The script never
fails (components/scripts/cluster-facts); the rules are pure (stackconfig/cluster_facts.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pulumi
import pulumi_command as command

from components.previous import PreviousState
from stackconfig import StackConfig
from stackconfig.cluster_facts import ClusterFacts, parse_cluster_facts, snapshot_line

# Relative to the project directory, as every local command's script (components/gates.py).
FACTS_SCRIPT = "components/scripts/cluster-facts"


def read_cluster_facts(previous: PreviousState) -> ClusterFacts | None:
    """What the cluster says (None: no cluster yet, or nothing read, as in an offline render)."""
    kubeconfig = previous.output("kubeconfig")
    if not previous.cluster_exists or not isinstance(kubeconfig, str):
        return None
    result = command.local.run(
        command=f"bash {FACTS_SCRIPT}",
        environment={"KUBECONFIG_CONTENT": kubeconfig},
        # Nothing streamed: the program says what matters in one line of its own.
        logging=command.local.Logging.NONE,
        add_previous_output_in_env=False,
    )
    return parse_cluster_facts(result.stdout or "")


def say_backups(stack: StackConfig, facts: ClusterFacts | None) -> None:
    """The etcd backups' state, in `pulumi preview` and `pulumi up`, for a stack with backups
    whose cluster was read."""
    if facts is None or stack.backups is None:
        return
    line, warn = snapshot_line(facts, stack.backups.interval_seconds, datetime.now(UTC))
    (pulumi.log.warn if warn else pulumi.log.info)(line)
