"""Reading the stack's own previous outputs survives the file backend saving its checkpoint.

The real engine showed it (CI, test_engine_stack.py test 2, the first `up`): the program's
`pulumi:pulumi:readStackOutputs` invoke failed with "failed to load checkpoint: EOF" while the
engine saved the checkpoint for the stack resource the program had just registered. The cause is
upstream: gocloud.dev `blob/fileblob/attrs.go` `setAttrs` truncates the blob's `.attrs` sidecar
(os.Create) before it encodes into it, and `getAttrs`, on every read, decodes that file, so a read
in between decodes nothing (io.EOF); pulumi/pulumi `pkg/backend/diy/state.go`
getSnapshotStackOutputs wraps it as "failed to load checkpoint". The checkpoint itself is
replaced by os.Rename (fileblob.go `writer.Close`), so the next read sees a whole file.
The race lasts microseconds and cannot be provoked on purpose, so these tests drive
read_previous_outputs with an invoke that fails the way the engine did.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import previous

ENGINE_ERROR = (
    "invoke of pulumi:pulumi:readStackOutputs failed: invocation of "
    "pulumi:pulumi:readStackOutputs returned an error: failed to load checkpoint: EOF"
)


class Answer:
    value: Any

    def __init__(self, value: Any) -> None:
        self.value = value


class FlakyInvoke:
    """Fails `failures` times with `error`, then answers with `outputs`."""

    def __init__(self, failures: int, error: str, outputs: dict[str, Any]) -> None:
        self.failures = failures
        self.error = error
        self.outputs = outputs
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, token: str, args: dict[str, Any]) -> Answer:
        self.calls.append((token, args))
        if len(self.calls) <= self.failures:
            raise Exception(self.error)
        return Answer({"outputs": self.outputs})


@pytest.fixture(autouse=True)
def stack_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(previous, "own_stack_name", lambda: "organization/stubernetes/lab")


def test_a_read_that_meets_the_checkpoint_being_saved_is_tried_again() -> None:
    invoke = FlakyInvoke(3, ENGINE_ERROR, {"clusterExists": True})
    pauses: list[float] = []
    outputs = previous.read_previous_outputs(invoke, pauses.append)
    assert outputs == {"clusterExists": True}
    assert len(invoke.calls) == 4
    assert invoke.calls[0] == (
        previous.READ_STACK_OUTPUTS,
        {"name": "organization/stubernetes/lab"},
    )
    assert pauses == [previous.READ_RETRY_SECONDS] * 3


def test_any_other_error_stops_the_program_at_once() -> None:
    invoke = FlakyInvoke(1, "unknown stack organization/stubernetes/lab", {})
    with pytest.raises(Exception, match="unknown stack"):
        previous.read_previous_outputs(invoke, lambda _: None)
    assert len(invoke.calls) == 1


def test_a_race_that_never_ends_stops_the_program() -> None:
    invoke = FlakyInvoke(previous.READ_ATTEMPTS, ENGINE_ERROR, {})
    with pytest.raises(Exception, match="failed to load checkpoint"):
        previous.read_previous_outputs(invoke, lambda _: None)
    assert len(invoke.calls) == previous.READ_ATTEMPTS
