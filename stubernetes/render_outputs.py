"""A render's stack outputs, and an earlier render's outputs as the previous state of a later one.

`render` writes the program's stack outputs to `outputs.json`, secrets left out (the admin
kubeconfigs). A later render into the same folder reads them back as the stack's previous
outputs, what the engine's `pulumi:pulumi:readStackOutputs` would answer after an update that
applied the earlier render (components/previous.py): so the refusals an update would meet
(stackconfig/removal.py: the last controller, etcd's majority, the init controller before the
cluster answered) are checked offline, and a refused render leaves the earlier one as it was.

One output is not taken back: `clusterExists`. Under the mocks every gate "passes", so every
render records it, and a render that took it back would show the second founding stage
(components/previous.py, ignition.kubeadm.founds_cluster) whenever it is run twice into the
same folder. A render shows the stage `--cluster-exists` asks for, so the same stack renders
byte for byte the same, wherever it is rendered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

from components.previous import CLUSTER_EXISTS_OUTPUT
from stackconfig import StackConfig
from stackconfig.removal import stack_removal_problems
from stackconfig.upgrade_rules import stack_upgrade_problems
from stubernetes.output import RENDER_MARKER

OUTPUTS_FILE = Path("outputs.json")


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        kept = sorted((k, v) for k, v in value.items() if not rpc.is_rpc_secret(v))
        return {k: _without_secrets(v) for k, v in kept}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value if not rpc.is_rpc_secret(v)]
    # The wire holds numbers as doubles: a generation is 1, not 1.0, as in resources.json.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def outputs_document(stack_outputs: Mapping[str, Any]) -> bytes:
    """The stack outputs as JSON, every secret output (or secret part of one) left out."""
    plain = _without_secrets(dict(stack_outputs))
    return (json.dumps(plain, indent=2, sort_keys=True) + "\n").encode()


def previous_outputs(out: Path) -> dict[str, Any] | None:
    """The outputs an earlier render wrote into `out`, or None when `out` holds none."""
    path = out / OUTPUTS_FILE
    if not (out / RENDER_MARKER).is_file() or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not an earlier render's outputs ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not an earlier render's outputs (not a JSON object)")
    document.pop(CLUSTER_EXISTS_OUTPUT, None)
    return document


def refusals(stack: StackConfig, previous: Mapping[str, Any] | None) -> list[str]:
    """What an update from the earlier render's state to `stack` would refuse, one per line."""
    if previous is None:
        return []
    problems = stack_removal_problems(previous, stack) + stack_upgrade_problems(previous, stack)
    return [str(problem) for problem in problems]
