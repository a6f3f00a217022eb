"""kubeadm's configuration per role: what `kubeadm init|join --config` reads on each machine."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from program_stacks import sized_stack

from ignition import machine_ignition
from ignition.kubeadm import (
    CRI_SOCKET,
    ETCD_SELINUX_LEVEL,
    KUBEADM_PATCHES,
    dump_yaml,
    kubeadm_config,
    kubeadm_join_config,
    kubeadm_patches,
)
from ignition.material import ClusterMaterial
from stackconfig import StackConfig, parse_stack_config

TOKEN = "abcdef.0123456789abcdef"
CERTIFICATE_KEY = "0f" * 32


def documents(stack: StackConfig, name: str, material: ClusterMaterial) -> dict[str, Any]:
    text = kubeadm_config(stack, stack.machine(name), TOKEN, material.ca_cert_hash, CERTIFICATE_KEY)
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def test_init_controller(example_stack: StackConfig, material: ClusterMaterial) -> None:
    docs = documents(example_stack, "c1", material)
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    init = docs["InitConfiguration"]
    # No token of its own: the program creates every machine's token once the API server
    # answers. With none listed, kubeadm's defaulting adds one token, random and valid for 24 h:
    # kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/defaults.go SetDefaults_BootstrapTokens
    # ("If the slice is empty, it's defaulted with one token"), TTL from
    # cmd/kubeadm/app/apis/bootstraptoken/v1/defaults.go (DefaultTokenDuration = 24 * time.Hour).
    assert "bootstrapTokens" not in init
    assert TOKEN not in kubeadm_config(
        example_stack, example_stack.machine("c1"), TOKEN, material.ca_cert_hash
    )
    assert init["nodeRegistration"] == {"name": "c1", "criSocket": CRI_SOCKET}
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.10.11"
    assert init["patches"] == {"directory": KUBEADM_PATCHES}
    cluster = docs["ClusterConfiguration"]
    assert cluster["controlPlaneEndpoint"] == "192.168.10.11:6443"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert cluster["kubernetesVersion"] == "v1.36.4"  # the example stack names a patch release
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"


@pytest.mark.parametrize(
    ("version", "digests", "expected"),
    [
        ("1.36.3", None, "v1.36.3"),
        ("1.36", None, "v1.36.4"),
        ("1.35", None, "v1.35.8"),
        ("1.37.2", {"kubeadm": "a" * 64, "kubectl": "b" * 64, "kubelet": "c" * 64}, "v1.37.2"),
    ],
)
def test_kubernetes_version_is_the_exact_release_the_nodes_download(
    example_values: dict[str, Any],
    material: ClusterMaterial,
    version: str,
    digests: dict[str, str] | None,
    expected: str,
) -> None:
    """Always the exact release, never `stable-1.36`: the control plane's images must be the
    release of the kubelet and kubeadm that Ignition downloaded (a minor is its newest patch
    with pinned digests), and kubeadm resolves a label such as stable-1.36 through dl.k8s.io at
    run time (cmd/kubeadm/app/util/version.go KubernetesReleaseVersion), which could name a
    newer patch than the binaries on the node."""
    cluster = {**example_values["cluster"], "kubernetesVersion": version}
    if digests is not None:
        cluster["binarySha256"] = digests
    docs = documents(parse_stack_config({**example_values, "cluster": cluster}), "c1", material)
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == expected


def test_founding_controller_also_carries_a_control_plane_join(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """For a reinstall from its unchanged Ignition while its cluster answers: a control-plane
    join with its own token and the CA hash; the shared CA material it carries makes that join
    work without kubeadm's upload-certs secret."""
    c1 = example_stack.machine("c1")
    text = kubeadm_join_config(example_stack, c1, TOKEN, material.ca_cert_hash)
    assert text is not None
    join = next(d for d in yaml.safe_load_all(text) if d["kind"] == "JoinConfiguration")
    assert join["discovery"]["bootstrapToken"] == {
        "token": TOKEN,
        "apiServerEndpoint": "192.168.10.11:6443",
        "caCertHashes": [material.ca_cert_hash],
    }
    assert join["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "192.168.10.11", "bindPort": 6443}
    }
    assert join["patches"] == {"directory": KUBEADM_PATCHES}
    for name in ("w1", "w2"):
        machine = example_stack.machine(name)
        assert kubeadm_join_config(example_stack, machine, TOKEN, material.ca_cert_hash) is None


