"""Each machine reports its setup status to its cluster, writable with its own token alone.

- The program (under the SDK's mocks): per machine a ConfigMap in kube-system, and a Role and
  RoleBinding that let exactly that machine's bootstrap-token user get, update and patch exactly
  that ConfigMap (components/status_report.py).
- The machine (its Ignition, and the simulated host of tests/host/sim_machine.py): the REAL report
  script, started as its unit, after a REAL setup boot wrote the status, sends it with the REAL
  curl to a tiny HTTPS server here that answers as the API server would: it authenticates the
  bearer token (the bootstrap token authenticator, kubernetes
  plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go: user system:bootstrap:<id>),
  authorizes the request as the program's Role does (RBAC: verb `patch` on the ConfigMap named
  in the path, Kubernetes docs "Using RBAC Authorization"), and takes a JSON merge patch
  (Kubernetes API conventions, "Patch operations": PATCH with Content-Type
  application/merge-patch+json, RFC 7386), with a certificate the cluster's CA signed.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import datetime
import http.server
import ipaddress
import json
import os
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ignition_root import IGNITION_BINARY, apply_ignition, install_host_units
from real_tools import shellcheck, systemd_verify
from repo_paths import REPO, TEST_SEED
from sim_cluster import empty_cluster
from sim_machine import SimMachine
from sim_systemd import parse_unit

from ignition.material import ClusterMaterial, standin_bootstrap_token
from ignition.node import SetupPolicy, machine_ignition, machine_ignition_json
from ignition.status_report import (
    CLUSTER_CA,
    REPORT_BIN,
    REPORT_PATH,
    REPORT_SERVICE,
    REPORT_TIMER,
    status_configmap,
)
from stackconfig import StackConfig, parse_stack_config
from stubernetes.mocks import Registration, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program

pytest_plugins = ["sim_fixtures"]

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
SECRET = "kubernetes:core/v1:Secret"
COMMAND = "command:local:Command"
REPORT_SCRIPT = REPO / "ignition/files/setup/report-status"
FAST = SetupPolicy(max_attempts=4, backoff_base_seconds=0, backoff_max_seconds=1)


# --------------------------------------------------------------------------- the program


@pytest.fixture(scope="module")
def run(example_values: dict[str, Any]) -> ProgramRun:
    return run_program(example_values, ["matchbox"])


def _of(run: ProgramRun, type_: str) -> list[Registration]:
    return [r for r in run.registrations if r.type == type_]


def _by_machine(run: ProgramRun, type_: str) -> dict[str, Registration]:
    """Each machine's status-report object of this type (not kubeadm's Role for its certs)."""
    return {
        r.name.removeprefix("lab-").removesuffix("-status"): r
        for r in _of(run, type_)
        if r.name.endswith("-status")
    }


def _token_ids(run: ProgramRun) -> dict[str, str]:
    """Each machine's token id, from the bootstrap-token Secret the program creates for it."""
    ids = {}
    for secret in _of(run, SECRET):
        data = unwrap_secrets(secret.inputs)["stringData"]
        ids[secret.name.removeprefix("lab-").removesuffix("-bootstrap-token")] = data["token-id"]
    return ids


def test_every_machine_has_its_own_configmap_role_and_binding(run: ProgramRun) -> None:
    machines = {"c1", "w1", "w2"}
    configmaps, roles = _by_machine(run, CONFIGMAP), _by_machine(run, ROLE)
    bindings = _by_machine(run, BINDING)
    assert set(configmaps) == set(roles) == set(bindings) == machines
    ids = _token_ids(run)
    assert len(set(ids.values())) == len(machines)
    for machine in machines:
        name = status_configmap(machine)
        assert name == f"stubernetes-status-{machine}"
        for registration in (configmaps[machine], roles[machine], bindings[machine]):
            metadata = registration.inputs["metadata"]
            assert (metadata["name"], metadata["namespace"]) == (name, "kube-system")
            assert metadata["labels"]["stubernetes.dev/status-of"] == machine
        # The data is the machine's to write; the program sends none.
        assert "data" not in configmaps[machine].inputs
        assert roles[machine].inputs["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [name],
                "verbs": ["get", "update", "patch"],
            }
        ]
        binding = bindings[machine].inputs
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        # Exactly the user this machine's token authenticates as: not its groups, which every
        # machine's token shares, and not another machine's.
        assert binding["subjects"] == [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": f"system:bootstrap:{ids[machine]}",
            }
        ]


