"""The refusals of removals and reinstalls, from the last update's outputs (stackconfig/removal.py).

etcd processes a membership change only while a majority of its members work, calls removing a
member from a two-member cluster unsafe, and asks for one member at a time
(etcd.io/docs/v3.6/op-guide/runtime-configuration/): at least a majority of the last update's
controllers must stay untouched through one update.
"""

from __future__ import annotations

from typing import Any

import pytest
from program_stacks import sized_stack

from stackconfig import parse_stack_config
from stackconfig.removal import (
    CurrentMachine,
    PreviousMachine,
    previous_machines,
    removal_problems,
    stack_removal_problems,
)


def cluster(controllers: int, workers: int = 1, installed: bool = True) -> list[PreviousMachine]:
    machines = [
        PreviousMachine(f"c{i + 1}", "controller", 1, i == 0, installed) for i in range(controllers)
    ]
    return machines + [
        PreviousMachine(f"w{i + 1}", "worker", 1, False, installed) for i in range(workers)
    ]


def now(
    previous: list[PreviousMachine], *, drop: tuple[str, ...] = (), bump: tuple[str, ...] = ()
) -> list[CurrentMachine]:
    return [
        CurrentMachine(m.name, m.role, 2 if m.name in bump else 1)
        for m in previous
        if m.name not in drop
    ]


def lines(
    previous: list[PreviousMachine], current: list[CurrentMachine], answered: bool = True
) -> list[str]:
    return [str(p) for p in removal_problems(previous, current, answered)]


def test_a_new_stack_and_an_unchanged_one_are_not_refused() -> None:
    assert removal_problems([], now(cluster(1))) == []
    assert lines(cluster(3, 2), now(cluster(3, 2))) == []


@pytest.mark.parametrize("workers", [("w1",), ("w1", "w2", "w3")])
def test_workers_may_all_go_at_once(workers: tuple[str, ...]) -> None:
    assert lines(cluster(1, 3), now(cluster(1, 3), drop=workers)) == []


def test_removing_the_last_controller_is_refused() -> None:
    previous = cluster(1)
    current = [*now(previous, drop=("c1",)), CurrentMachine("c9", "controller", 1)]
    (line,) = lines(previous, current)
    assert line.startswith("machine 'c1': removing the last controller of the cluster")


def test_replacing_every_controller_in_one_update_names_each() -> None:
    previous = cluster(2)
    current = [*now(previous, drop=("c1", "c2")), CurrentMachine("c9", "controller", 1)]
    found = lines(previous, current)
    assert [line.split(":")[0] for line in found] == ["machine 'c1'", "machine 'c2'"]
    assert all("removing the last controller" in line for line in found)


@pytest.mark.parametrize(
    ("controllers", "drop", "bump", "refused"),
    [
        (3, ("c3",), (), False),  # 2 of 3 stay
        (3, ("c3",), ("c2",), True),  # 1 of 3
        (3, (), ("c2", "c3"), True),  # two reinstalls at once
        (3, (), ("c2",), False),
        (2, ("c2",), (), True),  # a two-member etcd: unsafe to remove one
        (2, (), ("c2",), True),
        (5, ("c4", "c5"), (), False),  # 3 of 5 stay
        (5, ("c5",), ("c3", "c4"), True),
        (4, ("c4",), (), False),  # 3 of 4, majority 3
        (4, ("c4",), ("c3",), True),
    ],
)
def test_a_majority_of_the_last_controllers_stays_untouched(
    controllers: int, drop: tuple[str, ...], bump: tuple[str, ...], refused: bool
) -> None:
    previous = cluster(controllers)
    found = lines(previous, now(previous, drop=drop, bump=bump))
    if not refused:
        assert found == []
        return
    going = [m for m in (f"c{i + 1}" for i in range(controllers)) if m in drop or m in bump]
    assert [line.split(":")[0] for line in found] == [f"machine '{m}'" for m in going]
    kept, majority = controllers - len(going), controllers // 2 + 1
    for line in found:
        assert (
            f"taking {', '.join(going)} out of etcd in one update leaves {kept} of the "
            f"{controllers} controllers"
        ) in line
        assert f"fewer than etcd's majority of {majority}" in line
    for name in bump:
        assert any(
            line.startswith(f"machine '{name}': field 'generation': reinstalled: taking")
            for line in found
        )


def test_the_only_controllers_reinstall_is_left_to_the_rebuild_rule() -> None:
    previous = cluster(1)
    assert lines(previous, now(previous, bump=("c1",))) == []


