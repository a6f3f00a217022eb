"""What the program hands to the world, read back from a run under the SDK's mocks.

Nothing here rebuilds the program's output from its parts: each machine's files come out of
the Ignition in its Matchbox profile (`rawIgnition`, what Matchbox serves), the token Secrets
and the core release are the inputs the program registers, and the admin kubeconfig is the
stack's `kubeconfig` output. Under mocks the PKI is the stand-in one (`stubernetes/mocks.py`,
`stubernetes/standin_pki.py`): real keys, so the whole output is self-consistent.
"""

from __future__ import annotations

import base64
import copy
import datetime
import gzip
import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.machine import matchbox_id
from stackconfig import StackConfig, parse_stack_config
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks, unwrap_secrets
from stubernetes.program_run import run_program
from stubernetes.render import matchbox_files

PROFILE = "matchbox:index/profile:Profile"
SECRET = "kubernetes:core/v1:Secret"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"
# The RBAC the program creates through the Kubernetes provider (kubeadm's for kubeadm-certs).
RBAC = (
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
)
# The stack's secret settings, as the example stack file marks them (`secure:`).
SECRET_KEYS = ("matchbox",)
CONF_DIR = "/etc/stubernetes"
KUBEADM_CONFIG = f"{CONF_DIR}/kubeadm.yaml"
SHARED_PKI = f"{CONF_DIR}/pki"


@dataclass(frozen=True)
class IgnitionFile:
    path: str
    contents: bytes
    mode: int


def _decode_source(source: str) -> bytes:
    """An RFC 2397 data URL, as Ignition reads `contents.source`."""
    if not source.startswith("data:"):
        raise ValueError(f"not a data URL: {source[:40]!r}")
    header, _, payload = source[len("data:") :].partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(payload)
    return urllib.parse.unquote_to_bytes(payload)


def _is_download(entry: Mapping[str, Any]) -> bool:
    """A file Ignition fetches from a remote source (the node's binaries:
    ignition/node_binaries.py), not one the config carries."""
    return not str(entry.get("contents", {}).get("source", "data:,")).startswith("data:")


@dataclass(frozen=True)
class IgnitionDownload:
    path: str
    source: str
    sha256: str
    mode: int


def ignition_downloads(config: Mapping[str, Any]) -> dict[str, IgnitionDownload]:
    """Every `storage.files` entry Ignition fetches, with the sha256 it checks it against."""
    downloads: dict[str, IgnitionDownload] = {}
    for entry in config.get("storage", {}).get("files", []):
        if not _is_download(entry):
            continue
        contents = entry["contents"]
        kind, _, digest = contents["verification"]["hash"].partition("-")
        assert kind == "sha256", contents["verification"]
        downloads[entry["path"]] = IgnitionDownload(
            entry["path"], contents["source"], digest, int(entry["mode"])
        )
    return downloads


def ignition_files(config: Mapping[str, Any]) -> dict[str, IgnitionFile]:
    """Every `storage.files` entry an Ignition config carries, its hash checked as Ignition
    does (the ones it downloads are `ignition_downloads`)."""
    files: dict[str, IgnitionFile] = {}
    for entry in config.get("storage", {}).get("files", []):
        if _is_download(entry):
            continue
        contents = entry.get("contents", {})
        raw = _decode_source(contents.get("source", "data:,"))
        compression = contents.get("compression", "")
        if compression == "gzip":
            raw = gzip.decompress(raw)
        elif compression:
            raise ValueError(f"{entry['path']}: unknown compression {compression!r}")
        expected = contents.get("verification", {}).get("hash")
        if expected is not None:
            kind, _, digest = expected.partition("-")
            assert kind == "sha512", expected
            assert hashlib.sha512(raw).hexdigest() == digest, f"{entry['path']}: hash mismatch"
        files[entry["path"]] = IgnitionFile(entry["path"], raw, int(entry.get("mode", 0o644)))
    return files


@dataclass(frozen=True)
class MachineOutput:
    name: str
    role: str
    init: bool
    ignition: dict[str, Any]
    files: dict[str, IgnitionFile]

    @property
    def kubeadm_yaml(self) -> str:
        return self.files[KUBEADM_CONFIG].contents.decode()

    def kubeadm_configs(self) -> list[str]:
        """Every kubeadm config file in the Ignition: /etc/stubernetes/kubeadm*.yaml."""
        return [
            p
            for p in self.files
            if p.startswith(f"{CONF_DIR}/kubeadm") and p.endswith(".yaml") and p.count("/") == 3
        ]

    def kubeadm_documents(self) -> dict[str, dict[str, Any]]:
        """kubeadm's documents by kind (InitConfiguration, JoinConfiguration, ...)."""
        return {d["kind"]: d for d in yaml.safe_load_all(self.kubeadm_yaml) if d}

    def shared_pki(self) -> dict[str, IgnitionFile]:
        """The CA material under /etc/stubernetes/pki, by its path relative to that folder."""
        prefix = SHARED_PKI + "/"
        return {p[len(prefix) :]: f for p, f in self.files.items() if p.startswith(prefix)}


