"""stubernetes.checked_beside: checks in a thread beside the render, with the outcome of running
them first (render runs ignition-validate this way while it builds the machines' trees)."""

from __future__ import annotations

import threading

import pytest

from stubernetes.checked_beside import checked_beside

ITEMS = [("a", b"1"), ("b", b"2"), ("c", b"3")]


def test_every_item_is_checked_in_order_beside_the_block() -> None:
    seen: list[str] = []
    threads: set[str] = set()

    def check(name: str, data: bytes) -> None:
        seen.append(f"{name}={data.decode()}")
        threads.add(threading.current_thread().name)

    with checked_beside(check, ITEMS):
        pass
    assert seen == ["a=1", "b=2", "c=3"]
    assert threading.current_thread().name not in threads


def test_the_first_refusal_stops_the_checks_and_is_raised_after_the_block() -> None:
    seen: list[str] = []
    ran: list[str] = []

    def check(name: str, data: bytes) -> None:
        seen.append(name)
        if name == "b":
            raise ValueError(f"{name}: refused")

    with pytest.raises(ValueError, match=r"^b: refused$"), checked_beside(check, ITEMS):
        ran.append("block")
    assert seen == ["a", "b"]
    assert ran == ["block"]


def test_a_refusal_comes_before_an_error_of_the_block() -> None:
    """As when every item was checked before the block: the block's error is not reached."""

    def check(name: str, data: bytes) -> None:
        raise ValueError(f"{name}: refused")

    with pytest.raises(ValueError, match=r"^a: refused$"), checked_beside(check, ITEMS):
        raise OSError("the block failed")


def test_the_block_s_error_stands_when_every_item_passes() -> None:
    seen: list[str] = []

    def check(name: str, data: bytes) -> None:
        seen.append(name)

    with pytest.raises(OSError, match="the block failed"), checked_beside(check, ITEMS):
        raise OSError("the block failed")
    assert seen == ["a", "b", "c"]
