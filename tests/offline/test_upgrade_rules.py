"""The refusals of a change of the Kubernetes release (stackconfig/upgrade_rules.py), from the
release the last completed update recorded (the `kubernetesRelease` output).

kubeadm upgrades one minor at a time ("Skipping MINOR versions when upgrading is unsupported",
kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/; kubeadm
cmd/kubeadm/app/phases/upgrade/policy.go MaximumAllowedMinorVersionUpgradeSkew = 1), and the
API servers may be one minor apart (kubernetes.io/releases/version-skew-policy/).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from program_stacks import sized_stack
from test_render import tree
from test_render_previous import render

from stackconfig import parse_stack_config
from stackconfig.problems import Problem
from stackconfig.upgrade_rules import (
    KUBERNETES_RELEASE_OUTPUT,
    previous_release,
    release_problems,
    stack_upgrade_problems,
)
from stubernetes.cli import EXIT_BAD_INPUT


def lines(running: str | None, wanted: str, changed: list[str] | None = None) -> list[str]:
    return [str(p) for p in release_problems(running, wanted, changed or [])]


@pytest.mark.parametrize(
    ("running", "wanted"),
    [
        (None, "1.37.2"),  # a new stack: nothing runs yet
        ("1.36.3", "1.36.3"),
        ("1.36.3", "1.36.4"),  # a patch
        ("1.35.8", "1.36.0"),  # the next minor, from any patch to any patch
        ("1.35.0", "1.36.4"),
    ],
)
def test_allowed_changes(running: str | None, wanted: str) -> None:
    assert lines(running, wanted) == []


def test_skipping_a_minor_is_refused_naming_the_next_one() -> None:
    assert lines("1.35.8", "1.37.2") == [
        "cluster: field 'kubernetesVersion': 1.35.8 to 1.37.2 skips a minor: upgrade one minor "
        "at a time, first to 1.36 (kubernetes.io/docs/tasks/administer-cluster/kubeadm/"
        "kubeadm-upgrade/ and kubernetes.io/releases/version-skew-policy/)"
    ]


@pytest.mark.parametrize(("running", "wanted"), [("1.36.4", "1.36.3"), ("1.36.0", "1.35.8")])
def test_a_downgrade_is_refused(running: str, wanted: str) -> None:
    (line,) = lines(running, wanted)
    assert line.startswith(
        f"cluster: field 'kubernetesVersion': {wanted} is older than {running}, which the "
        "cluster runs: Kubernetes is never downgraded"
    )


def test_a_bump_with_a_change_of_controllers_is_refused_and_either_alone_is_not() -> None:
    (line,) = lines("1.35.8", "1.36.4", ["c3"])
    assert line.startswith(
        "cluster: field 'kubernetesVersion': 1.35.8 to 1.36.4 in the same update as a change of "
        "the controllers (c3 added, removed or reinstalled): change the release and the "
        "controllers in separate updates"
    )
    assert lines("1.36.4", "1.36.4", ["c3"]) == []


def test_every_rule_at_once() -> None:
    assert len(lines("1.35.8", "1.37.2", ["c2"])) == 2


def test_an_output_that_is_no_release_is_unknown() -> None:
    assert previous_release({}) is None
    assert previous_release({KUBERNETES_RELEASE_OUTPUT: "v1.36"}) is None
    assert previous_release({KUBERNETES_RELEASE_OUTPUT: 1.36}) is None
    assert previous_release({KUBERNETES_RELEASE_OUTPUT: "1.36.4"}) == "1.36.4"


def previous_outputs(values: dict[str, Any], release: str) -> dict[str, Any]:
    """What an update of `values` that completed at `release` records."""
    stack = parse_stack_config(values)
    return {
        KUBERNETES_RELEASE_OUTPUT: release,
        "machines": {
            m.name: {"role": m.role, "generation": m.generation, "init": m.init}
            for m in stack.machines
        },
        "installed": {m.name: "anchor" for m in stack.machines},
    }


def bumped_with(example_values: dict[str, Any], change: Any, release: str) -> list[Problem]:
    """The refusals of `change` to three controllers and two workers that last ran 1.35.8,
    applied with `release`."""
    before = sized_stack(example_values, 3, 2)
    after = copy.deepcopy(before)
    change(after)
    after["cluster"]["kubernetesVersion"] = release
    return stack_upgrade_problems(previous_outputs(before, "1.35.8"), parse_stack_config(after))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v["machines"].pop("c3"), ["c3"]),
        (lambda v: v["machines"]["c2"].update(generation=2), ["c2"]),
        (lambda v: v["machines"].pop("w2"), []),  # workers are no etcd members
    ],
)
def test_controllers_changed_since_the_last_update(
    example_values: dict[str, Any], change: Any, expected: list[str]
) -> None:
    problems = bumped_with(example_values, change, "1.36.4")
    assert [p.message.split("(")[1].split(" added")[0] for p in problems] == expected


def another_worker(values: dict[str, Any]) -> dict[str, Any]:
    """w2's settings for a new machine: its own MAC and the next free address."""
    worker: dict[str, Any] = copy.deepcopy(values["machines"]["w2"])
    worker["mac"] = "52:54:00:a1:00:99"
    if "address" in worker:
        ip, _, prefix = worker["address"].partition("/")
        worker["address"] = f"{ip.rsplit('.', 1)[0]}.99/{prefix}" if prefix else ip
    return worker


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v["machines"]["w1"].update(generation=2), ["w1 added or reinstalled"]),
        (lambda v: v["machines"].update(w9=another_worker(v)), ["w9 added or reinstalled"]),
        (lambda v: v["machines"].pop("w2"), []),  # a worker that leaves joins with nothing
    ],
)
def test_a_bump_while_a_worker_joins_is_refused(
    example_values: dict[str, Any], change: Any, expected: list[str]
) -> None:
    problems = bumped_with(example_values, change, "1.36.4")
    assert [p.message.split("(")[1].split(")")[0] for p in problems] == expected
    for problem in problems:
        assert "a kubelet must not be newer than the API server" in problem.message
    # The same change without a bump is no upgrade's business.
    assert bumped_with(example_values, change, "1.35.8") == []


def test_an_earlier_render_refuses_a_skipped_minor_and_renders_the_next(
    example_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    old = copy.deepcopy(example_values)
    old["cluster"]["kubernetesVersion"] = "1.35"
    assert render(old, tmp_path, out) == 0
    assert json.loads((out / "outputs.json").read_text())[KUBERNETES_RELEASE_OUTPUT] == "1.35.8"
    before = tree(out)
    skipped = copy.deepcopy(old)
    skipped["cluster"]["kubernetesVersion"] = "1.37.2"
    skipped["cluster"]["binarySha256"] = {
        name: "ab" * 32 for name in ("kubeadm", "kubectl", "kubelet")
    }
    capsys.readouterr()
    assert render(skipped, tmp_path, out, "skipped.yaml") == EXIT_BAD_INPUT
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith("error: cluster: field 'kubernetesVersion': 1.35.8 to 1.37.2 skips")
    assert tree(out) == before
    bumped = copy.deepcopy(old)
    bumped["cluster"]["kubernetesVersion"] = "1.36"
    assert render(bumped, tmp_path, out, "bumped.yaml") == 0
    assert json.loads((out / "outputs.json").read_text())[KUBERNETES_RELEASE_OUTPUT] == "1.36.4"
