"""Find the real counterpart tools that scripts/tools builds from Go modules.

The versions come from scripts/tool-versions and the cache root is the one scripts/tools uses:
${STUBERNETES_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stubernetes-tools}, one
<tool>-<version>/bin per tool, complete once <tool>-<version>/.complete exists (it holds the
digest of the recipe that built the tool, which scripts/tools compares before the tests run).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parents[2] / "scripts" / "tool-versions"

# Each tool scripts/tools knows, with the name of its version in scripts/tool-versions.
TOOL_VARIABLES = {
    "matchbox": "MATCHBOX",
    "ignition": "IGNITION",
    "etcd": "ETCD",
    "etcdutl": "ETCD",
    "kwok": "KWOK",
    "helm": "HELM",
    "kubernetes": "KUBERNETES",
    "kubelet": "KUBERNETES",
    "kube-proxy": "KUBERNETES",
    "kubernetes-upgrade": "KUBERNETES_UPGRADE",
    "kubernetes-previous": "KUBERNETES_PREVIOUS",
    "cni-plugins": "CNI_PLUGINS",
    "containerd": "CONTAINERD",
    "containerd-shim": "CONTAINERD",
    "cri-tools": "CRI_TOOLS",
    "metallb": "METALLB",
    "pulumi": "PULUMI",
    "pulumi-kubernetes": "PULUMI_KUBERNETES",
}

_ASSIGNMENT = re.compile(r"([A-Z][A-Z0-9_]*)=([^\s\"'$`\\#;]+)")


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The NAME=value lines of a versions file; comment and blank lines are skipped."""
    versions: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(stripped)
        if match is None:
            raise ValueError(f"{path}:{number}: not a plain NAME=value line: {line!r}")
        versions[match.group(1)] = match.group(2)
    return versions


VERSIONS: dict[str, str] = read_versions()


def cache_root() -> Path:
    """Where scripts/tools puts its builds (an empty variable counts as unset, as in the shell)."""
    explicit = os.environ.get("STUBERNETES_TOOLS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "stubernetes-tools"


def tool_version(tool: str) -> str:
    """The version a tool's cache directory is named after, as scripts/tools names it."""
    if tool not in TOOL_VARIABLES:
        raise ValueError(f"unknown tool {tool!r} (known: {' '.join(TOOL_VARIABLES)})")
    if tool == "pulumi-kubernetes":
        # The label it reports, then the commit of the only provider module version served.
        commit = VERSIONS["PULUMI_KUBERNETES"].rsplit("-", 1)[-1]
        return f"{VERSIONS['PULUMI_KUBERNETES_LABEL']}-{commit}"
    return VERSIONS[TOOL_VARIABLES[tool]]


def tool_dir(tool: str) -> Path:
    return cache_root() / f"{tool}-{tool_version(tool)}"


def tool_bin(tool: str, binary: str) -> Path | None:
    """The built binary, or None while the tool's build is missing or incomplete."""
    directory = tool_dir(tool)
    path = directory / "bin" / binary
    if not (directory / ".complete").is_file() or not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        return None
    return path


def require_tool(tool: str, binary: str) -> Path:
    """The built binary; raises with the command that builds it when it is not there."""
    path = tool_bin(tool, binary)
    if path is None:
        raise RuntimeError(
            f"{binary} from {tool} {tool_version(tool)} is not built in {tool_dir(tool)}: "
            f"run ./scripts/tools {tool}"
        )
    return path
