"""The scaffolding every stand-in provider plugin shares: values, the gRPC service, the engine log.

What a resource plugin is to the engine (pulumi/pulumi ``pkg/v3@v3.274.1``):

* The engine runs ``pulumi-resource-<name> [flags] <engine address>``: the address is the last
  argument (``resource/plugin/provider_plugin.go`` NewProvider, ``[]string{host.ServerAddr()}``),
  and the plugin's working directory is the engine's (``ctx.Pwd``: the project directory).
* The plugin writes its port, one line, on stdout; everything after it is only traced
  (``resource/plugin/plugin.go`` newPlugin, "we expect it to write a single line to STDOUT").
* ``Handshake`` comes first; a plugin that answers it has ``supportsPreview`` set for it, so the
  engine calls ``Create`` and ``Update`` during a preview too, with ``preview`` set
  (``provider_plugin.go`` NewProvider, ``supportsPreview: true``; Create, "If this is a preview
  and the plugin does not support provider previews ...").
* Values travel as ``google.protobuf.Struct``; a secret is an object carrying the special
  signature key, an unknown (computed) value a sentinel string (the Python SDK's
  ``pulumi/runtime/rpc.py``: ``_special_sig_key``, ``_special_secret_sig``, ``UNKNOWN``). With
  ``acceptSecrets`` the engine sends secrets as such and keeps what the plugin returns as it is
  (``provider_plugin.go``: ``annotateSecrets`` runs only ``if !protocol.acceptSecrets``), so the
  plugins here return secret values already marked secret.
* A plugin logs through the engine's ``Log`` RPC with the resource's URN; a "status" message is
  ``ephemeral`` (shown while the step runs, not in the final output): pulumi/pulumi
  ``sdk/go/pulumi/provider/host.go`` HostClient ``LogStatus`` -> ``log(..., ephemeral=true)``.

The model each plugin implements lives in its own module (``random_provider``, ...); this one
only carries messages between the engine and a :class:`Provider`.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias, TypeVar

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    plugin_pb2,
    provider_pb2,
    provider_pb2_grpc,
)

# ------------------------------------------------------------------------------ values

# pulumi/runtime/rpc.py (the SDK this repository pins): the signature key of special objects,
# the secret's signature, and the unknown-value sentinel.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class Secret:
    """A secret value, as the engine marks it."""

    value: Value


class Unknown:
    """A value not known yet (a preview): the single instance is :data:`UNKNOWN`."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()

Value: TypeAlias = (
    "bool | int | float | str | list[Value] | dict[str, Value] | Secret | Unknown | None"
)
Props: TypeAlias = dict[str, Value]


def _from_proto(value: struct_pb2.Value) -> Value:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind == "number_value":
        number = float(value.number_value)
        # JSON has one number type; an integral one is read back as an int (rsaBits, length).
        return int(number) if number.is_integer() else number
    if kind == "string_value":
        text = str(value.string_value)
        return UNKNOWN if text == UNKNOWN_SENTINEL else text
    if kind == "list_value":
        return [_from_proto(item) for item in value.list_value.values]
    fields = value.struct_value.fields
    if SIG_KEY in fields:
        signature = fields[SIG_KEY].string_value
        if signature == SECRET_SIG:
            return Secret(_from_proto(fields["value"]))
        # Assets, archives, resource references and output values are only sent to a plugin
        # that says it accepts them; these say they do not.
        raise ProviderError(f"this stand-in does not accept values of signature {signature}")
    return {key: _from_proto(item) for key, item in fields.items()}


def _to_proto(value: Value, out: struct_pb2.Value) -> None:
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = float(value)
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, Unknown):
        out.string_value = UNKNOWN_SENTINEL
    elif isinstance(value, Secret):
        struct = out.struct_value
        struct.fields[SIG_KEY].string_value = SECRET_SIG
        _to_proto(value.value, struct.fields["value"])
    elif isinstance(value, list):
        items = out.list_value
        for item in value:
            _to_proto(item, items.values.add())
    else:
        struct = out.struct_value
        struct.Clear()
        for key, item in value.items():
            _to_proto(item, struct.fields[key])


