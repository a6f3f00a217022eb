"""kubeadm's configuration per role: what `kubeadm init|join --config` reads on each machine."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from program_stacks import sized_stack

from ignition import machine_ignition
from ignition.kubeadm import CRI_SOCKET, dump_yaml, kubeadm_config
from ignition.material import ClusterMaterial
from stackconfig import StackConfig, parse_stack_config

TOKEN = "abcdef.0123456789abcdef"


def documents(stack: StackConfig, name: str, material: ClusterMaterial) -> dict[str, Any]:
    text = kubeadm_config(stack, stack.machine(name), TOKEN, material.ca_cert_hash)
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def test_init_controller(example_stack: StackConfig, material: ClusterMaterial) -> None:
    docs = documents(example_stack, "c1", material)
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    init = docs["InitConfiguration"]
    assert [t["token"] for t in init["bootstrapTokens"]] == [TOKEN]  # its own token only
    assert init["bootstrapTokens"][0]["ttl"] == "0s"
    assert init["nodeRegistration"] == {"name": "c1", "criSocket": CRI_SOCKET}
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.10.11"
    cluster = docs["ClusterConfiguration"]
    assert cluster["controlPlaneEndpoint"] == "192.168.10.11:6443"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert cluster["kubernetesVersion"] == "stable-1.31"
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_worker_joins_with_its_token_and_the_ca_hash(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    docs = documents(example_stack, "w1", material)
    assert set(docs) == {"JoinConfiguration", "KubeletConfiguration"}
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
    assert join["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.3", "bindPort": 6443}
    }
    assert join["nodeRegistration"]["taints"] == [{"key": "dedicated", "effect": "NoSchedule"}]
    assert "certificateKey" not in join["controlPlane"]  # the CA material travels in Ignition


def test_libyaml_and_pure_python_emitters_agree(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    """Output must not depend on whether PyYAML was built with libyaml."""
    values = sized_stack(example_values, 3, 3)
    values["machines"]["w1"]["labels"] = {"example.com/zone": "a b: 'c'", "x": "1"}
    values["machines"]["w2"]["taints"] = [{"key": "k", "value": "v", "effect": "NoExecute"}]
    stack = parse_stack_config(values)
    for machine in stack.machines:
        text = kubeadm_config(stack, machine, TOKEN, material.ca_cert_hash)
        assert dump_yaml(list(yaml.safe_load_all(text)), yaml.SafeDumper) == text, machine.name


def test_a_malformed_token_is_refused_without_showing_it(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    for token in ("abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcdef.0123456789abcde"):
        with pytest.raises(ValueError, match="machine 'w1': the bootstrap token") as refused:
            machine_ignition(example_stack, example_stack.machine("w1"), material, token)
        assert token not in str(refused.value)
