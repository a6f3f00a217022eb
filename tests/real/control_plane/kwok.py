"""kwok plays the machines' kubelets: it keeps Nodes Ready and runs their Pods on paper.

The kwok binary (sigs.k8s.io/kwok v0.8.0 `pkg/kwok/cmd/root.go`) watches the API server
through `--kubeconfig`; `--manage-all-nodes` takes every Node as its own; `--config` gives
the Stages it plays (none are built in: kwok-stage-fast.yaml, its "fast" set: a Node turns
Ready, a Pod bound to one turns Running and Ready, a deleted Pod goes);
`--node-lease-duration-seconds` keeps each Node's Lease renewed, as a kubelet does, so the
controller-manager's node lifecycle controller does not mark the Nodes unreachable
(`pkg/controller/nodelifecycle`); `--server-address` serves kwok's kubelet-like API, whose
port opening says the controllers started (root.go starts it after them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from real_process import RealProcess, start
from tool_cache import require_tool, tool_version

from control_plane.netns import NetworkNamespace
from control_plane.program_output import MachineOutput

STAGES = Path(__file__).with_name("kwok-stage-fast.yaml")
LEASE_SECONDS = 40
# kwok's server, on the namespace's loopback (kwokctl's choice of port, 10247:
# `pkg/kwokctl/components/kwok_controller.go`), free there: nothing else uses it.
KWOK_PORT = 10247
# What kubeadm's mark-control-plane phase puts on a controller's Node (kubernetes
# `cmd/kubeadm/app/phases/markcontrolplane/markcontrolplane.go`): this label, and the
# control-plane taint when nodeRegistration has no `taints` at all
# (`cmd/kubeadm/app/util/config/initconfiguration.go` SetNodeRegistrationDynamicDefaults).
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def start_kwok(kubeconfig: Path, logs: Path, namespace: NetworkNamespace) -> RealProcess:
    """kwok in the control plane's network namespace, its own server on a loopback port."""
    port = KWOK_PORT
    argv = [
        str(require_tool("kwok", "kwok")),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=true",
        f"--config={STAGES}",
        f"--node-lease-duration-seconds={LEASE_SECONDS}",
        f"--server-address=127.0.0.1:{port}",
    ]
    return start(
        "kwok",
        namespace.wrap(argv),
        logs,
        lambda: namespace.port_open("127.0.0.1", port),
        timeout_seconds=60,
    )


def node_labels(machine: MachineOutput) -> dict[str, str]:
    """The labels the machine's kubelet registers its Node with: the well-known ones a kubelet
    always sets (kubernetes `pkg/kubelet/kubelet_node_status.go` initialNode and the
    well-known labels beside it), the machine's
    `--node-labels` from its kubeadm config's kubeletExtraArgs, and kubeadm's control-plane
    label on controllers."""
    labels = {
        "kubernetes.io/hostname": machine.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    registration = next(
        d["nodeRegistration"]
        for d in machine.kubeadm_documents().values()
        if "nodeRegistration" in d
    )
    for argument in registration.get("kubeletExtraArgs", []):
        if argument["name"] == "node-labels":
            for pair in argument["value"].split(","):
                key, _, value = pair.partition("=")
                labels[key] = value
    if machine.role == "controller":
        labels[CONTROL_PLANE_LABEL] = ""
    return labels


def _node_info(name: str, boot_id: str, kubelet_version: str | None = None) -> dict[str, str]:
    """Every field of NodeSystemInfo (required by the API's schema), as a kubelet reports it;
    the software versions say kwok's, as kwok's node-initialize stage does, but the kubelet's
    when ``kubelet_version`` is given (v<release>, which a kubelet reports at start: kubernetes
    pkg/kubelet/nodestatus/setters.go VersionInfo; kwok-stage-fast.yaml's node-initialize
    keeps a set kubeletVersion)."""
    kwok = f"kwok-{tool_version('kwok')}"
    identity = hashlib.sha256(name.encode()).hexdigest()[:32]
    return {
        "machineID": identity,
        "systemUUID": identity,
        "bootID": boot_id,
        "kernelVersion": kwok,
        "osImage": kwok,
        "containerRuntimeVersion": kwok,
        "kubeletVersion": kubelet_version or kwok,
        "kubeProxyVersion": kwok,
        "operatingSystem": "linux",
        "architecture": "amd64",
    }


def node_object(
    machine: MachineOutput, boot_id: str, kubelet_version: str | None = None
) -> dict[str, Any]:
    """The Node a machine's kubelet would register, for kwok to keep. A Node's status may be
    set on create (kubernetes `pkg/registry/core/node/strategy.go`: PrepareForCreate keeps it,
    PrepareForUpdate does not):
    the boot ID, which kwok's node-initialize stage keeps, is what the reinstall wait compares.
    ``kubelet_version``: what the Node says its kubelet runs (kwok's version when None)."""
    registration = next(
        d["nodeRegistration"]
        for d in machine.kubeadm_documents().values()
        if "nodeRegistration" in d
    )
    taints = list(registration.get("taints") or [])
    if machine.role == "controller" and "taints" not in registration:
        taints = [{"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": machine.name, "labels": node_labels(machine)},
        "spec": {"taints": taints} if taints else {},
        "status": {"nodeInfo": _node_info(machine.name, boot_id, kubelet_version)},
    }
