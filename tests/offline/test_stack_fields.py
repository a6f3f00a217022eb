"""Fields other code relies on parse as documented, with their defaults."""

from __future__ import annotations

from typing import Any

import pytest

from stackconfig import parse_stack_config
from stackconfig.labels import KUBELET_LABELS
from stackconfig.model import (
    SUPPORTED_KUBERNETES_MINORS,
    Admin,
    BinarySha256,
    Bmc,
    Cluster,
    Gates,
    Machine,
    Matchbox,
    OperatingSystem,
    ReleaseSettings,
    StackConfig,
    Taint,
)


def parsed(values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(values)


def w1(values: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = values["machines"]["w1"]
    return result


def test_supported_minors_are_the_upstream_ones() -> None:
    # The minors Kubernetes supports upstream as of 2026-12 (kubernetes.io releases page).
    assert SUPPORTED_KUBERNETES_MINORS == ("1.35", "1.36", "1.37")


def test_example_stack_pins_a_patch_release(example_stack: StackConfig) -> None:
    cluster = example_stack.cluster
    assert cluster.kubernetes_version == "1.36.4"
    assert cluster.kubernetes_minor == "1.36"
    assert cluster.kubernetes_release == "1.36.4"
    assert cluster.binary_sha256 is None


@pytest.mark.parametrize(
    ("version", "minor", "release"),
    [("1.35", "1.35", "1.35.8"), ("1.36", "1.36", "1.36.4"), ("1.36.0", "1.36", "1.36.0")],
)
def test_kubernetes_version_minor_and_release(
    version: str, minor: str, release: str, raw_values: dict[str, Any]
) -> None:
    """A minor runs its newest patch with pinned digests (stackconfig/pinned_digests.py, copied
    from kubespray's checksums.yml: 1.35.8 and 1.36.4 are the newest it lists); a patch runs
    as written."""
    raw_values["cluster"]["kubernetesVersion"] = version
    cluster = parsed(raw_values).cluster
    assert (cluster.kubernetes_version, cluster.kubernetes_minor) == (version, minor)
    assert cluster.kubernetes_release == release


def test_drain_timeout_default(example_stack: StackConfig) -> None:
    assert example_stack.gates.drain_timeout_seconds == 600


def test_drain_timeout_parses(raw_values: dict[str, Any]) -> None:
    raw_values["gates"] = {"drainTimeoutSeconds": 900}
    gates = parsed(raw_values).gates
    assert gates.drain_timeout_seconds == 900
    assert gates.reinstall_timeout_seconds == 3600


def test_bmc_efi_boot_default_and_parse(raw_values: dict[str, Any]) -> None:
    bmc = {"kind": "redfish", "address": "10.0.0.9", "user": "admin", "password": "pw"}
    for given, expected in (({}, False), ({"efiBoot": True}, True)):
        w1(raw_values)["bmc"] = dict(bmc, **given)
        parsed_bmc = parsed(raw_values).machine("w1").bmc
        assert parsed_bmc is not None
        assert parsed_bmc.efi_boot is expected


def test_installer_and_installed_kernel_args_parse(raw_values: dict[str, Any]) -> None:
    w1(raw_values)["installerKernelArgs"] = ["console=ttyS0,115200n8", "coreos.inst.insecure"]
    w1(raw_values)["kernelArgs"] = ["console=tty0", "mitigations=auto,nosmt"]
    machine = parsed(raw_values).machine("w1")
    assert machine.installer_kernel_args == ["console=ttyS0,115200n8", "coreos.inst.insecure"]
    assert machine.kernel_args == ["console=tty0", "mitigations=auto,nosmt"]
    assert parsed(raw_values).machine("w2").installer_kernel_args == []


@pytest.mark.parametrize(
    "key",
    [
        # staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go (kubernetes/kubernetes):
        # kubeletLabelNamespaces, the namespace itself and its subdomains...
        "node.kubernetes.io/pool",
        "kubelet.kubernetes.io/role",
        "x.node.kubernetes.io/pool",
        # ...and kubeletLabels, e.g. these two.
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
        # Outside kubernetes.io and k8s.io (options.go isKubernetesLabel), any valid key.
        "example.com/worker",
        "kubernetes.io.example.com/x",
        "worker",
        "A.b_c-D",
    ],
)
def test_labels_kubelet_accepts_parse(key: str, raw_values: dict[str, Any]) -> None:
    w1(raw_values)["labels"] = {key: "v", "example.com/empty": ""}
    assert parsed(raw_values).machine("w1").labels == {key: "v", "example.com/empty": ""}


def test_kubelet_labels_are_upstreams_list() -> None:
    # well_known_labels.go kubeletLabels, as its v1.* constants spell them
    # (staging/src/k8s.io/api/core/v1/well_known_labels.go), checked for 1.36.
    assert sorted(KUBELET_LABELS) == [
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "beta.kubernetes.io/os",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "kubernetes.io/arch",
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ]


def test_taints_parse(raw_values: dict[str, Any]) -> None:
    w1(raw_values)["taints"] = [
        {"key": "example.com/gpu", "effect": "NoSchedule"},
        {"key": "example.com/gpu", "value": "", "effect": "NoExecute"},
        {"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"},
    ]
    taints = parsed(raw_values).machine("w1").taints
    assert [(t.key, t.value, t.effect) for t in taints] == [
        ("example.com/gpu", None, "NoSchedule"),
        ("example.com/gpu", "", "NoExecute"),
        ("dedicated", "db", "PreferNoSchedule"),
    ]


def test_several_controllers_behind_a_dns_name_parse(raw_values: dict[str, Any]) -> None:
    raw_values["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    raw_values["machines"]["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "192.168.10.12/24",
    }
    assert [m.name for m in parsed(raw_values).controllers] == ["c1", "c2"]


def test_several_controllers_behind_a_virtual_ip_parse(raw_values: dict[str, Any]) -> None:
    raw_values["cluster"]["apiEndpoint"] = "192.168.10.10:6443"
    raw_values["machines"]["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "192.168.10.12/24",
    }
    assert len(parsed(raw_values).controllers) == 2


def test_every_field_has_a_description() -> None:
    models = (Cluster, BinarySha256, OperatingSystem, Matchbox, Admin, Gates, Taint, Bmc, Machine)
    for model in (*models, ReleaseSettings, StackConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
