"""A sequence of checks run in a thread beside other work, with the outcome of checking first."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


@contextmanager
def checked_beside(
    check: Callable[[str, bytes], None], items: Sequence[tuple[str, bytes]]
) -> Iterator[None]:
    """`check(name, data)` for each item in order, in a thread while the block runs, stopping
    at the first that raises. Its error is raised after the block, ahead of any error the block
    raised: the outcome is that of checking every item before the block. Worth it when each
    check waits on a process of its own (ignition-validate), which runs on another core
    meanwhile."""
    stop = threading.Event()
    failures: list[Exception] = []

    def run() -> None:
        for name, data in items:
            if stop.is_set():
                return
            try:
                check(name, data)
            except Exception as error:
                failures.append(error)
                return

    thread = threading.Thread(target=run, name="checked-beside", daemon=True)
    thread.start()
    try:
        yield
    except Exception:
        thread.join()
        if failures:
            raise failures[0] from None
        raise
    except BaseException:  # an interrupt: no more checks
        stop.set()
        thread.join()
        raise
    thread.join()
    if failures:
        raise failures[0]