def from_struct(struct: struct_pb2.Struct | None) -> Props:
    """The properties of a ``Struct`` (secrets and unknowns kept as :class:`Secret`/UNKNOWN)."""
    if struct is None:
        return {}
    return {key: _from_proto(item) for key, item in struct.fields.items()}


def to_struct(props: Mapping[str, Value]) -> struct_pb2.Struct:
    """A ``Struct`` of properties; ``None`` values are left out (an absent property)."""
    struct = struct_pb2.Struct()
    for key, item in props.items():
        if item is not None:
            _to_proto(item, struct.fields[key])
    return struct


def reveal(value: Value) -> Value:
    """The value with every secret mark removed."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, list):
        return [reveal(item) for item in value]
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    return value


def is_secret(value: Value) -> bool:
    """Whether the value is, or contains, a secret."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, list):
        return any(is_secret(item) for item in value)
    if isinstance(value, dict):
        return any(is_secret(item) for item in value.values())
    return False


def is_known(value: Value) -> bool:
    """Whether the value is fully known (no unknown anywhere inside it)."""
    if isinstance(value, Unknown):
        return False
    if isinstance(value, Secret):
        return is_known(value.value)
    if isinstance(value, list):
        return all(is_known(item) for item in value)
    if isinstance(value, dict):
        return all(is_known(item) for item in value.values())
    return True


def secret(value: Value) -> Value:
    """The value marked secret (an absent value stays absent, a secret is not wrapped twice)."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


def text(value: Value) -> str | None:
    """A string property's revealed value, or None when absent."""
    plain = reveal(value)
    if plain is None:
        return None
    if not isinstance(plain, str):
        raise ProviderError(f"expected a string, got {plain!r}")
    return plain


# ----------------------------------------------------------------------- property diffs