def test_etcd_runs_at_a_fixed_selinux_level(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Files take the MCS level of the process that creates them, and containerd gives each new
    pod sandbox random categories (containerd internal/cri/server/podsandbox/helpers_linux.go
    initLabelsFromOpt -> go-selinux label.InitLabels): an etcd restarted after a reboot could
    not read its own data (Typhoon's fix for the same failure of Calico's install-cni: a fixed
    `seLinuxOptions.level`, poseidon/terraform-render-bootstrap#186; rancher/rke2#5273 for
    etcd). kubeadm applies
    `patches.directory` files named target[suffix][+patchtype].yaml to its static pods (v1beta4
    types.go Patches; cmd/kubeadm/app/util/patches/patches.go knownTargets has "etcd")."""
    patches = kubeadm_patches(example_stack.machine("c1"))
    assert list(patches) == ["etcd+strategic.yaml"]
    patch = yaml.safe_load(patches["etcd+strategic.yaml"])
    assert patch == {"spec": {"securityContext": {"seLinuxOptions": {"level": ETCD_SELINUX_LEVEL}}}}
    assert kubeadm_patches(example_stack.machine("w1")) == {}
    assert "patches" not in documents(example_stack, "w1", material)["JoinConfiguration"]


def test_worker_joins_with_its_token_and_the_ca_hash(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    docs = documents(example_stack, "w1", material)
    # No KubeletConfiguration: a join ignores one with a warning and downloads the one init
    # uploaded (kubernetes cmd/kubeadm/app/util/config/joinconfiguration.go; the real kubeadm
    # test tests/real/test_kubeadm_real.py fails on any warning).
    assert set(docs) == {"JoinConfiguration"}
    join = docs["JoinConfiguration"]
    assert join["discovery"]["bootstrapToken"] == {
        "token": TOKEN,
        "apiServerEndpoint": "192.168.10.11:6443",
        "caCertHashes": [material.ca_cert_hash],
    }
    assert "controlPlane" not in join
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-labels", "value": "stubernetes.dev/storage=local"}
    ]


def test_other_controllers_join_the_control_plane(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    values = sized_stack(example_values, 3, 1)
    values["machines"]["c2"]["taints"] = [{"key": "dedicated", "effect": "NoSchedule"}]
    stack = parse_stack_config(values)
    join = documents(stack, "c2", material)["JoinConfiguration"]
    # The shared CA material comes from the kubeadm-certs Secret, decrypted with this install's
    # certificate key (v1beta4 JoinControlPlane.certificateKey), never from the Ignition.
    assert join["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.3", "bindPort": 6443},
        "certificateKey": CERTIFICATE_KEY,
    }
    assert join["nodeRegistration"]["taints"] == [{"key": "dedicated", "effect": "NoSchedule"}]
    with pytest.raises(ValueError, match="machine 'c2': a joining controller needs its"):
        kubeadm_config(stack, stack.machine("c2"), TOKEN, material.ca_cert_hash)
    assert join["patches"] == {"directory": KUBEADM_PATCHES}


def test_libyaml_and_pure_python_emitters_agree(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    """Output must not depend on whether PyYAML was built with libyaml."""
    values = sized_stack(example_values, 3, 3)
    # Values YAML would read as other types unless quoted (a YAML 1.1 bool, an int, a null).
    values["machines"]["w1"]["labels"] = {"example.com/zone": "yes", "x": "1", "y": "null"}
    values["machines"]["w2"]["taints"] = [{"key": "k", "value": "v", "effect": "NoExecute"}]
    stack = parse_stack_config(values)
    for machine in stack.machines:
        text = kubeadm_config(stack, machine, TOKEN, material.ca_cert_hash, CERTIFICATE_KEY)
        assert dump_yaml(list(yaml.safe_load_all(text)), yaml.SafeDumper) == text, machine.name


def test_a_malformed_token_is_refused_without_showing_it(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    for token in ("abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcdef.0123456789abcde"):
        with pytest.raises(ValueError, match="machine 'w1': the bootstrap token") as refused:
            machine_ignition(example_stack, example_stack.machine("w1"), material, token)
        assert token not in str(refused.value)
