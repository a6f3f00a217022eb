"""Stacks for the real kubeadm and control plane: the example's settings, changed only where a
real kubeadm on this host needs it."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from tool_cache import tool_version


def kubeadm_version(tool: str = "kubernetes") -> str:
    """The Kubernetes release a built kubeadm is (scripts/tool-versions), without its "v"."""
    return tool_version(tool).removeprefix("v")


def for_built_kubeadm(values: dict[str, Any], tool: str = "kubernetes") -> dict[str, Any]:
    """`values` with the cluster on the release of the kubeadm under test (the tool's).

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
    changed["cluster"]["kubernetesVersion"] = kubeadm_version(tool)
    return changed


def _init_controller(machines: dict[str, Any]) -> str:
    """The one marked `init`, else the first controller in file order (stackconfig/model.py)."""
    controllers = [n for n, m in machines.items() if m["role"] == "controller"]
    return next((n for n in controllers if machines[n].get("init")), controllers[0])


def with_second_controller(values: dict[str, Any]) -> dict[str, Any]:
    """The example's machines plus a second controller `c2` beside the init controller, and
    the API endpoint at a virtual IP of their subnet (as kube-vip or keepalived would hold):
    with two controllers the program refuses an endpoint at one controller's own address
    (stackconfig/checks.py api_endpoint_problems)."""
    changed = for_built_kubeadm(values)
    machines = changed["machines"]
    init = machines[_init_controller(machines)]
    network = ipaddress.ip_interface(init["address"]).network
    used = {
        str(ipaddress.ip_interface(m["address"]).ip) for m in machines.values() if "address" in m
    }
    used |= {init.get("gateway", "")}
    free = (str(host) for host in network.hosts() if str(host) not in used)
    vip, second = next(free), next(free)
    machines["c2"] = {
        "mac": "52:54:00:a1:00:c2",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": f"{second}/{network.prefixlen}",
        **{key: copy.deepcopy(init[key]) for key in ("gateway", "dns") if key in init},
    }
    port = changed["cluster"]["apiEndpoint"].rpartition(":")[2]
    changed["cluster"]["apiEndpoint"] = f"{vip}:{port}"
    return changed