def test_the_report_is_the_machines_and_a_reinstall_starts_an_empty_one(run: ProgramRun) -> None:
    anchors = {
        r.name.removeprefix("lab-").removesuffix("-install"): r.urn
        for r in _of(run, "random:index/randomId:RandomId")
    }
    for machine, configmap in _by_machine(run, CONFIGMAP).items():
        assert configmap.ignore_changes == ["data"]
        assert configmap.replace_with == [anchors[machine]]
        # Its name is fixed: a create-before-delete replacement would delete its successor.
        assert configmap.delete_before_replace


def test_the_report_objects_wait_for_the_api_server_as_the_tokens_do(run: ProgramRun) -> None:
    (api,) = [r for r in _of(run, COMMAND) if r.name == "lab-api-server"]
    rejoin = {r.name: r.urn for r in _of(run, COMMAND) if r.name.endswith("-rejoin")}
    for type_ in (CONFIGMAP, ROLE, BINDING):
        for machine, registration in _by_machine(run, type_).items():
            assert api.urn in registration.dependencies, (type_, machine)
            # The founding controller's report waits for it, as its token does: on a rebuild
            # the old API server is gone until it is back.
            founding = rejoin[f"lab-{machine}-rejoin"] in registration.dependencies
            assert founding == (machine == "c1"), (type_, machine)
    for machine, binding in _by_machine(run, BINDING).items():
        (role,) = [r for r in _of(run, ROLE) if r.name == binding.name]
        assert role.urn in binding.dependencies, machine


# --------------------------------------------------------------------------- the Ignition