ADD: int = int(provider_pb2.PropertyDiff.ADD)
ADD_REPLACE: int = int(provider_pb2.PropertyDiff.ADD_REPLACE)
DELETE: int = int(provider_pb2.PropertyDiff.DELETE)
DELETE_REPLACE: int = int(provider_pb2.PropertyDiff.DELETE_REPLACE)
UPDATE: int = int(provider_pb2.PropertyDiff.UPDATE)
UPDATE_REPLACE: int = int(provider_pb2.PropertyDiff.UPDATE_REPLACE)
_AS_REPLACE: dict[int, int] = {ADD: ADD_REPLACE, DELETE: DELETE_REPLACE, UPDATE: UPDATE_REPLACE}
REPLACE_KINDS = frozenset(_AS_REPLACE.values())

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def path_key(prefix: str, key: str | int) -> str:
    """A property path in the engine's syntax (``a.b``, ``a[0]``, ``a["x.y"]``), as
    pulumi/pulumi ``sdk/go/common/resource/properties_path.go`` PropertyPath.String writes it."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def _same(old: Value, new: Value) -> bool:
    # Two secrets compare by their elements; a secret and a plain value never compare equal
    # (``properties_diff.go`` PropertyValue.Diff and DeepEquals).
    if isinstance(old, Secret) and isinstance(new, Secret):
        return _same(old.value, new.value)
    return old == new


def value_diff(old: Value, new: Value, prefix: str, out: dict[str, int]) -> None:
    """The engine's detailed diff of two values below ``prefix``: objects and arrays are walked
    key by key and index by index, anything else is one update (``properties_diff.go``
    PropertyMap.Diff, and ``resource/plugin/provider.go`` NewDetailedDiffFromObjectDiff;
    a null property counts as absent)."""
    if isinstance(old, Secret) and isinstance(new, Secret):
        value_diff(old.value, new.value, prefix, out)
    elif isinstance(old, dict) and isinstance(new, dict):
        object_diff(old, new, prefix, out)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            where = path_key(prefix, index)
            if index >= len(old):
                out[where] = ADD
            elif index >= len(new):
                out[where] = DELETE
            else:
                value_diff(old[index], new[index], where, out)
    elif not _same(old, new):
        out[prefix] = UPDATE


def object_diff(
    old: Mapping[str, Value],
    new: Mapping[str, Value],
    prefix: str = "",
    out: dict[str, int] | None = None,
) -> dict[str, int]:
    """See :func:`value_diff`; returns ``out`` (a fresh dict when not given)."""
    out = {} if out is None else out
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        where = path_key(prefix, key)
        if before is None and after is None:
            continue
        if before is None:
            out[where] = ADD
        elif after is None:
            out[where] = DELETE
        else:
            value_diff(before, after, where, out)
    return out


def head(path: str) -> str:
    """The top-level property a detailed-diff path starts with (``a.b[0]`` -> ``a``,
    ``["x.y"].z`` -> ``x.y``)."""
    if path.startswith('["'):
        end = path.index('"]')
        return str(json.loads(path[1 : end + 1]))
    match = re.match(r"[^.\[]+", path)
    return match.group(0) if match else path


def as_replace(kind: int) -> int:
    return _AS_REPLACE.get(kind, kind)


@dataclass
class DiffResult:
    """What a ``Diff`` answers: the engine replaces the resource when ``replaces`` is not
    empty, updates it in place when only ``changes`` is set."""

    detailed: dict[str, int] = field(default_factory=dict)
    changes: bool | None = None  # None: derived from ``detailed``
    delete_before_replace: bool = False

    @property
    def replaces(self) -> list[str]:
        return sorted({head(k) for k, kind in self.detailed.items() if kind in REPLACE_KINDS})

    @property
    def diffs(self) -> list[str]:
        return sorted({head(k) for k in self.detailed})

    @property
    def has_changes(self) -> bool:
        return bool(self.detailed) if self.changes is None else self.changes

    def to_proto(self) -> provider_pb2.DiffResponse:
        return provider_pb2.DiffResponse(
            changes=(
                provider_pb2.DiffResponse.DIFF_SOME
                if self.has_changes
                else provider_pb2.DiffResponse.DIFF_NONE
            ),
            replaces=self.replaces,
            diffs=self.diffs,
            detailedDiff={
                k: provider_pb2.PropertyDiff(kind=kind, inputDiff=False)  # type: ignore[arg-type]
                for k, kind in self.detailed.items()
            },
            hasDetailedDiff=True,
            deleteBeforeReplace=self.delete_before_replace,
        )


# ------------------------------------------------------------------------ the engine log


class ProviderError(Exception):
    """A failure the engine shows as the step's error (gRPC status UNKNOWN with this text, as
    pulumi-go-provider and the bridge return a Go error; ``code`` another status where the
    real plugin's failure is gRPC's own, e.g. INTERNAL for a response it cannot marshal)."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CheckFailure:
    property: str
    reason: str


class EngineLog:
    """The engine's ``Log`` RPC (``pulumi/runtime/proto/engine.proto``), dialled lazily."""

    def __init__(self, address: str | None) -> None:
        self._address = address
        self._stub: engine_pb2_grpc.EngineStub | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str | None:
        return self._address

    def set_address(self, address: str) -> None:
        with self._lock:
            if self._address != address:
                self._address, self._stub = address, None

    def send(self, severity: int, message: str, urn: str, ephemeral: bool) -> None:
        with self._lock:
            if self._address is None:
                stub = None
            else:
                if self._stub is None:
                    self._stub = engine_pb2_grpc.EngineStub(grpc.insecure_channel(self._address))
                stub = self._stub
        # pulumi-go-provider logging.go hostSink: when the engine cannot be reached the message
        # goes to the plugin's own log (stderr here) instead.
        if stub is None:
            print(f"[{urn}] {message}", file=sys.stderr, flush=True)
            return
        try:
            stub.Log(
                engine_pb2.LogRequest(
                    severity=severity,  # type: ignore[arg-type]
                    message=message,
                    urn=urn,
                    ephemeral=ephemeral,
                ),
                timeout=30,
            )
        except grpc.RpcError as error:
            print(f"[{urn}] {message} (engine log failed: {error})", file=sys.stderr, flush=True)


