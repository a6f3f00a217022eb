"""kubeadm's static Pod manifests, turned into local processes.

On a machine the kubelet runs each manifest in `/etc/kubernetes/manifests` as a container
with the host's network (kubernetes `cmd/kubeadm/app/util/staticpod/utils.go` ComponentPod:
`hostNetwork: true`) and the host paths of its `hostPath` volumes mounted at their mountPaths.
A local process in the machine's network namespace (control_plane.netns) needs exactly this
of a manifest: its container's command, each path under a volume's mountPath moved to the
volume's hostPath inside the scratch root (`/etc/kubernetes/pki/ca.crt` ->
`<root>/etc/kubernetes/pki/ca.crt`). Every flag, address and port stays as kubeadm wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class StaticPod:
    name: str
    command: list[str]
    # mountPath -> hostPath, as the kubelet would mount them.
    mounts: dict[str, str]
    manifest: dict[str, Any]

    def flag(self, name: str) -> str | None:
        prefix = f"--{name}="
        values = [a[len(prefix) :] for a in self.command[1:] if a.startswith(prefix)]
        return values[-1] if values else None

    def flags(self) -> dict[str, str]:
        return {k: v for k, _, v in (a.partition("=") for a in self.command[1:])}


def static_pod(name: str, manifest: dict[str, Any]) -> StaticPod:
    """One manifest kubeadm wrote (one container, every flag in its command)."""
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert not container.get("args"), f"{name}: kubeadm puts every flag in command"
    volumes = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    return StaticPod(name, list(container["command"]), mounts, manifest)


def read_static_pods(root: Path) -> dict[str, StaticPod]:
    # Imported here: the kubelet stand-in (control_plane.kubelet_standin) uses this module in a
    # process of its own, which needs none of the program's modules control_plane.kubeadm imports.
    from control_plane.kubeadm import MANIFESTS_DIR

    pods: dict[str, StaticPod] = {}
    for path in sorted((root / MANIFESTS_DIR.lstrip("/")).glob("*.yaml")):
        pods[path.stem] = static_pod(path.stem, yaml.safe_load(path.read_text()))
    return pods


@dataclass(frozen=True)
class Translation:
    """From a container of the machine to a process of this host: the mounts, under `root`."""

    root: Path

    def host_path(self, path: str, mounts: dict[str, str]) -> str:
        inside = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
        if not inside:
            return path
        mount = max(inside, key=len)
        return str(self.root / mounts[mount].lstrip("/")) + path[len(mount) :]

    def argument(self, argument: str, mounts: dict[str, str]) -> str:
        name, sep, value = argument.partition("=")
        if not sep:
            return argument
        parts = [self.host_path(p, mounts) if p.startswith("/") else p for p in value.split(",")]
        return f"{name}={','.join(parts)}"

    def argv(self, pod: StaticPod, binary: Path) -> list[str]:
        """The process for `pod`: `binary` with every flag of the manifest, paths moved."""
        return [str(binary), *(self.argument(a, pod.mounts) for a in pod.command[1:])]
