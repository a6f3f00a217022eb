"""What the stack knew at the end of its last successful update: its own previous outputs.

A machine's install steps must know whether that machine ever joined the cluster (a reinstall
must not take an unanswered question for a first install), and refusals (removing controllers)
must be decided before any resource is registered; only the stack's own history can say either.
The program reads its own outputs once, at its start, through the engine's builtin invoke
`pulumi:pulumi:readStackOutputs` (pulumi/pulumi `pkg/resource/deploy/builtins.go`, the invoke
behind a StackReference; the Node.js SDK's `StackReference` calls it synchronously in
`sdk/nodejs/stackReference.ts`). The engine answers from the stack's last checkpoint, which
holds the outputs the program last registered, in an update that failed too (the real engine
kept a plain `kubernetesRelease` of a rollout that stopped half-way: tests/engine/
test_engine_stack.py 5f). The program registers its outputs in one call, once every one of them
is known (the SDK awaits them all), and the outputs the rules read wait on the steps they speak
for (`installed` on each machine's rejoin, `kubernetesRelease` on each machine's upgrade), so an
update in which such a step failed registers none, and the checkpoint keeps those of the last
update in which every step finished; a new stack has none. So they are plain values: a decision
made from them is known at preview and the same at every run of an unchanged stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.runtime import rpc

# The stack output that lists the machines that joined, with the install anchor that did it.
INSTALLED_OUTPUT = "installed"
# The stack output that says, for each machine in INSTALLED_OUTPUT, whether that install was a
# reinstall over an earlier one (what its clean step was told).
REINSTALLED_OUTPUT = "installedOverEarlier"

# The stack output that says the cluster's API server answered (the API gate passed) during an
# update that completed: from the next update on, nobody founds the cluster again and no
# Ignition carries its CA keys.
CLUSTER_EXISTS_OUTPUT = "clusterExists"

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"


def own_stack_name() -> str:
    organization = pulumi.get_organization() or "organization"
    return f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}"


def unwrap_secrets(value: Any) -> Any:
    """A value as the wire carries it with every secret marker removed, at any depth. The
    program decides from the previous outputs unwrapped so and never exports them again as
    they are; the mocks (stubernetes/mocks.py) read registered inputs the same way."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


# The diy (file) backend can fail this read while the engine saves the checkpoint, which it does
# as the program starts (the stack resource registers): gocloud.dev `blob/fileblob/attrs.go`
# `setAttrs` truncates the checkpoint's `.attrs` sidecar with os.Create before writing it, and
# `getAttrs`, which every read goes through, then decodes an empty file: "failed to load
# checkpoint: EOF" (pulumi/pulumi `pkg/backend/diy/state.go` getSnapshotStackOutputs). The
# checkpoint itself is replaced by a rename, so a read a moment later sees a whole one.
CHECKPOINT_RACE = "failed to load checkpoint"
READ_ATTEMPTS = 20
READ_RETRY_SECONDS = 0.1


def read_previous_outputs(
    invoke: Callable[[str, dict[str, Any]], Any] = pulumi.runtime.invoke,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The outputs of this stack's last completed update ({} for a new stack). A read that
    meets the checkpoint being saved (CHECKPOINT_RACE) is tried again; any other error, or
    the race READ_ATTEMPTS times in a row, stops the program."""
    arguments = {"name": own_stack_name()}
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            result = invoke(READ_STACK_OUTPUTS, arguments)
            break
        except Exception as error:
            if CHECKPOINT_RACE not in str(error) or attempt == READ_ATTEMPTS:
                raise
            sleep(READ_RETRY_SECONDS)
    value = unwrap_secrets(result.value) if result.value is not None else {}
    outputs = value.get("outputs") if isinstance(value, Mapping) else None
    return dict(outputs) if isinstance(outputs, Mapping) else {}


class PreviousState:
    """The stack's previous outputs, read once per program run, as plain values."""

    def __init__(self, outputs: Mapping[str, Any] | None = None) -> None:
        self.outputs: Mapping[str, Any] = (
            read_previous_outputs() if outputs is None else dict(outputs)
        )

    def output(self, name: str) -> Any | None:
        return self.outputs.get(name)

    @property
    def cluster_exists(self) -> bool:
        """Whether the cluster answered during an earlier update that completed."""
        return self.output(CLUSTER_EXISTS_OUTPUT) is True

    def _mapping(self, name: str) -> Mapping[str, Any]:
        value = self.outputs.get(name)
        return value if isinstance(value, Mapping) else {}

    def installed_before(self, machine: str, anchor_hex: pulumi.Output[str]) -> pulumi.Output[str]:
        """'true' when the install anchored by `anchor_hex` is a reinstall: `machine` had joined
        the cluster with an earlier install by the end of an earlier update.

        Stable per install: once this install has finished, the stack records its anchor in
        INSTALLED_OUTPUT and this answer in REINSTALLED_OUTPUT, and a later run of the same
        install (same anchor) gets the recorded answer back, so an unchanged stack passes the
        same value to the install's steps as the update that ran them.
        """
        installed = self._mapping(INSTALLED_OUTPUT)
        reinstalled = self._mapping(REINSTALLED_OUTPUT)

        def answer(anchor: str) -> str:
            if installed.get(machine) == anchor:
                return str(reinstalled.get(machine) is True).lower()
            return str(machine in installed).lower()

        return anchor_hex.apply(answer)
