"""A real Matchbox for tests: start it on loopback, and talk to its gRPC API from Python.

* :func:`start_matchbox` runs the binary ``scripts/tools`` builds (``tool_cache``) with the flags
  of poseidon/matchbox ``cmd/matchbox/main.go``: ``-address`` (HTTP), ``-data-path``,
  ``-assets-path``, ``-log-level``, and for the gRPC API ``-rpc-address`` with ``-cert-file``,
  ``-key-file`` and ``-ca-file`` (the CA that client certificates must chain to; the server
  requires one: ``matchbox/tlsutil/tls.go`` ServerConfig, ``tls.RequireAndVerifyClientCert``).
* :func:`make_tls_material` writes a CA, a server certificate for 127.0.0.1/localhost and a
  client certificate, made with ``cryptography``.
* :func:`generate_stubs` compiles Matchbox's own ``.proto`` files (``matchbox/rpc/rpcpb/rpc.proto``,
  ``matchbox/server/serverpb/messages.proto``, ``matchbox/storage/storagepb/storage.proto``) from
  the Go module cache with grpcio-tools into a directory of the caller's choosing and imports
  them; no generated code lives in the repository.
* :class:`MatchboxClient` puts, gets, lists and deletes profiles, groups and Ignition through
  the ``Profiles``, ``Groups`` and ``Ignition`` services, in the JSON form of the files in
  Matchbox's ``-data-path`` (what ``stubernetes render`` writes).
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import json
import os
import re
import sys
import threading
import types
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from go_modules import module_dir
from google.protobuf import json_format
from real_process import RealProcess, free_port, port_open, start
from tool_cache import require_tool, tool_version

JsonObject = dict[str, Any]

MATCHBOX_MODULE = "github.com/poseidon/matchbox"
IGNITION_MODULE = "github.com/coreos/ignition/v2"
# Relative to the module root; rpc.proto imports messages.proto, which imports storage.proto.
PROTO_FILES = (
    "matchbox/rpc/rpcpb/rpc.proto",
    "matchbox/server/serverpb/messages.proto",
    "matchbox/storage/storagepb/storage.proto",
)


# ----------------------------------------------------------------- the Go module cache


def module_source(module: str, version: str) -> Path:
    """The unpacked source of ``module@version``, wherever the module cache is: Go answers from
    its cache, or fetches it again when the cache lost it since the tool's build
    (go_modules.module_dir)."""
    return module_dir(module, version)


def matchbox_source() -> Path:
    """Matchbox's source at the version ``scripts/tools`` builds."""
    return module_source(MATCHBOX_MODULE, tool_version("matchbox"))


# ------------------------------------------------------------------------------ stubs


@dataclass(frozen=True)
class Stubs:
    """The generated modules (untyped: protoc writes no type information mypy reads here)."""

    source: Path
    rpc_pb2_grpc: types.ModuleType
    messages_pb2: types.ModuleType
    storage_pb2: types.ModuleType


_STUBS: Stubs | None = None
_STUBS_LOCK = threading.Lock()


def generate_stubs(out_dir: Path, source: Path | None = None) -> Stubs:
    """Compile Matchbox's ``.proto`` files into ``out_dir`` and import them.

    The generated modules import each other as ``matchbox.<...>`` (the proto paths), and
    protobuf registers each file once per process, so the first call's modules are kept and
    later calls return them (``out_dir`` is then unused).
    """
    global _STUBS
    source = source or matchbox_source()
    with _STUBS_LOCK:
        if _STUBS is not None:
            if _STUBS.source != source:
                raise RuntimeError(f"stubs already generated from {_STUBS.source}, not {source}")
            return _STUBS
        protoc = importlib.import_module("grpc_tools.protoc")  # no type information
        out_dir.mkdir(parents=True, exist_ok=True)
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{source}",
                f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                *PROTO_FILES,
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed ({status}) on {PROTO_FILES} in {source}")
        if "matchbox" in sys.modules:
            raise RuntimeError("a module named 'matchbox' is already imported")
        sys.path.insert(0, str(out_dir))
        try:
            _STUBS = Stubs(
                source,
                importlib.import_module("matchbox.rpc.rpcpb.rpc_pb2_grpc"),
                importlib.import_module("matchbox.server.serverpb.messages_pb2"),
                importlib.import_module("matchbox.storage.storagepb.storage_pb2"),
            )
        finally:
            sys.path.remove(str(out_dir))
        return _STUBS


