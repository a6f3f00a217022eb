"""Which release a stack's nodes run and the sha256 each download must have: a minor resolves to
its newest patch with pinned digests, a release without pinned digests needs the stack's own,
and digests the stack supplies replace the pinned ones, with a warning where they differ.

The refusals as a user meets them, one stack file each, are under bad-stacks/versions/."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from stackconfig import ConfigError, StackConfig, parse_stack_config
from stackconfig.model import SUPPORTED_KUBERNETES_MINORS
from stackconfig.pinned_digests import (
    CNI_PLUGINS_SHA256,
    CRICTL_SHA256,
    KUBERNETES_BINARIES,
    KUBERNETES_SHA256,
)
from stackconfig.warnings import stack_warnings

# dl.k8s.io's `<binary>.sha256` files hold the digest as lowercase hex, which is also the only
# form Ignition matches: it compares its own lowercase encoding with the text as given
# (coreos/ignition v2.24.0 internal/util/verification.go AssertValid).
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
OWN = {"kubeadm": "a" * 64, "kubectl": "b" * 64, "kubelet": "c" * 64}


def stack_with(values: dict[str, Any], version: str, digests: dict[str, str] | None) -> StackConfig:
    changed = copy.deepcopy(values)
    changed["cluster"]["kubernetesVersion"] = version
    if digests is not None:
        changed["cluster"]["binarySha256"] = digests
    return parse_stack_config(changed)


def refusals(values: dict[str, Any], version: str, digests: dict[str, str] | None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        stack_with(values, version, digests)
    return [str(problem) for problem in raised.value.problems]


def test_the_pinned_table_is_whole_and_well_formed() -> None:
    """Every pinned release has all three binaries, each as dl.k8s.io writes a digest; its
    minors are supported ones (kubespray's checksums.yml at the pinned commit lists 1.35.0 to
    1.35.8 and 1.36.0 to 1.36.4 for those minors, and no 1.37)."""
    assert KUBERNETES_SHA256
    for release, digests in KUBERNETES_SHA256.items():
        assert release.rpartition(".")[0] in SUPPORTED_KUBERNETES_MINORS, release
        assert tuple(digests) == KUBERNETES_BINARIES, release
        assert all(SHA256_HEX.fullmatch(d) for d in digests.values()), release
    assert SHA256_HEX.fullmatch(CNI_PLUGINS_SHA256)
    assert SHA256_HEX.fullmatch(CRICTL_SHA256)
    assert not [r for r in KUBERNETES_SHA256 if r.startswith("1.37.")]


@pytest.mark.parametrize(("version", "release"), [("1.36", "1.36.4"), ("1.35", "1.35.8")])
def test_a_minor_runs_its_newest_pinned_patch(
    example_values: dict[str, Any], version: str, release: str
) -> None:
    stack = stack_with(example_values, version, None)
    assert stack.cluster.kubernetes_release == release
    pinned = KUBERNETES_SHA256[release]
    assert stack.cluster.binary_digests == {
        **pinned,
        "cni-plugins": CNI_PLUGINS_SHA256,
        "crictl": CRICTL_SHA256,
    }


def test_a_minor_without_pinned_releases_is_refused(example_values: dict[str, Any]) -> None:
    assert refusals(example_values, "1.37", None) == [
        "stubernetes:cluster: field 'kubernetesVersion': no 1.37 release has pinned digests in "
        "this version of stubernetes: name the patch release (such as '1.37.0') and give its "
        "digests in 'binarySha256'"
    ]


def test_a_release_without_pinned_digests_needs_the_stacks_own(
    example_values: dict[str, Any],
) -> None:
    assert refusals(example_values, "1.37.2", None) == [
        "stubernetes:cluster: field 'kubernetesVersion': no digests pinned for Kubernetes "
        "1.37.2: give kubeadm, kubectl, kubelet in 'binarySha256' (from dl.k8s.io's "
        "'<binary>.sha256' files beside the release binaries)"
    ]
    partial = {"kubeadm": OWN["kubeadm"], "kubectl": OWN["kubectl"]}
    (only,) = refusals(example_values, "1.37.2", partial)
    assert "give kubelet in 'binarySha256'" in only
    stack = stack_with(example_values, "1.37.2", OWN)
    assert stack.cluster.kubernetes_release == "1.37.2"
    # The CNI plugins and crictl are not a Kubernetes release's: their pinned archives serve
    # every one.
    assert stack.cluster.binary_digests == {
        **OWN,
        "cni-plugins": CNI_PLUGINS_SHA256,
        "crictl": CRICTL_SHA256,
    }
    assert stack_warnings(stack) == []


def test_supplied_digests_replace_the_pinned_ones_with_a_warning_where_they_differ(
    example_values: dict[str, Any],
) -> None:
    """Right for binaries of one's own build; a mistake, or a tampered download, otherwise:
    said either way, once per replaced digest, and not for a digest equal to the pinned one."""
    pinned = KUBERNETES_SHA256["1.36.3"]
    supplied = {"kubeadm": pinned["kubeadm"], "kubelet": "e" * 64, "cniPlugins": "f" * 64}
    stack = stack_with(example_values, "1.36.3", supplied)
    assert stack.cluster.binary_digests == {
        "kubeadm": pinned["kubeadm"],
        "kubectl": pinned["kubectl"],
        "kubelet": "e" * 64,
        "cni-plugins": "f" * 64,
        "crictl": CRICTL_SHA256,
    }
    assert [str(w) for w in stack_warnings(stack)] == [
        "stubernetes:cluster: field 'binarySha256.kubelet': replaces the digest pinned for "
        "kubelet of Kubernetes 1.36.3 (from dl.k8s.io); nodes will run only a binary with the "
        "digest given here",
        "stubernetes:cluster: field 'binarySha256.cniPlugins': replaces the digest pinned for "
        "the CNI plugins' archive v1.9.1 (from its GitHub release); nodes will run only a "
        "binary with the digest given here",
    ]


@pytest.mark.parametrize(
    "digest",
    ["B" * 64, "b" * 63, "b" * 65, "g" * 64, f"sha256:{'b' * 64}"],
    ids=["uppercase", "63-digits", "65-digits", "not-hex", "prefixed"],
)
def test_a_malformed_digest_is_refused(example_values: dict[str, Any], digest: str) -> None:
    (only,) = refusals(example_values, "1.36.3", {"kubectl": digest})
    assert only.startswith("stubernetes:cluster: field 'binarySha256.kubectl': ")