INFO = engine_pb2.INFO
WARNING = engine_pb2.WARNING
DEBUG = engine_pb2.DEBUG
ERROR = engine_pb2.ERROR


@dataclass(frozen=True)
class Call:
    """One request's resource and the way back to the engine's log."""

    urn: str
    log_sink: EngineLog

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    def status(self, message: str, severity: int = INFO) -> None:
        """An ephemeral status message (the progress display's Info column)."""
        self.log_sink.send(severity, message, self.urn, ephemeral=True)

    def log(self, message: str, severity: int = INFO) -> None:
        """A diagnostic message kept in the update's output."""
        self.log_sink.send(severity, message, self.urn, ephemeral=False)


def urn_type(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<parent types$>type::<name>`` -> type."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_name(urn: str) -> str:
    parts = urn.split("::")
    return "::".join(parts[3:]) if len(parts) >= 4 else ""


# ------------------------------------------------------------------------ the model API


class Resource(ABC):
    """One resource type of a provider. Properties are engine-side (camelCase) names."""

    token: str

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        return dict(news), []

    @abstractmethod
    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        """``olds``: the stored outputs; ``news``: the checked new inputs."""

    @abstractmethod
    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        """The new resource's id and outputs (unknown ones UNKNOWN when ``preview``)."""

    def update(
        self, call: Call, id_: str, olds: Props, news: Props, old_inputs: Props, preview: bool
    ) -> Props:
        raise ProviderError(f"{self.token} has no update: every change replaces it")

    def delete(self, call: Call, id_: str, olds: Props, old_inputs: Props) -> None:
        return None

    def read(self, call: Call, id_: str, state: Props, inputs: Props) -> tuple[str, Props, Props]:
        """``(id, outputs, inputs)``; an empty id says the resource is gone."""
        return id_, state, inputs


class Provider:
    """A provider: its name and version (GetPluginInfo), configuration and resource types."""

    def __init__(self, name: str, version: str, resources: Iterable[Resource]) -> None:
        self.name = name
        self.version = version
        self.resources = {resource.token: resource for resource in resources}

    def check_config(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        return dict(news), []

    def diff_config(self, olds: Props, news: Props) -> DiffResult:
        """A configuration change updates the provider in place, never replaces it: the
        bridge's configDiffer replaces only for ``ForcesProviderReplace`` fields, which none of
        these providers declares (pulumi/pulumi-terraform-bridge ``pkg/tfbridge/provider.go``
        DiffConfig). ``version`` is the engine's own bookkeeping."""

        def without_version(props: Props) -> Props:
            return {k: v for k, v in props.items() if k != "version"}

        return DiffResult(object_diff(without_version(olds), without_version(news)))

    def configure(self, config: Props) -> None:
        return None

    def cancel(self) -> None:
        return None

    def invoke(self, call: Call, token: str, args: Props) -> Props:
        """A function (an invoke); none by default, as a provider whose schema has none."""
        raise ProviderError(f"{self.name} stand-in: unknown function {token!r}")

    def resource(self, token: str) -> Resource:
        try:
            return self.resources[token]
        except KeyError:
            raise ProviderError(
                f"{self.name} stand-in: unknown resource type {token!r}"
                f" (it models {', '.join(sorted(self.resources))})"
            ) from None


# ---------------------------------------------------------------------------- the service

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


def _abort(context: grpc.ServicerContext, error: BaseException) -> NoReturn:
    code = grpc.StatusCode.UNKNOWN
    if isinstance(error, ProviderError):
        message, code = str(error), error.code
    else:
        message = "".join(traceback.format_exception(error))
    print(message, file=sys.stderr, flush=True)
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover


def _handled(
    method: Callable[[Servicer, _Request, grpc.ServicerContext], _Response],
) -> Callable[[Servicer, _Request, grpc.ServicerContext], _Response]:
    def wrapper(self: Servicer, request: _Request, context: grpc.ServicerContext) -> _Response:
        try:
            return method(self, request, context)
        except Exception as error:
            _abort(context, error)

    wrapper.__name__ = method.__name__
    return wrapper


def _failures(failures: Sequence[CheckFailure]) -> list[provider_pb2.CheckFailure]:
    return [provider_pb2.CheckFailure(property=f.property, reason=f.reason) for f in failures]


def _type_of(urn: str, given: str) -> str:
    return given or urn_type(urn)


def _with_ignored(olds: Props, news: Props, ignore_changes: Sequence[str]) -> Props:
    # ignoreChanges: the stored value stands in for the new one (pulumi-go-provider
    # infer/resource.go diff, ``req.Inputs.Set(ignoredChange, state)``; the bridge's
    # ApplyIgnoreChanges). Only top-level paths are modelled.
    news = dict(news)
    for key in ignore_changes:
        if key in olds:
            news[key] = olds[key]
    return news


class Servicer(provider_pb2_grpc.ResourceProviderServicer):
    """The ResourceProvider service over a :class:`Provider`."""

    def __init__(self, provider: Provider, log_sink: EngineLog) -> None:
        self.provider = provider
        self.log_sink = log_sink

    def _call(self, urn: str) -> Call:
        return Call(urn, self.log_sink)

    # -- protocol -----------------------------------------------------------------------
    @_handled
    def Handshake(
        self, request: provider_pb2.ProviderHandshakeRequest, context: grpc.ServicerContext
    ) -> provider_pb2.ProviderHandshakeResponse:
        if request.engine_address:
            self.log_sink.set_address(request.engine_address)
        return provider_pb2.ProviderHandshakeResponse(
            accept_secrets=True, accept_resources=False, accept_outputs=False
        )

    @_handled
    def GetPluginInfo(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=self.provider.version)

    @_handled
    def GetSchema(
        self, request: provider_pb2.GetSchemaRequest, context: grpc.ServicerContext
    ) -> provider_pb2.GetSchemaResponse:
        # A stand-in has no schema of its own; the SDK packages carry the real one.
        schema = {"name": self.provider.name, "version": self.provider.version}
        return provider_pb2.GetSchemaResponse(schema=json.dumps(schema))

    @_handled
    def CheckConfig(
        self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> provider_pb2.CheckResponse:
        inputs, failures = self.provider.check_config(
            from_struct(request.olds), from_struct(request.news)
        )
        return provider_pb2.CheckResponse(inputs=to_struct(inputs), failures=_failures(failures))

    @_handled
    def DiffConfig(
        self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext
    ) -> provider_pb2.DiffResponse:
        olds = from_struct(request.old_inputs) or from_struct(request.olds)
        return self.provider.diff_config(olds, from_struct(request.news)).to_proto()

    @_handled
    def Configure(
        self, request: provider_pb2.ConfigureRequest, context: grpc.ServicerContext
    ) -> provider_pb2.ConfigureResponse:
        self.provider.configure(from_struct(request.args))
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False, acceptOutputs=False
        )

    @_handled
    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        self.provider.cancel()
        return empty_pb2.Empty()

    # -- resources ----------------------------------------------------------------------
    @_handled
    def Check(
        self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> provider_pb2.CheckResponse:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        inputs, failures = resource.check(from_struct(request.olds), from_struct(request.news))
        return provider_pb2.CheckResponse(inputs=to_struct(inputs), failures=_failures(failures))

    @_handled
    def Diff(
        self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext
    ) -> provider_pb2.DiffResponse:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        olds = from_struct(request.olds)
        news = _with_ignored(olds, from_struct(request.news), list(request.ignoreChanges))
        result = resource.diff(request.id, olds, news, from_struct(request.old_inputs))
        return result.to_proto()

    @_handled
    def Create(
        self, request: provider_pb2.CreateRequest, context: grpc.ServicerContext
    ) -> provider_pb2.CreateResponse:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        id_, outputs = resource.create(
            self._call(request.urn), from_struct(request.properties), bool(request.preview)
        )
        return provider_pb2.CreateResponse(id=id_, properties=to_struct(outputs))

    @_handled
    def Update(
        self, request: provider_pb2.UpdateRequest, context: grpc.ServicerContext
    ) -> provider_pb2.UpdateResponse:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        olds = from_struct(request.olds)
        news = _with_ignored(olds, from_struct(request.news), list(request.ignoreChanges))
        outputs = resource.update(
            self._call(request.urn),
            request.id,
            olds,
            news,
            from_struct(request.old_inputs),
            bool(request.preview),
        )
        return provider_pb2.UpdateResponse(properties=to_struct(outputs))

    @_handled
    def Delete(
        self, request: provider_pb2.DeleteRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        resource.delete(
            self._call(request.urn),
            request.id,
            from_struct(request.properties),
            from_struct(request.old_inputs),
        )
        return empty_pb2.Empty()

    @_handled
    def Read(
        self, request: provider_pb2.ReadRequest, context: grpc.ServicerContext
    ) -> provider_pb2.ReadResponse:
        resource = self.provider.resource(_type_of(request.urn, request.type))
        id_, outputs, inputs = resource.read(
            self._call(request.urn),
            request.id,
            from_struct(request.properties),
            from_struct(request.inputs),
        )
        if not id_:
            return provider_pb2.ReadResponse(id="")
        return provider_pb2.ReadResponse(
            id=id_, properties=to_struct(outputs), inputs=to_struct(inputs)
        )

    # -- functions ----------------------------------------------------------------------
    @_handled
    def Invoke(
        self, request: provider_pb2.InvokeRequest, context: grpc.ServicerContext
    ) -> provider_pb2.InvokeResponse:
        # An invoke belongs to no resource: its log messages carry no URN.
        result = self.provider.invoke(self._call(""), request.tok, from_struct(request.args))
        response = provider_pb2.InvokeResponse()
        # `return` is a Python keyword: the field is reached by name.
        getattr(response, "return").CopyFrom(to_struct(result))
        return response


def engine_address(argv: Sequence[str]) -> str | None:
    """The engine's address: the last argument that is not a flag (the engine may put
    ``--logtostderr``, ``-v=N``, ``--tracing <endpoint>`` before it)."""
    positional = [a for a in argv if not a.startswith("-")]
    return positional[-1] if positional else None


def start_server(provider: Provider, address: str | None) -> tuple[grpc.Server, int]:
    """Serve ``provider`` on a free loopback port; returns the server and the port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(
        Servicer(provider, EngineLog(address)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def serve(provider: Provider, argv: Sequence[str] | None = None) -> None:
    """Run as the engine runs a plugin: print the port on stdout, serve until killed."""
    args = list(sys.argv[1:] if argv is None else argv)
    server, port = start_server(provider, engine_address(args))
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        provider.cancel()
        server.stop(0)


# -------------------------------------------------- Terraform resources behind the bridge

ReplaceRule: TypeAlias = Callable[[Value, Value], bool]


@dataclass(frozen=True)
class Attr:
    """One attribute of a Terraform resource's schema, under its engine (camelCase) name.

    * ``config``: Optional or Required (the user may set it); ``required`` too.
    * ``computed``: the provider may set it; ``default`` its Plugin Framework static default
      (``booldefault``/``int64default``/``stringdefault``: the plan's value when unset).
    * ``replace``: ``RequiresReplace`` (plugin framework) or ``ForceNew`` (SDKv2); or a
      function ``(prior, planned) -> bool`` for a conditional ``RequiresReplaceIf``.
    * ``keep_state``: ``UseStateForUnknown`` (an unset computed value keeps the stored one).
    * ``sensitive``: ``Sensitive`` (the SDKs' ``additionalSecretOutputs``; returned secret).
    """

    name: str
    config: bool = True
    required: bool = False
    computed: bool = False
    default: Value = None
    replace: bool | ReplaceRule = False
    keep_state: bool = False
    sensitive: bool = False


def _plain_equal(a: Value, b: Value) -> bool:
    # Terraform values carry no secret marks: the bridge compares what is under them.
    return reveal(a) == reveal(b)


class Schema:
    """A resource's attributes, and the planning the Plugin Framework does with them
    (hashicorp/terraform-plugin-framework ``internal/fwserver/server_planresourcechange.go``:
    the config, then static defaults for unset computed attributes, then unknown for computed
    ones left unset when anything changes unless ``UseStateForUnknown`` keeps the prior value;
    then the plan modifiers, whose ``RequiresReplace`` the bridge turns into ``replaces``,
    pulumi/pulumi-terraform-bridge ``pkg/pf/tfbridge/provider_diff.go`` DiffWithContext)."""

    def __init__(self, attrs: Iterable[Attr]) -> None:
        self.attrs = {attr.name: attr for attr in attrs}

    def config_of(self, props: Mapping[str, Value]) -> Props:
        return {k: v for k, v in props.items() if k in self.attrs and self.attrs[k].config}

    def plan(self, prior: Mapping[str, Value] | None, config: Mapping[str, Value]) -> Props:
        planned: Props = {}
        for name, attr in self.attrs.items():
            value = config.get(name) if attr.config else None
            if value is None and attr.default is not None:
                value = attr.default
            planned[name] = value
        settled = prior is not None and all(
            _plain_equal(planned[n], prior.get(n))
            for n, a in self.attrs.items()
            if a.config or a.default is not None
        )
        for name, attr in self.attrs.items():
            if planned[name] is not None or not attr.computed:
                continue
            if prior is None:
                planned[name] = UNKNOWN
            elif settled or attr.keep_state:
                planned[name] = prior.get(name)
            else:
                planned[name] = UNKNOWN
        return planned

    def replaces(self, prior: Mapping[str, Value], planned: Mapping[str, Value]) -> list[str]:
        out = []
        for name, attr in self.attrs.items():
            before, after = prior.get(name), planned.get(name)
            if _plain_equal(before, after) or not attr.replace:
                continue
            if attr.replace is True or (callable(attr.replace) and attr.replace(before, after)):
                out.append(name)
        return out

    def changed(self, prior: Mapping[str, Value], planned: Mapping[str, Value]) -> list[str]:
        return [n for n in self.attrs if not _plain_equal(prior.get(n), planned.get(n))]

    def diff(
        self,
        prior: Mapping[str, Value],
        planned: Mapping[str, Value],
        extra_replaces: Sequence[str] = (),
    ) -> DiffResult:
        """Changed top-level keys are updates, or replacements when a rule says so."""
        replaces = set(self.replaces(prior, planned)) | set(extra_replaces)
        detailed: dict[str, int] = {}
        for name in self.changed(prior, planned):
            kind = (
                ADD if prior.get(name) is None else DELETE if planned.get(name) is None else UPDATE
            )
            detailed[name] = as_replace(kind) if name in replaces else kind
        for name in replaces - set(detailed):
            detailed[name] = UPDATE_REPLACE
        return DiffResult(detailed)

    def outputs(self, values: Mapping[str, Value], news: Mapping[str, Value]) -> Props:
        """Outputs as the engine should store them: sensitive ones secret, and an output that
        mirrors a secret input keeps that input's (secret) value."""
        out: Props = {}
        for name, value in values.items():
            if value is None:
                continue
            given = news.get(name)
            if is_secret(given) and _plain_equal(given, value):
                value = given
            if name in self.attrs and self.attrs[name].sensitive:
                value = secret(value)
            out[name] = value
        return out

    def mark_sensitive_inputs(self, news: Mapping[str, Value]) -> Props:
        """The bridge's Check marks a Sensitive input secret (pkg/pf/tfbridge/provider_check.go
        and pkg/tfbridge ``MarkSchemaSecrets``)."""
        return {
            k: secret(v) if k in self.attrs and self.attrs[k].sensitive else v
            for k, v in news.items()
        }

    def missing_required(self, news: Mapping[str, Value]) -> list[CheckFailure]:
        return [
            CheckFailure(
                name,
                f'Missing required argument: The argument "{name}" is required,'
                " but no definition was found.",
            )
            for name, attr in self.attrs.items()
            if attr.required and news.get(name) is None
        ]
