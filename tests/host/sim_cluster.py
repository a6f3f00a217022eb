"""The simulated cluster the machines meet: what its API server holds, as far as setup cares.

A stand-in for a Kubernetes cluster (sim/cluster.state, a Python literal every stand-in reads
and writes): whether it was initialized and its API server answers (and who serves the API
endpoint), the Nodes with their labels, taints and whose kubelet heartbeats them, the etcd
members by peer URL, the valid bootstrap tokens, and the objects setup depends on. What a
cluster founded by `kubeadm init` holds follows kubernetes v1.36.3 cmd/kubeadm: the kubeadm-
config and kubelet-config ConfigMaps (upload-config), cluster-info and its RBAC
(bootstrap-token), CoreDNS and kube-proxy (addon); a control-plane Node's label and taint
(mark-control-plane: constants.LabelNodeRoleControlPlane, ControlPlaneTaint); the kubelet's
default labels (pkg/kubelet/kubelet_node_status.go initialNode: kubernetes.io/hostname, os and
arch, and the beta forms of os and arch).
"""

from __future__ import annotations

from typing import Any

from ignition.kubeadm_certs import NAMESPACE, RBAC_NAME, SECRET_NAME, kubeadm_certs_secret
from ignition.material import ClusterMaterial

JSON = dict[str, Any]


def kubelet_default_labels(name: str) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }


CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "",
    "node.kubernetes.io/exclude-from-external-load-balancers": "",
}
CONTROL_PLANE_TAINT = {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}
INIT_OBJECTS = [
    "configmap/kube-system/kubeadm-config",
    "configmap/kube-system/kubelet-config",
    "configmap/kube-public/cluster-info",
    "rbac/kubeadm:bootstrap-signer-clusterinfo",
    "deployment/kube-system/coredns",
    "daemonset/kube-system/kube-proxy",
]


def empty_cluster() -> JSON:
    """No cluster yet: what the init controller meets.

    `grace_seconds`: how long a Node stays Ready after its kubelet stopped (the node lifecycle
    controller's grace period, 40 s in a real cluster; none unless a test sets one)."""
    return {
        "initialized": False,
        "api": "down",
        "api_host": None,
        "generation": 0,
        "ca_hash": None,
        "nodes": {},
        "etcd": {},
        "tokens": [],
        "objects": [],
        "grace_seconds": 0.0,
    }


def running_cluster(
    ca_hash: str,
    tokens: list[str],
    controllers: dict[str, str],
    api_host: str,
) -> JSON:
    """A cluster that an init controller (elsewhere) made: controllers by name -> address,
    each a Ready control-plane node and a started etcd member; `tokens` are valid."""
    cluster = empty_cluster()
    cluster.update(initialized=True, api="up", api_host=api_host, generation=1, ca_hash=ca_hash)
    for name, address in controllers.items():
        cluster["nodes"][name] = {
            "labels": {**kubelet_default_labels(name), **CONTROL_PLANE_LABELS},
            "taints": [CONTROL_PLANE_TAINT],
            "kubelet": "running",
            "heartbeat_from": f"{name}-elsewhere",
        }
        cluster["etcd"][f"https://{address}:2380"] = {
            "name": name,
            "started": True,
            "data": f"{name}-elsewhere",
        }
    cluster["tokens"] = list(tokens)
    cluster["objects"] = list(INIT_OBJECTS)
    return cluster


KUBEADM_CERTS_RBAC = (
    f"role/{NAMESPACE}/{RBAC_NAME}",
    f"rolebinding/{NAMESPACE}/{RBAC_NAME}",
)


def upload_kubeadm_certs(
    cluster: JSON, material: ClusterMaterial, hex_key: str, token: str, machine: str
) -> None:
    """What the program's upload step for `machine`'s join does to the cluster
    (components/scripts/upload-control-plane-certs): the kubeadm-certs Secret exactly as the
    program makes it (ignition/kubeadm_certs.py), owned by the machine's token Secret, in place
    of any earlier one; kubeadm's Role and RoleBinding that let a bootstrap token get it."""
    secret = kubeadm_certs_secret(material, hex_key, token.split(".")[0], machine)
    cluster["objects"] = [
        *cluster["objects"],
        *(o for o in KUBEADM_CERTS_RBAC if o not in cluster["objects"]),
    ]
    cluster.setdefault("secrets", {})[f"{NAMESPACE}/{SECRET_NAME}"] = {
        "owner": secret["metadata"]["ownerReferences"][0]["name"],
        "data": dict(secret["data"]),
    }