def test_a_controller_turned_worker_counts_as_removed() -> None:
    previous = cluster(2)
    current = [CurrentMachine("c1", "controller", 1), CurrentMachine("c2", "worker", 1)]
    majority, role = lines(previous, current)
    assert majority.startswith(
        "machine 'c2': removed: taking c2 out of etcd in one update leaves 1 of"
    )
    assert role.startswith("machine 'c2': field 'role': changing a machine's role in place")


@pytest.mark.parametrize("generation", [1, 2])
def test_a_role_changes_only_by_removing_and_adding_the_machine(generation: int) -> None:
    """Whatever the generation: the clean and removal steps remove an etcd member only for a
    controller (components/scripts/clean-before-rejoin, remove-machine), and kubeadm makes a
    control-plane node only at `kubeadm join --control-plane` (kubeadm join docs)."""
    previous = cluster(3, 2)
    current = now(previous)
    current[2] = CurrentMachine("c3", "worker", generation)
    current[3] = CurrentMachine("w1", "controller", generation)
    found = lines(previous, current)
    assert found == [
        "machine 'c3': field 'role': changing a machine's role in place (controller to worker): "
        "nothing turns a running controller into a worker, and a controller's etcd member would "
        "stay; remove the machine in one update and add it back in the next",
        "machine 'w1': field 'role': changing a machine's role in place (worker to controller): "
        "nothing turns a running worker into a controller, and a controller's etcd member would "
        "stay; remove the machine in one update and add it back in the next",
    ]


def test_the_init_controller_is_not_removed_before_the_cluster_answered() -> None:
    previous = cluster(3, installed=False)
    found = lines(previous, now(previous, drop=("c1",)), answered=False)
    assert found == [
        "machine 'c1': removing the init controller before the cluster ever answered: it alone "
        "founds the cluster (kubeadm init) and no other machine has joined it yet; let the first "
        "pulumi up finish, or remove every machine with pulumi destroy"
    ]
    # Once it answered, the init controller is a controller like any other.
    assert lines(previous, now(previous, drop=("c1",)), answered=True) == []
    installed = [*cluster(3)[:1], *previous[1:]]
    assert lines(installed, now(installed, drop=("c1",)), answered=False) == []


def test_every_problem_in_one_run() -> None:
    previous = cluster(1, installed=False)
    current = [CurrentMachine("c9", "controller", 1)]
    found = lines(previous, current, answered=False)
    assert len(found) == 2
    assert "removing the last controller" in found[0]
    assert "removing the init controller before the cluster ever answered" in found[1]


def test_the_previous_machines_from_the_stack_outputs() -> None:
    outputs: dict[str, Any] = {
        "machines": {
            "c1": {"role": "controller", "generation": 2, "init": True, "mac": "x"},
            "w1": {"role": "worker", "mac": "y"},  # an output from before the generation
        },
        "installed": {"c1": "0a1b2c3d"},
    }
    assert previous_machines(outputs) == [
        PreviousMachine("c1", "controller", 2, True, True),
        PreviousMachine("w1", "worker", None, False, False),
    ]
    assert previous_machines({}) == []
    # A map's order is not kept: by name, numbers as numbers.
    shuffled = {"machines": {n: {"role": "controller"} for n in ("c10", "c2", "w1", "c1")}}
    assert [m.name for m in previous_machines(shuffled)] == ["c1", "c2", "c10", "w1"]
    assert previous_machines({"machines": "not a map"}) == []


def test_from_a_stack_config(example_values: dict[str, Any]) -> None:
    values = sized_stack(example_values, 3, 1)
    outputs = {
        "machines": {
            name: {"role": m["role"], "generation": 1, "init": name == "c1"}
            for name, m in values["machines"].items()
        },
        "installed": {name: "00000000" for name in values["machines"]},
    }
    del values["machines"]["c2"]
    values["machines"]["c3"]["generation"] = 2
    found = [str(p) for p in stack_removal_problems(outputs, parse_stack_config(values))]
    assert [line.split(":")[0] for line in found] == ["machine 'c2'", "machine 'c3'"]
    outputs["installed"] = {}
    values["machines"]["c3"]["generation"] = 1
    del values["machines"]["c1"]
    values["machines"]["c3"]["init"] = True
    found = [str(p) for p in stack_removal_problems(outputs, parse_stack_config(values))]
    assert any("machine 'c1': removing the init controller" in line for line in found)
