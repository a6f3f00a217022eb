"""Which ``kubernetesVersion`` the engine lab keeps (tests/engine/stacks.py lab_release): a
release the lab's kubeadm deploys, its own minor or the one before (kubernetes
cmd/kubeadm/app/constants/constants.go MinimumControlPlaneVersion) and no newer than itself;
anything else becomes the kubeadm's own release."""

from __future__ import annotations

import pytest
from engine.stacks import lab_release, lab_values

BUILT = "1.36.3"


@pytest.mark.parametrize(
    "wanted",
    [
        "1.36.3",  # the kubeadm's own
        "1.36.0",  # an older patch of its minor
        "1.35.8",  # the previous minor's newest pinned patch: the engine test's rollout start
        "1.35.0",  # MinimumControlPlaneVersion itself
        "1.35",  # a minor, read as its newest pinned patch (1.35.8)
    ],
)
def test_a_release_the_kubeadm_deploys_is_kept(wanted: str) -> None:
    assert lab_release(wanted, BUILT) == wanted


@pytest.mark.parametrize(
    "wanted",
    [
        "1.36.4",  # newer than the lab's API server (the example stack's)
        "1.36",  # a minor whose newest pinned patch (1.36.4) is newer
        "1.34.9",  # two minors back: kubeadm refuses to deploy it
        "1.37.0",  # a minor ahead
        "2.36.3",
        "",
        "latest",
    ],
)
def test_anything_else_becomes_the_kubeadms_release(wanted: str) -> None:
    assert lab_release(wanted, BUILT) == BUILT


def test_lab_values_keeps_a_deployable_release_and_is_idempotent() -> None:
    values = {"cluster": {"kubernetesVersion": "1.35.8"}, "machines": {}}
    adapted = lab_values(values, "http://127.0.0.1:8080", "127.0.0.1:8081")
    assert adapted["cluster"]["kubernetesVersion"] == "1.35.8"
    assert lab_values(adapted, "http://127.0.0.1:8080", "127.0.0.1:8081") == adapted
    assert values["cluster"]["kubernetesVersion"] == "1.35.8"
