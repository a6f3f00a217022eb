"""Two costs of the program's run under mocks that buy the offline run nothing, turned off for
that run alone (stubernetes/program_run.py `run_under_mocks`); what it registers is unchanged.
The render's work after the run keeps full collections off too (stubernetes/render.py).

At 500 machines (8,500 resources) they were a third of `stubernetes check`'s time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pulumi.runtime.resource as sdk_resource
from pulumi.runtime.proto import source_pb2

# The SDK keeps every resource, its Outputs and their tasks until the run ends (a resource is
# held by its parent's `_childResources`: pulumi/pulumi sdk/python lib/pulumi/resource.py), so
# the heap only grows during a run, and CPython starts a full collection each time it grew by a
# quarter (python/devguide garbage_collector.rst, "Collecting the oldest generation"): at 500
# machines, 17 of them walked the whole heap for a third of the run's time and freed 6,620
# objects of 1.9 million. With these thresholds no full collection starts during a run; the
# young collections, fewer and larger, still free the cycles made and dropped along the way
# (1.7 million objects).
RUN_GC_THRESHOLD = (10_000, 50, 1_000)


@contextmanager
def no_full_collections() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(*RUN_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK records, for every resource, the Python stack that created it, each frame's
    source line read and its file turned into a URI (`_get_stack_trace` in pulumi/pulumi
    sdk/python lib/pulumi/runtime/resource.py), for the engine to show where a resource was
    made. The mocks never read it: each resource gets an empty trace instead, as the SDK itself
    sends when it finds no frame of the program's."""
    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is None:  # an SDK without it: nothing to spare
        yield
        return
    setattr(sdk_resource, "_get_stack_trace", source_pb2.StackTrace)  # noqa: B010
    try:
        yield
    finally:
        setattr(sdk_resource, "_get_stack_trace", original)  # noqa: B010


@contextmanager
def tuned_for_mocks() -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(no_full_collections())
        stack.enter_context(_no_source_positions())
        yield
