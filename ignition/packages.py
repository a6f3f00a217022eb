"""What the setup service layers onto Fedora CoreOS with rpm-ostree, and from which repositories.

Every name is what `rpm-ostree install` and `rpm -q` both take: a bare name, or name-version
for an exact release (libdnf matches "kubeadm-1.36.3" by its NEV form, any release of that
version; rpm -q takes NAME-VERSION alike).
"""

from __future__ import annotations

from stackconfig.model import StackConfig

# From the Kubernetes repository of the cluster's minor (pkgs.k8s.io core:/stable:/v<minor>);
# kubelet pulls in kubernetes-cni (the reference CNI plugins in /opt/cni/bin).
KUBERNETES_PACKAGES = ("kubelet", "kubeadm", "kubectl")
# From the CRI-O repository of the same minor: CRI-O's minor follows Kubernetes' minor, but its
# patch releases are its own, so it is never pinned to the Kubernetes patch.
CRI_PACKAGE = "cri-o"
# From Fedora's own repositories, which Fedora CoreOS has enabled:
# - conntrack-tools: kubeadm before 1.32 requires `conntrack` in its preflight checks; kept for
#   every version, as the tool to read the connection tracking table on a node;
# - cri-tools: crictl, which kubeadm's own failure messages tell the operator to run; the
#   kubeadm rpm no longer requires it from 1.32 on.
HOST_TOOLS = ("conntrack-tools", "cri-tools")


def layered_packages(stack: StackConfig) -> tuple[str, ...]:
    """The packages to layer, with the Kubernetes ones pinned when the stack names a patch."""
    patch = stack.cluster.kubernetes_patch
    kubernetes = tuple(f"{name}-{patch}" if patch else name for name in KUBERNETES_PACKAGES)
    return (*kubernetes, CRI_PACKAGE, *HOST_TOOLS)
