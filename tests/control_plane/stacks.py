"""Stacks for the real kubeadm and control plane: the example's settings, changed only where a
real kubeadm on this host needs it."""

from __future__ import annotations

import copy
from typing import Any

from tool_cache import tool_version


def kubeadm_version() -> str:
    """The Kubernetes release the built kubeadm is (scripts/tool-versions), without its "v"."""
    return tool_version("kubernetes").removeprefix("v")


def for_built_kubeadm(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the cluster on the release of the kubeadm under test.

    kubeadm deploys its own minor and the one before (kubernetes
    `cmd/kubeadm/app/constants/constants.go` MinimumControlPlaneVersion, checked in
    `cmd/kubeadm/app/util/config/common.go` NormalizeKubernetesVersion), warns in preflight when
    the control plane is newer than itself (`cmd/kubeadm/app/preflight/checks.go`
    KubernetesVersionCheck), and looks a label such as "stable-1.36" up on dl.k8s.io
    (`cmd/kubeadm/app/util/version.go` kubernetesReleaseVersion), which these offline tests
    cannot reach. So the stack names the exact release of the binary, a form the stack file
    accepts ("1.36" or "1.36.3": stackconfig/model.py); what the program renders from it is
    what kubeadm reads."""
    changed = copy.deepcopy(values)
    changed["cluster"]["kubernetesVersion"] = kubeadm_version()
    return changed


def loopback_stack(values: dict[str, Any], api_port: int) -> dict[str, Any]:
    """The example's machines plus a second controller, all on loopback, the API endpoint at
    127.0.0.1:`api_port`: the init controller's advertise address, the controlPlaneEndpoint and
    every join's discovery endpoint are this host's loopback."""
    changed = for_built_kubeadm(values)
    changed["cluster"]["apiEndpoint"] = f"127.0.0.1:{api_port}"
    machines = changed["machines"]
    controllers = [n for n, m in machines.items() if m["role"] == "controller"]
    # The init controller: the one marked `init`, else the first controller in file order.
    init = next((n for n in controllers if machines[n].get("init")), controllers[0])
    for index, (name, machine) in enumerate(machines.items()):
        # No gateway or DNS on loopback; machines without an address keep DHCP.
        machine.pop("gateway", None)
        machine.pop("dns", None)
        if name == init:
            machine["address"] = "127.0.0.1/8"
        elif "address" in machine:
            machine["address"] = f"127.0.0.{10 + index}/8"
    machines["c2"] = {
        "mac": "52:54:00:a1:00:c2",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "127.0.0.2/8",
    }
    return changed