# -------------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_material(directory: Path) -> TLSFiles:
    """A CA, a server certificate (127.0.0.1, localhost) and a client certificate, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("stubernetes test matchbox CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "matchbox",
        server_key,
        ca.subject,
        ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(
        "stubernetes", client_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    files = TLSFiles(
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(_key_pem(server_key))
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    files.client_key.write_bytes(_key_pem(client_key))
    for key in (files.server_key, files.client_key):
        key.chmod(0o600)
    return files


# ----------------------------------------------------------------------------- server


@dataclass
class Matchbox:
    process: RealProcess
    http_port: int
    rpc_port: int | None
    data_path: Path
    assets_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def rpc_target(self) -> str:
        if self.rpc_port is None:
            raise RuntimeError("this Matchbox was started without its gRPC API")
        return f"127.0.0.1:{self.rpc_port}"

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop()


def _answers_http(port: int) -> bool:
    # GET / answers "matchbox\n" (matchbox/http/handlers.go homeHandler).
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return bool(response.read() == b"matchbox\n")
    except (urllib.error.URLError, OSError):
        return False


def matchbox_argv(data_path: Path, assets_path: Path, http_address: str) -> list[str]:
    """The real Matchbox serving HTTP at `http_address` (host:port) from the two paths, logging
    every request (`-log-level debug`), with no MATCHBOX_* variable of the environment left to
    set a flag: cmd/matchbox/main.go sets every flag not on the command line from one
    (coreos/pkg flagutil.SetFlagsFromEnv)."""
    leaked = sorted(k for k in os.environ if k.startswith("MATCHBOX_"))
    unset = ["env", *(f"--unset={k}" for k in leaked)] if leaked else []
    return [
        *unset,
        str(require_tool("matchbox", "matchbox")),
        "-address",
        http_address,
        "-data-path",
        str(data_path),
        "-assets-path",
        str(assets_path),
        "-log-level",
        "debug",
    ]


def start_matchbox(
    data_path: Path,
    assets_path: Path,
    log_dir: Path,
    *,
    http_port: int | None = None,
    http_host: str = "127.0.0.1",
    tls: TLSFiles | None = None,
    name: str = "matchbox",
) -> Matchbox:
    """Start the real Matchbox on loopback (HTTP, and the gRPC API when ``tls`` is given).

    ``http_host`` is the address it listens on (``-address host:port``); the lab's guests reach
    the host's loopback through QEMU's user network, so 127.0.0.1 serves them too.
    """
    port = http_port or free_port()
    argv = matchbox_argv(data_path, assets_path, f"{http_host}:{port}")
    rpc_port = None
    if tls is not None:
        rpc_port = free_port()
        argv += [
            "-rpc-address",
            f"127.0.0.1:{rpc_port}",
            "-cert-file",
            str(tls.server_cert),
            "-key-file",
            str(tls.server_key),
            "-ca-file",
            str(tls.ca_cert),
        ]

    def ready() -> bool:
        return _answers_http(port) and (rpc_port is None or port_open(rpc_port))

    process = start(name, argv, log_dir, ready, timeout_seconds=30)
    return Matchbox(process, port, rpc_port, data_path, assets_path)


# ----------------------------------------------------------------------------- client


def group_message(stubs: Stubs, group: JsonObject) -> Any:
    """A ``storagepb.Group`` from a group file's JSON (``storagepb.RichGroup``: metadata as an
    object; the message carries it JSON-encoded in ``bytes metadata``, storagepb/group.go)."""
    fields = {k: v for k, v in group.items() if k != "metadata"}
    message = json_format.ParseDict(fields, stubs.storage_pb2.Group())
    if "metadata" in group:
        message.metadata = json.dumps(group["metadata"]).encode()
    return message


def group_json(group: Any) -> JsonObject:
    """A group file's JSON from a ``storagepb.Group``; empty fields left out, as RichGroup's
    ``omitempty`` tags leave them out of the files Matchbox writes."""
    out: JsonObject = json_format.MessageToDict(group, preserving_proto_field_name=True)
    out.pop("metadata", None)
    if group.metadata:
        out["metadata"] = json.loads(group.metadata)
    return out


def profile_json(profile: Any) -> JsonObject:
    out: JsonObject = json_format.MessageToDict(profile, preserving_proto_field_name=True)
    return out


class MatchboxClient:
    """Matchbox's gRPC API over mutual TLS. Errors are ``grpc.RpcError``: Matchbox answers
    ``NOT_FOUND`` only for selection, and ``UNKNOWN`` with the storage error otherwise
    (matchbox/rpc/errors.go)."""

    def __init__(
        self,
        target: str,
        tls: TLSFiles,
        stubs: Stubs,
        *,
        timeout_seconds: float = 10,
        server_name: str | None = None,
    ) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_cert.read_bytes(),
            private_key=tls.client_key.read_bytes(),
            certificate_chain=tls.client_cert.read_bytes(),
        )
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stubs = stubs
        self._timeout = timeout_seconds
        pb = stubs.rpc_pb2_grpc
        self._profiles = pb.ProfilesStub(self._channel)
        self._groups = pb.GroupsStub(self._channel)
        self._ignition = pb.IgnitionStub(self._channel)
        self._messages = stubs.messages_pb2

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> MatchboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout_seconds: float = 10) -> None:
        """Until the TLS handshake and HTTP/2 connection are up (raises on timeout)."""
        grpc.channel_ready_future(self._channel).result(timeout=timeout_seconds)

    # -- profiles: storagepb.Profile, written as profiles/<id>.json ----------------------
    def profile_put(self, profile: JsonObject) -> None:
        message = json_format.ParseDict(profile, self._stubs.storage_pb2.Profile())
        self._profiles.ProfilePut(
            self._messages.ProfilePutRequest(profile=message), timeout=self._timeout
        )

    def profile_get(self, profile_id: str) -> JsonObject:
        response = self._profiles.ProfileGet(
            self._messages.ProfileGetRequest(id=profile_id), timeout=self._timeout
        )
        return profile_json(response.profile)

    def profile_list(self) -> list[JsonObject]:
        response = self._profiles.ProfileList(
            self._messages.ProfileListRequest(), timeout=self._timeout
        )
        return [profile_json(p) for p in response.profiles]

    def profile_delete(self, profile_id: str) -> None:
        self._profiles.ProfileDelete(
            self._messages.ProfileDeleteRequest(id=profile_id), timeout=self._timeout
        )

    # -- groups: storagepb.Group, written as groups/<id>.json ----------------------------
    def group_put(self, group: JsonObject) -> None:
        self._groups.GroupPut(
            self._messages.GroupPutRequest(group=group_message(self._stubs, group)),
            timeout=self._timeout,
        )

    def group_get(self, group_id: str) -> JsonObject:
        response = self._groups.GroupGet(
            self._messages.GroupGetRequest(id=group_id), timeout=self._timeout
        )
        return group_json(response.group)

    def group_list(self) -> list[JsonObject]:
        response = self._groups.GroupList(self._messages.GroupListRequest(), timeout=self._timeout)
        return [group_json(g) for g in response.groups]

    def group_delete(self, group_id: str) -> None:
        self._groups.GroupDelete(
            self._messages.GroupDeleteRequest(id=group_id), timeout=self._timeout
        )

    # -- Ignition: bytes, written as ignition/<name> --------------------------------------
    def ignition_put(self, name: str, config: bytes) -> None:
        self._ignition.IgnitionPut(
            self._messages.IgnitionPutRequest(name=name, config=config), timeout=self._timeout
        )

    def ignition_get(self, name: str) -> bytes:
        response = self._ignition.IgnitionGet(
            self._messages.IgnitionGetRequest(name=name), timeout=self._timeout
        )
        return bytes(response.config)

    def ignition_delete(self, name: str) -> None:
        self._ignition.IgnitionDelete(
            self._messages.IgnitionDeleteRequest(name=name), timeout=self._timeout
        )


# ------------------------------------------------- what Matchbox serves for raw Ignition


def linked_module_version(binary: Path, module: str) -> str:
    """The version of ``module`` linked into a Go binary, from the build information the Go
    linker embeds (the ``dep<TAB>path<TAB>version`` lines ``go version -m`` prints)."""
    pattern = re.compile(rb"\ndep\t" + re.escape(module.encode()) + rb"\t(v[^\t\n]+)[\t\n]")
    found = {m.group(1).decode() for m in pattern.finditer(binary.read_bytes())}
    if len(found) != 1:
        raise RuntimeError(f"{binary}: cannot tell which {module} it links (found {found})")
    return found.pop()


@dataclass(frozen=True)
class GoField:
    name: str  # the JSON key (from the json tag)
    go_type: str  # as written in schema.go: "*int", "[]Resource", "Resource", "string"
    omitempty: bool


@dataclass(frozen=True)
class GoSchema:
    """The Go types of one Ignition spec (``config/v3_N/types/schema.go``, generated from the
    spec's JSON schema): struct fields with embedded structs flattened, and the named
    non-struct types (``type Device string``, ``type HTTPHeaders []HTTPHeader``)."""

    structs: dict[str, tuple[GoField, ...]]
    named: dict[str, str]

    @classmethod
    def read(cls, schema_go: Path) -> GoSchema:
        text = schema_go.read_text()
        raw_structs: dict[str, list[str]] = {}
        for match in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
            raw_structs[match.group(1)] = match.group(2).strip().splitlines()
        named = {
            m.group(1): m.group(2)
            for m in re.finditer(r"^type (\w+) ((?:\[\]|\*)?\w+)$", text, re.M)
        }

        def fields(struct: str) -> tuple[GoField, ...]:
            out: list[GoField] = []
            for line in raw_structs[struct]:
                parts = line.split()
                if len(parts) == 1:  # an embedded struct: its fields are promoted
                    out.extend(fields(parts[0]))
                    continue
                tag = re.search(r'`json:"([^"]*)"`', line)
                if tag is None:
                    raise ValueError(f"{schema_go}: no json tag on {struct}: {line!r}")
                key, *options = tag.group(1).split(",")
                out.append(GoField(key, parts[1], "omitempty" in options))
            return tuple(out)

        return cls({name: fields(name) for name in raw_structs}, named)


_MISSING = object()
GO_ZERO = {"string": "", "int": 0, "bool": False}


class IgnitionOnMatchbox:
    """What Matchbox answers at ``/ignition`` for a raw Ignition config (``*.ign``).

    poseidon/matchbox ``matchbox/http/ignition.go``: the file is parsed with Ignition's
    ``config/v3_4`` ``ParseCompatibleVersion`` (the Ignition module version linked into the
    Matchbox binary) and the resulting Go value is written with ``encoding/json``
    (``matchbox/http/render.go`` renderJSON). So, by the rules of those two:

    * ``json.Unmarshal`` into the source spec's types (``config/v3_3/types`` for 3.3.0): keys
      match field names exactly or else case-insensitively; a key no field has is dropped;
      ``null`` leaves a field at its zero value. This class refuses such a key instead (Matchbox
      would drop it silently).
    * ``config/v3_4/translate`` Translate: ``ignition.version`` becomes 3.4.0, and a file's or
      directory's ``mode`` loses its setuid, setgid and sticky bits (``mode &^ 07000``).
    * ``json.Marshal`` of the 3.4 types: a pointer, slice, string, number or boolean field with
      ``omitempty`` is left out when nil, empty, "", 0 or false; a struct-typed field is always
      written, so every absent one comes back as ``{}`` with its own struct fields inside
      (``ignition.config.replace.verification``, ``ignition.security.tls``, a file's ``user``
      and ``group``, ...).

    Not modelled: a config that fails Ignition's validation (Matchbox logs a warning and serves
    the zero config); the tests check that ``ignition-validate`` accepts both sides instead.
    """

    def __init__(self, ignition_source: Path) -> None:
        types_dir = ignition_source / "config"
        self.source = ignition_source
        self.v3_3 = GoSchema.read(types_dir / "v3_3" / "types" / "schema.go")
        self.v3_4 = GoSchema.read(types_dir / "v3_4" / "types" / "schema.go")

    @classmethod
    def for_matchbox(cls, binary: Path) -> IgnitionOnMatchbox:
        version = linked_module_version(binary, IGNITION_MODULE)
        return cls(module_source(IGNITION_MODULE, version))

    def serve(self, raw: bytes) -> JsonObject:
        document = json.loads(raw)
        version = (document.get("ignition") or {}).get("version")
        if version == "3.4.0":
            decoded = self._decode(self.v3_4, "Config", document, "$")
        elif version == "3.3.0":
            decoded = self._decode(self.v3_3, "Config", document, "$")
            decoded["ignition"]["version"] = "3.4.0"
            storage = decoded["storage"]
            for node in (storage["files"] or []) + (storage["directories"] or []):
                if node["mode"] is not None:
                    node["mode"] &= ~0o7000
        else:
            raise ValueError(f"only specs 3.3.0 and 3.4.0 are modelled, not {version!r}")
        encoded = self._encode(self.v3_4, "Config", decoded)
        assert isinstance(encoded, dict)
        return encoded

    # -- json.Unmarshal: a Go value as Python (struct: dict of every field; nil: None) ----
    def _decode(self, schema: GoSchema, go_type: str, value: Any, where: str) -> Any:
        if go_type.startswith("*"):
            return None if value is None else self._decode(schema, go_type[1:], value, where)
        if go_type.startswith("[]"):
            if value is None:
                return None
            if not isinstance(value, list):
                raise ValueError(f"{where}: a list for {go_type}, not {value!r}")
            return [
                self._decode(schema, go_type[2:], v, f"{where}[{i}]") for i, v in enumerate(value)
            ]
        if go_type in schema.named:
            return self._decode(schema, schema.named[go_type], value, where)
        if go_type in GO_ZERO:
            zero = GO_ZERO[go_type]
            if value is None:
                return zero
            if type(value) is not type(zero):
                raise ValueError(f"{where}: a {go_type}, not {value!r}")
            return value
        fields = schema.structs[go_type]
        out = {f.name: self._decode(schema, f.go_type, None, where) for f in fields}
        if value is None:
            return out
        if not isinstance(value, dict):
            raise ValueError(f"{where}: an object for {go_type}, not {value!r}")
        by_lower = {f.name.lower(): f for f in fields}
        exact = {f.name: f for f in fields}
        for key, item in value.items():
            field = exact.get(key) or by_lower.get(key.lower())
            if field is None:
                raise ValueError(f"{where}.{key}: no such field in {go_type}: Matchbox drops it")
            out[field.name] = self._decode(schema, field.go_type, item, f"{where}.{key}")
        return out

    # -- json.Marshal --------------------------------------------------------------------
    def _encode(self, schema: GoSchema, go_type: str, value: Any) -> Any:
        if go_type.startswith("*"):
            return None if value is None else self._encode(schema, go_type[1:], value)
        if go_type.startswith("[]"):
            return None if value is None else [self._encode(schema, go_type[2:], v) for v in value]
        if go_type in schema.named:
            return self._encode(schema, schema.named[go_type], value)
        if go_type in GO_ZERO:
            return value
        out: JsonObject = {}
        for field in schema.structs[go_type]:
            item = value.get(field.name, _MISSING)
            if item is _MISSING:  # a field the source spec does not have: its zero value
                item = self._decode(schema, field.go_type, None, field.name)
            if field.omitempty and self._empty(schema, field.go_type, item):
                continue
            out[field.name] = self._encode(schema, field.go_type, item)
        return out

    def _empty(self, schema: GoSchema, go_type: str, value: Any) -> bool:
        """encoding/json's omitempty test; a struct is never empty."""
        while go_type in schema.named:
            go_type = schema.named[go_type]
        if go_type.startswith("*"):
            return value is None
        if go_type.startswith("[]"):
            return not value
        if go_type in GO_ZERO:
            return bool(value == GO_ZERO[go_type])
        return False
