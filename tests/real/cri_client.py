"""The kubelet's side of the CRI, from Python: the `runtime.v1.RuntimeService` calls the kubelet
makes to a container runtime, over its unix socket.

The stubs are compiled with grpcio-tools from the very `api.proto` the built kubelet speaks,
k8s.io/cri-api at the release of tool "kubelet" (kubernetes `staging/src/k8s.io/cri-api`,
v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>), out of the Go module cache that
scripts/tools filled; no generated code lives in the repository.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from matchbox_grpc import module_source
from tool_cache import tool_version

CRI_API_MODULE = "k8s.io/cri-api"
PROTO = "pkg/apis/runtime/v1/api.proto"
# The generated module's name (the proto's own, api_pb2, would be too generic to import).
MODULE = "cri_runtime_v1"


def cri_api_version() -> str:
    """k8s.io/cri-api's version for the built kubelet: v1.36.3 -> v0.36.3."""
    major, minor, patch = tool_version("kubelet").removeprefix("v").split(".")
    assert major == "1", major
    return f"v0.{minor}.{patch}"


@dataclass(frozen=True)
class CriStubs:
    pb2: types.ModuleType
    pb2_grpc: types.ModuleType


_STUBS: CriStubs | None = None
_LOCK = threading.Lock()


def cri_stubs(out_dir: Path) -> CriStubs:
    """Compile the CRI's api.proto into `out_dir` and import it (once per process: protobuf
    registers each file once)."""
    global _STUBS
    with _LOCK:
        if _STUBS is not None:
            return _STUBS
        source = module_source(CRI_API_MODULE, cri_api_version()) / PROTO
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out_dir / f"{MODULE}.proto")
        protoc = importlib.import_module("grpc_tools.protoc")  # no type information
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{out_dir}",
                f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                f"{MODULE}.proto",
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed ({status}) on {source}")
        sys.path.insert(0, str(out_dir))
        try:
            _STUBS = CriStubs(
                importlib.import_module(f"{MODULE}_pb2"),
                importlib.import_module(f"{MODULE}_pb2_grpc"),
            )
        finally:
            sys.path.remove(str(out_dir))
        return _STUBS


class CriClient:
    """RuntimeService on a unix socket, its answers as the CRI's JSON (protobuf field names)."""

    def __init__(self, socket: Path, stubs: CriStubs) -> None:
        self._stubs = stubs
        self._channel = grpc.insecure_channel(f"unix://{socket}")
        self._runtime = stubs.pb2_grpc.RuntimeServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: str, **fields: Any) -> dict[str, Any]:
        message = getattr(self._stubs.pb2, request)(**fields)
        answer = getattr(self._runtime, method)(message, timeout=10)
        # Fields at their zero value too: the cgroup driver SYSTEMD is the enum's zero.
        return dict(
            json_format.MessageToDict(
                answer,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
        )

    def version(self) -> dict[str, Any]:
        return self._call("Version", "VersionRequest", version="v1")

    def status(self) -> dict[str, Any]:
        """Status with verbose info; containerd puts its CRI config in info["config"] as JSON
        (containerd v2.2.9 `internal/cri/server/status.go`)."""
        return self._call("Status", "StatusRequest", verbose=True)

    def status_config(self) -> dict[str, Any]:
        return dict(json.loads(self.status()["info"]["config"]))

    def runtime_config(self) -> dict[str, Any]:
        """What the kubelet asks for its cgroup driver (KEP-4033, `RuntimeConfig`)."""
        return self._call("RuntimeConfig", "RuntimeConfigRequest")
