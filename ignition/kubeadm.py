"""kubeadm's configuration for one machine: init, control-plane join, or worker join."""

from __future__ import annotations

from typing import Any

import yaml

from stackconfig.model import Machine, StackConfig

API_VERSION = "kubeadm.k8s.io/v1beta4"
CRI_SOCKET = "unix:///var/run/crio/crio.sock"


def _node_registration(machine: Machine) -> dict[str, Any]:
    registration: dict[str, Any] = {"name": machine.name, "criSocket": CRI_SOCKET}
    if machine.labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(machine.labels.items()))
        registration["kubeletExtraArgs"] = [{"name": "node-labels", "value": labels}]
    if machine.taints:
        registration["taints"] = [
            t.model_dump(exclude_none=True, by_alias=True) for t in machine.taints
        ]
    return registration


def _local_endpoint(machine: Machine) -> dict[str, Any]:
    if machine.address is None:
        return {}
    return {"localAPIEndpoint": {"advertiseAddress": str(machine.address.ip), "bindPort": 6443}}


def _bootstrap_token(machine: Machine, token: str) -> dict[str, Any]:
    return {
        "token": token,
        "description": f"stubernetes: bootstrap token of machine {machine.name}",
        # Never expires, so a wiped machine can rejoin from its Ignition alone; it is one
        # token per machine, replaced when that machine is reinstalled.
        "ttl": "0s",
        "usages": ["signing", "authentication"],
        "groups": ["system:bootstrappers:kubeadm:default-node-token"],
    }


def _cluster_configuration(stack: StackConfig) -> dict[str, Any]:
    cluster = stack.cluster
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": cluster.name,
        "kubernetesVersion": f"stable-{cluster.kubernetes_version}",
        "controlPlaneEndpoint": cluster.api_endpoint,
        "encryptionAlgorithm": "ECDSA-P256",
        "apiServer": {"certSANs": [cluster.api_host]},
        "controllerManager": {
            "extraArgs": [{"name": "flex-volume-plugin-dir", "value": FLEX_VOLUME_DIR}]
        },
        "networking": {
            "podSubnet": str(cluster.pod_cidr),
            "serviceSubnet": str(cluster.service_cidr),
        },
    }


# /usr is read-only on Fedora CoreOS, so FlexVolume plugins live under /opt (kubelet and
# controller manager must agree).
FLEX_VOLUME_DIR = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/"

KUBELET_CONFIGURATION = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "cgroupDriver": "systemd",
    "volumePluginDir": FLEX_VOLUME_DIR,
}


def kubeadm_command(stack: StackConfig, machine: Machine) -> str:
    return "init" if stack.bootstraps_cluster(machine) else "join"


def kubeadm_config(stack: StackConfig, machine: Machine, token: str, ca_cert_hash: str) -> str:
    """The multi-document YAML that `kubeadm init|join --config` reads on this machine."""
    documents: list[dict[str, Any]]
    if stack.bootstraps_cluster(machine):
        documents = [
            {
                "apiVersion": API_VERSION,
                "kind": "InitConfiguration",
                "bootstrapTokens": [_bootstrap_token(machine, token)],
                "nodeRegistration": _node_registration(machine),
                **_local_endpoint(machine),
            },
            _cluster_configuration(stack),
        ]
    else:
        join: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "JoinConfiguration",
            "discovery": {
                "bootstrapToken": {
                    "token": token,
                    "apiServerEndpoint": stack.cluster.api_endpoint,
                    "caCertHashes": [ca_cert_hash],
                }
            },
            "nodeRegistration": _node_registration(machine),
        }
        if machine.is_controller:
            # No certificateKey: the shared CA material travels in the Ignition instead of
            # kubeadm's upload-certs secret, which expires after two hours.
            join["controlPlane"] = _local_endpoint(machine)
        documents = [join]
    documents.append(KUBELET_CONFIGURATION)
    return dump_yaml(documents)


# libyaml's emitter when PyYAML has it: the same text as the pure-Python one (a test holds
# them to that), at a twentieth of the cost, which counts on every machine of every preview.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(documents: list[dict[str, Any]], dumper: type[yaml.SafeDumper] = _DUMPER) -> str:
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=True, default_flow_style=False)