@dataclass(frozen=True)
class ProgramOutput:
    stack: StackConfig
    machines: dict[str, MachineOutput]
    # Each machine's bootstrap-token Secret as the program asks the Kubernetes provider for it.
    token_secrets: dict[str, dict[str, Any]]
    admin_kubeconfig: str
    releases: dict[str, dict[str, Any]]
    commands: dict[str, dict[str, Any]]
    # Every kubeconfig the stack exports, by output name (`kubeconfig` is the admin's).
    kubeconfigs: dict[str, str]
    # The Roles and RoleBindings the program asks the Kubernetes provider for, by resource name
    # and kind ("lab-kubeadm-certs/Role").
    rbac: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Matchbox's data directory as `stubernetes render` writes it from the same run (path under
    # the render's folder, "matchbox/profiles/<id>.json" ... -> bytes): what the lab's real
    # Matchbox serves a real node of this cluster.
    matchbox_data: dict[Path, bytes] = field(default_factory=dict)
    # The ConfigMaps the program creates (each machine's status report and upgrade channel),
    # by resource name, as it asks the Kubernetes provider for them.
    configmaps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def init_controller(self) -> MachineOutput:
        (init,) = [m for m in self.machines.values() if m.init]
        return init

    def command(self, script: str, machine: str | None = None) -> dict[str, Any]:
        """The local Command whose `create` runs `script` (components/scripts/<script>, with
        its arguments), for `machine` where given, as registered."""
        (found,) = [
            c
            for c in self.commands.values()
            if str(c["create"]).startswith(f"bash components/scripts/{script}")
            and (machine is None or c["environment"].get("MACHINE") == machine)
        ]
        return found


def _machine_of(registration: Registration, by_component: Mapping[str, str]) -> str:
    component = registration.parent.rsplit("::", 1)[-1]
    return by_component[component]


def _manifest(inputs: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable")
    return {key: copy.deepcopy(inputs[key]) for key in keys if key in inputs}


def render_program(values: Mapping[str, Any], seed: str = "control-plane-tests") -> ProgramOutput:
    """Run the program under mocks with `values` as the stack's config; read its output."""
    stack = parse_stack_config(dict(values))
    # The stand-in world's clock at the real time: the API server checks certificates' validity
    # and bootstrap tokens' expiration against it.
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    monitor = RecordingMonitor(StandInMocks(seed, now=now))
    run = run_program(values, SECRET_KEYS, seed=seed, monitor=monitor)
    by_profile = {matchbox_id(stack, m): m for m in stack.machines}
    machines: dict[str, MachineOutput] = {}
    secrets: dict[str, dict[str, Any]] = {}
    releases: dict[str, dict[str, Any]] = {}
    commands: dict[str, dict[str, Any]] = {}
    rbac: dict[str, dict[str, Any]] = {}
    configmaps: dict[str, dict[str, Any]] = {}
    for registration in run.registrations:
        inputs = unwrap_secrets(registration.inputs)
        if registration.type == PROFILE:
            machine = by_profile[inputs["name"]]
            config = json.loads(inputs["rawIgnition"])
            machines[machine.name] = MachineOutput(
                machine.name,
                machine.role,
                stack.bootstraps_cluster(machine),
                config,
                ignition_files(config),
            )
        elif registration.type == SECRET:
            name = _machine_of(registration, {k: m.name for k, m in by_profile.items()})
            secrets[name] = _manifest(inputs)
        elif registration.type == CONFIGMAP:
            configmaps[registration.name] = _manifest(inputs)
        elif registration.type == RELEASE:
            releases[registration.name] = inputs
        elif registration.type == COMMAND:
            commands[registration.name] = inputs
        elif registration.type in RBAC:
            keys = ("apiVersion", "kind", "metadata", "rules", "roleRef", "subjects")
            rbac[f"{registration.name}/{inputs['kind']}"] = {
                key: copy.deepcopy(inputs[key]) for key in keys if key in inputs
            }
    kubeconfigs = {
        name: unwrap_secrets(value)
        for name, value in run.stack_outputs.items()
        if name.lower().endswith("kubeconfig")
    }
    assert all(isinstance(v, str) for v in kubeconfigs.values())
    return ProgramOutput(
        stack,
        machines,
        secrets,
        kubeconfigs["kubeconfig"],
        releases,
        commands,
        kubeconfigs,
        rbac,
        matchbox_files(run.registrations),
        configmaps,
    )