def test_every_machine_gets_the_report_script_the_ca_and_units(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    for machine in example_stack.machines:
        token = standin_bootstrap_token(TEST_SEED, machine.name)
        config = machine_ignition(example_stack, machine, material, token)
        files = {f["path"]: f for f in config["storage"]["files"]}
        assert files[REPORT_BIN]["mode"] == 0o755
        assert files[CLUSTER_CA]["mode"] == 0o644
        # Outside /etc/stubernetes/pki, which the setup copies into kubeadm's PKI.
        assert not CLUSTER_CA.startswith("/etc/stubernetes/pki/")
        units = {u["name"]: u for u in config["systemd"]["units"]}
        # The path unit and the timer are enabled; the service has no [Install]: they start it.
        assert units[REPORT_PATH]["enabled"] and units[REPORT_TIMER]["enabled"]
        assert "enabled" not in units[REPORT_SERVICE]
        assert "[Install]" not in units[REPORT_SERVICE]["contents"]


def test_the_report_script_is_shellcheck_clean() -> None:
    assert shellcheck([REPORT_SCRIPT], cwd=REPORT_SCRIPT.parent) == ""


@pytest.mark.skipif(not IGNITION_BINARY.exists(), reason="the Ignition binary is missing")
def test_the_real_ignition_writes_units_systemd_accepts(
    served_stack: StackConfig, material: ClusterMaterial, tmp_path: Path
) -> None:
    machine = served_stack.machine("w1")
    config = machine_ignition_json(served_stack, machine, material, _token("w1"))
    root, work = tmp_path / "root", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    apply_ignition(config, root, work)
    assert (root / CLUSTER_CA.lstrip("/")).read_text() == material.ca.cert_pem
    script = root / REPORT_BIN.lstrip("/")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert shellcheck([script], cwd=script.parent) == ""
    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text().splitlines()
    assert {f"enable {REPORT_PATH}", f"enable {REPORT_TIMER}"} <= set(preset)
    assert not any(REPORT_SERVICE in line for line in preset)
    install_host_units(root)
    for unit in (REPORT_SERVICE, REPORT_PATH, REPORT_TIMER):
        assert systemd_verify(root, f"/etc/systemd/system/{unit}") == "", unit


# systemd's PathChanged= watch of the file itself (src/core/path.c flags_table[PATH_CHANGED]).
IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
PATH_CHANGED_MASK = (
    IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
)


def test_a_status_update_is_an_event_on_the_watched_file(tmp_path: Path) -> None:
    """The setup's status_set (common.sh) renames a new file over the status; a PathChanged=
    unit fires on any event on the watch of the file itself (path_spec_fd_event: `primary_wd`),
    which the real kernel gives here as the old file loses its name."""
    libc = ctypes.CDLL(None, use_errno=True)
    status = tmp_path / "status"
    status.write_text("phase=node\n")
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0, ctypes.get_errno()
    try:
        wd = libc.inotify_add_watch(fd, str(status).encode(), PATH_CHANGED_MASK)
        assert wd >= 0, ctypes.get_errno()
        common = REPO / "ignition/files/setup/common.sh"
        script = f". {common}; STATE_DIR={tmp_path}; STATUS_FILE={status}; status_set state running"
        subprocess.run(["bash", "-c", script], check=True, timeout=30)
        events = os.read(fd, 4096)
    finally:
        os.close(fd)
    masks = []
    while events:
        event_wd, mask, _, length = struct.unpack_from("iIII", events)
        if event_wd == wd:
            masks.append(mask)
        events = events[16 + length :]
    assert any(mask & PATH_CHANGED_MASK for mask in masks), masks
    assert "state=running" in status.read_text()


# --------------------------------------------------------------------------- the simulated host

NEEDS_SIM = (
    pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root"),
    pytest.mark.skipif(not IGNITION_BINARY.exists(), reason="the Ignition binary is missing"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is missing"),
)


def simulated(test: Callable[..., None]) -> Callable[..., None]:
    for mark in NEEDS_SIM:
        test = mark(test)
    return test


@dataclass
class ApiServer:
    """Answers PATCH of ConfigMaps as the API server would for the program's RBAC rules."""

    tokens: dict[str, str]  # token -> the user it authenticates as
    allowed: dict[str, str]  # user -> the one ConfigMap it may patch
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        self.requests.append(
            {"method": method, "path": path, "headers": dict(headers), "body": body}
        )
        prefix = "/api/v1/namespaces/kube-system/configmaps/"
        auth = headers.get("Authorization", "")
        user = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if user is None:
            return 401, {"kind": "Status", "reason": "Unauthorized", "code": 401}
        name = path.removeprefix(prefix)
        if method != "PATCH" or not path.startswith(prefix) or self.allowed.get(user) != name:
            message = f'configmaps "{name}" is forbidden: User "{user}" cannot patch'
            return 403, {"kind": "Status", "reason": "Forbidden", "message": message}
        if headers.get("Content-Type") != "application/merge-patch+json":
            return 415, {"kind": "Status", "reason": "UnsupportedMediaType", "code": 415}
        if name not in self.configmaps:
            return 404, {"kind": "Status", "reason": "NotFound", "code": 404}
        patch = json.loads(body)
        assert set(patch) == {"data"}, patch
        # RFC 7386: keys merge in, a null removes one.
        data = self.configmaps[name]
        for key, value in patch["data"].items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return 200, {"kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _server_certificate(material: ClusterMaterial, workdir: Path) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 signed by the cluster's CA, as kubeadm's apiserver
    certificate is."""
    ca_cert = x509.load_pem_x509_certificate(material.ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(material.ca.key_pem.encode(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _signed(ca_cert.subject, ca_key, workdir)


def _signed(
    issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, workdir: Path
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(signer, hashes.SHA256())
    )
    cert_path, key_path = workdir / "server.crt", workdir / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    api: ApiServer

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def _answer(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        code, document = self.api.handle(method, self.path, self.headers, body)
        payload = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(api: ApiServer, cert: Path, key: Path) -> Iterator[ApiServer]:
    handler = type("Handler", (_Handler,), {"api": api})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _token(machine: str) -> str:
    return standin_bootstrap_token(TEST_SEED, machine)


def _user(machine: str) -> str:
    return f"system:bootstrap:{_token(machine).partition('.')[0]}"


def _api(*machines: str) -> ApiServer:
    """The cluster once the program has added these machines' tokens, ConfigMaps and RBAC."""
    return ApiServer(
        tokens={_token(m): _user(m) for m in machines},
        allowed={_user(m): status_configmap(m) for m in machines},
        configmaps={status_configmap(m): {} for m in machines},
    )


def _stack_at(values: dict[str, Any], port: int) -> StackConfig:
    """The stack with its API endpoint at this test's API server on loopback. The stack check
    refuses a loopback apiEndpoint (no other machine of a rack could reach it), so the address
    is set on the parsed stack, past the check, as only this simulated host can use it."""
    stack = parse_stack_config(copy.deepcopy(values))
    cluster = stack.cluster.model_copy(update={"api_endpoint": f"127.0.0.1:{port}"})
    return stack.model_copy(update={"cluster": cluster})


def _machine(
    tmp_path: Path, values: dict[str, Any], material: ClusterMaterial, port: int, name: str
) -> SimMachine:
    stack = _stack_at(values, port)
    config = machine_ignition_json(stack, stack.machine(name), material, _token(name), FAST)
    return SimMachine.create(tmp_path / name, config, empty_cluster())


def _set_up(machine: SimMachine) -> dict[str, str]:
    """The one boot of the setup. Nothing answers for the cluster here (the stand-ins' cluster
    is empty), so a worker's join fails until setup gives up (state=failed), and the founding
    controller inits its cluster (state=done)."""
    boot = machine.boot()
    assert boot.ran and not boot.reboot_requested, boot
    return machine.status()


def _real_curl(machine: SimMachine) -> None:
    """The report's curl is the real one (the setup's own curl calls stay the stand-in's)."""
    link = machine.sim / "bin/curl"
    link.unlink()
    curl = shutil.which("curl")
    assert curl is not None
    link.symlink_to(curl)


def _expected_data(machine: SimMachine) -> dict[str, str]:
    return {
        **machine.status(),
        "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
    }


@pytest.fixture
def signed(material: ClusterMaterial, tmp_path: Path) -> tuple[Path, Path]:
    return _server_certificate(material, tmp_path)


@pytest.mark.parametrize("name", ["w1", "c1"])
@simulated
def test_the_report_patches_the_machines_own_configmap_with_its_token(
    tmp_path: Path,
    served_values: dict[str, Any],
    material: ClusterMaterial,
    signed: tuple[Path, Path],
    name: str,
) -> None:
    with serving(_api("c1", "w1", "w2"), *signed) as api:
        machine = _machine(tmp_path, served_values, material, api.port, name)
        status = _set_up(machine)
        assert status["state"] == ("done" if name == "c1" else "failed"), status
        assert name == "c1" or "phase kubeadm exited" in status["last_error"]
        _real_curl(machine)
        boot = machine.start_unit(REPORT_SERVICE)
        assert boot.exit_code == 0, boot.journal
        assert len(api.requests) == 1, boot.journal
        (request,) = api.requests
        assert request["method"] == "PATCH"
        assert (
            request["path"]
            == f"/api/v1/namespaces/kube-system/configmaps/stubernetes-status-{name}"
        )
        assert request["headers"]["Authorization"] == f"Bearer {_token(name)}"
        assert request["headers"]["Content-Type"] == "application/merge-patch+json"
        assert json.loads(request["body"]) == {"data": _expected_data(machine)}
        assert api.configmaps[status_configmap(name)] == _expected_data(machine)
        # Nothing new: nothing sent; and after the final status, nothing ever again.
        again = machine.start_unit(REPORT_SERVICE)
        assert (not again.ran) if name == "c1" else (again.exit_code == 0), again
        assert len(api.requests) == 1
        # Other machines' reports are untouched.
        assert all(
            data == {} for cm, data in api.configmaps.items() if cm != status_configmap(name)
        )


@simulated
def test_a_refused_report_never_fails_and_is_sent_again_later(
    tmp_path: Path,
    served_values: dict[str, Any],
    material: ClusterMaterial,
    signed: tuple[Path, Path],
) -> None:
    # Before the program has added this machine's token and RBAC, the API server refuses it.
    with serving(_api("c1"), *signed) as api:
        machine = _machine(tmp_path, served_values, material, api.port, "w1")
        _set_up(machine)
        _real_curl(machine)
        boot = machine.start_unit(REPORT_SERVICE)
        assert boot.exit_code == 0, boot.journal
        assert "not taken (HTTP 401)" in boot.journal
        assert not machine.file("/var/lib/stubernetes/status.reported").exists()
        # The program adds them; the timer's next start delivers the same status.
        api.tokens[_token("w1")] = _user("w1")
        retry = machine.start_unit(REPORT_SERVICE)
        assert "not taken (HTTP 403)" in retry.journal
        api.allowed[_user("w1")] = status_configmap("w1")
        api.configmaps[status_configmap("w1")] = {}
        delivered = machine.start_unit(REPORT_SERVICE)
        assert delivered.exit_code == 0
        assert api.configmaps[status_configmap("w1")] == _expected_data(machine)
        assert machine.file("/var/lib/stubernetes/status.reported").read_text() == (
            machine.file("/var/lib/stubernetes/status").read_text()
        )


@simulated
def test_no_answer_is_no_failure(
    tmp_path: Path, served_values: dict[str, Any], material: ClusterMaterial
) -> None:
    # Nothing listens at the API endpoint (the founding controller's, before its API server runs).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    machine = _machine(tmp_path, served_values, material, port, "c1")
    _set_up(machine)
    _real_curl(machine)
    boot = machine.start_unit(REPORT_SERVICE)
    assert boot.exit_code == 0
    assert "not taken (HTTP 000)" in boot.journal
    assert not machine.file("/var/lib/stubernetes/status.reported").exists()


@simulated
def test_the_token_goes_to_no_server_the_cluster_ca_did_not_sign(
    tmp_path: Path, served_values: dict[str, Any], material: ClusterMaterial
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")])
    cert, key = _signed(name, stranger, tmp_path)
    with serving(_api("w1"), cert, key) as api:
        machine = _machine(tmp_path, served_values, material, api.port, "w1")
        _set_up(machine)
        _real_curl(machine)
        boot = machine.start_unit(REPORT_SERVICE)
        assert boot.exit_code == 0
        assert api.requests == []  # the TLS handshake failed before any header was sent
        assert "not taken (HTTP 000)" in boot.journal


@simulated
def test_once_the_cluster_has_the_final_status_the_reports_stop(
    tmp_path: Path,
    served_values: dict[str, Any],
    material: ClusterMaterial,
    signed: tuple[Path, Path],
) -> None:
    with serving(_api("c1"), *signed) as api:
        machine = _machine(tmp_path, served_values, material, api.port, "c1")
        assert _set_up(machine)["state"] == "done"
        _real_curl(machine)
        assert machine.start_unit(REPORT_SERVICE).exit_code == 0
        assert api.configmaps[status_configmap("c1")]["state"] == "done"
        assert machine.file("/var/lib/stubernetes/status.reported-final").exists()
        assert not machine.start_unit(REPORT_SERVICE).ran
    for unit in (REPORT_SERVICE, REPORT_PATH, REPORT_TIMER):
        text = machine.file(f"/etc/systemd/system/{unit}").read_text()
        assert "ConditionPathExists=!/var/lib/stubernetes/status.reported-final" in text, unit
    service = parse_unit(machine.file(f"/etc/systemd/system/{REPORT_SERVICE}").read_text())
    assert service.exec_start == (("", (REPORT_BIN,)),)
    path_unit = machine.file(f"/etc/systemd/system/{REPORT_PATH}").read_text()
    assert "PathChanged=/var/lib/stubernetes/status" in path_unit
