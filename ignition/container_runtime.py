"""The container runtime's configuration on a node: the containerd Fedora CoreOS ships."""

from __future__ import annotations

from typing import Final

from ignition.assets import render_template
from stackconfig.model import StackConfig

# kubeadm's pause image per Kubernetes minor: cmd/kubeadm/app/constants/constants.go
# PauseVersion at v1.35.8 (3.10.1), v1.36.3 and v1.37.2 (3.10.2). containerd's own default
# differs (v2.2.9 internal/cri/config/config.go DefaultSandboxImage, pause:3.10.1), and kubeadm
# cannot see containerd 2's setting to warn about it, so the node names kubeadm's.
PAUSE_VERSIONS: Final = {"1.35": "3.10.1", "1.36": "3.10.2", "1.37": "3.10.2"}


def sandbox_image(stack: StackConfig) -> str:
    return f"registry.k8s.io/pause:{PAUSE_VERSIONS[stack.cluster.kubernetes_minor]}"


def containerd_config(stack: StackConfig) -> str:
    """/etc/containerd/config.toml (ignition/files/templates/containerd-config.toml)."""
    return render_template("containerd-config.toml", sandbox_image=sandbox_image(stack))
