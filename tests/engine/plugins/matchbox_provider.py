"""A stand-in for the ``matchbox`` provider: its configuration dials Matchbox's gRPC API with
mutual TLS, ``Profile`` and ``Group`` put, get and delete through it.

Upstream: pulumiverse/pulumi-matchbox 0.3.0 (what ``pulumiverse-matchbox==0.3.0`` asks the
engine for; ``provider/resources.go``: ``client_key`` is ``Secret``, no ``DeleteBeforeReplace``,
no default) bridges poseidon/terraform-provider-matchbox v0.5.4 (``provider/go.mod``), an
SDKv2 provider: ``matchbox/provider.go`` (the configuration), ``matchbox/matchbox.go`` (the
client: TLS 1.2 at least, the CA, the client key pair, a blocking dial with a 25 s timeout,
through poseidon/matchbox ``matchbox/client/client.go``), ``matchbox/resource_profile.go`` and
``matchbox/resource_group.go`` (every attribute ``ForceNew``, no Update).

The gRPC client is ``tests/real/matchbox_grpc.py``'s ``MatchboxClient``, over stubs generated from
Matchbox's own ``.proto`` files; the provider only needs :class:`MatchboxAPI`, so a test can
give it another.

Not modelled: ``genericConfig`` (Check refuses it: the test client has no Generic service).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from engine.plugins.server import (
    UNKNOWN,
    Call,
    CheckFailure,
    DiffResult,
    Props,
    Provider,
    ProviderError,
    Resource,
    Value,
    as_replace,
    is_known,
    is_secret,
    object_diff,
    reveal,
    secret,
    serve,
    text,
)

JsonObject = dict[str, Any]
DIAL_TIMEOUT_SECONDS = 25  # matchbox/matchbox.go defaultTimeout


class MatchboxAPI(Protocol):
    """The calls the provider makes (``tests/real/matchbox_grpc.py`` MatchboxClient's)."""

    def profile_put(self, profile: JsonObject) -> None: ...
    def profile_get(self, profile_id: str) -> JsonObject: ...
    def profile_delete(self, profile_id: str) -> None: ...
    def group_put(self, group: JsonObject) -> None: ...
    def group_get(self, group_id: str) -> JsonObject: ...
    def group_delete(self, group_id: str) -> None: ...
    def ignition_put(self, name: str, config: bytes) -> None: ...
    def ignition_get(self, name: str) -> bytes: ...
    def ignition_delete(self, name: str) -> None: ...
    def close(self) -> None: ...


Dialer = Callable[[str, str, str, str], MatchboxAPI]


def _split_host_port(endpoint: str) -> None:
    # poseidon/matchbox matchbox/client/client.go New: `net.SplitHostPort(endpoint)`.
    host, colon, port = endpoint.rpartition(":")
    if not colon or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        raise ProviderError(
            f"client: invalid host:port endpoint: address {endpoint}: missing port in address"
        )
    del port


def dial_matchbox(endpoint: str, ca: str, client_cert: str, client_key: str) -> MatchboxAPI:
    """matchbox/matchbox.go NewMatchboxClient: the CA must hold a PEM certificate
    ("no PEM certificates were parsed"), the client pair must load, and the connection must
    come up within 25 s (``grpc.WithBlock()``, ``grpc.WithTimeout``)."""
    import grpc
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    _split_host_port(endpoint)
    try:
        x509.load_pem_x509_certificates(ca.encode())
    except ValueError:
        raise ProviderError("no PEM certificates were parsed") from None
    try:
        x509.load_pem_x509_certificates(client_cert.encode())
        serialization.load_pem_private_key(client_key.encode(), password=None)
    except ValueError as error:
        raise ProviderError(f"tls: {error}") from None

    import matchbox_grpc

    work = Path(tempfile.mkdtemp(prefix="matchbox-stand-in-"))
    atexit.register(shutil.rmtree, work, True)
    stubs = matchbox_grpc.generate_stubs(work / "stubs")
    tls_dir = work / "tls"
    tls_dir.mkdir(mode=0o700)
    files = matchbox_grpc.TLSFiles(
        ca_cert=tls_dir / "ca.crt",
        # The server's pair is Matchbox's, not the client's: these two are never read.
        server_cert=tls_dir / "unused-server.crt",
        server_key=tls_dir / "unused-server.key",
        client_cert=tls_dir / "client.crt",
        client_key=tls_dir / "client.key",
    )
    files.ca_cert.write_text(ca)
    files.client_cert.write_text(client_cert)
    files.client_key.touch(mode=0o600)
    files.client_key.write_text(client_key)
    client = matchbox_grpc.MatchboxClient(endpoint, files, stubs)
    try:
        client.wait_ready(DIAL_TIMEOUT_SECONDS)
    except grpc.FutureTimeoutError:
        client.close()
        raise ProviderError("context deadline exceeded") from None
    return client


CONFIG_KEYS = ("endpoint", "clientCert", "clientKey", "ca")


def _is_zero(value: Value) -> bool:
    # SDKv2 reads an unset attribute as its type's zero value: "", an empty list or map.
    plain = reveal(value)
    return plain is None or plain == "" or plain == [] or plain == {}


def _sdkv2_diff(keys: tuple[str, ...], olds: Props, news: Props) -> DiffResult:
    """SDKv2's diff of the schema's attributes (the stored state against the new inputs;
    unset and zero are the same); every one is ``ForceNew``, so every change replaces."""

    def normal(props: Mapping[str, Value]) -> Props:
        return {k: reveal(props.get(k)) for k in keys if not _is_zero(props.get(k))}

    detailed = object_diff(normal(olds), normal(news))
    return DiffResult({path: as_replace(kind) for path, kind in detailed.items()})


class MatchboxResource(Resource):
    keys: tuple[str, ...]
    required: tuple[str, ...]

    def __init__(self, provider: MatchboxProvider) -> None:
        self.provider = provider

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        failures = [
            CheckFailure(
                k,
                f'Missing required argument: The argument "{k}" is required, but'
                " no definition was found.",
            )
            for k in self.required
            if news.get(k) is None
        ]
        return dict(news), failures

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        return _sdkv2_diff(self.keys, olds, news)

    def outputs(self, news: Props, id_: Value) -> Props:
        return {**{k: v for k, v in news.items() if k in self.keys}, "id": id_}


def _strings(value: Value) -> list[str]:
    plain = reveal(value)
    return [str(v) for v in plain] if isinstance(plain, list) else []


def _ignition_file(props: Mapping[str, Value]) -> tuple[str, str]:
    """resource_profile.go containerLinuxConfig: the config and its file, named after the
    profile: ``<name>.yaml.tmpl`` for a Container Linux config, ``<name>.ign`` for raw
    Ignition; ("", "") for neither (an empty string is unset, ``d.GetOk``)."""
    name = text(props.get("name")) or ""
    container_linux = text(props.get("containerLinuxConfig"))
    if container_linux:
        return f"{name}.yaml.tmpl", container_linux
    raw = text(props.get("rawIgnition"))
    if raw:
        return f"{name}.ign", raw
    return "", ""


class Profile(MatchboxResource):
    token = "matchbox:index/profile:Profile"
    keys = (
        "name",
        "kernel",
        "initrds",
        "args",
        "containerLinuxConfig",
        "rawIgnition",
        "genericConfig",
    )
    required = ("name",)

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        inputs, failures = super().check(olds, news)
        if not _is_zero(news.get("genericConfig")):
            failures.append(CheckFailure("genericConfig", "not modelled by the matchbox stand-in"))
        return inputs, failures

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        if preview:
            return "", self.outputs(news, UNKNOWN)
        # validateResourceProfile.
        if not _is_zero(news.get("containerLinuxConfig")) and not _is_zero(news.get("rawIgnition")):
            raise ProviderError("container_linux_config and raw_ignition are mutually exclusive")
        api = self.provider.api()
        name = text(news["name"]) or ""
        file_name, content = _ignition_file(news)
        # resourceProfileCreate: ProfilePut of the profile (id = name), then IgnitionPut of
        # its config; "Partial creates do not modify state and can be retried safely."
        api.profile_put(
            {
                "id": name,
                "boot": {
                    "kernel": text(news.get("kernel")) or "",
                    "initrd": _strings(news.get("initrds")),
                    "args": _strings(news.get("args")),
                },
                "ignition_id": file_name,
            }
        )
        if content:
            api.ignition_put(file_name, content.encode())
        return name, self.outputs(news, name)

    def delete(self, call: Call, id_: str, olds: Props, old_inputs: Props) -> None:
        # resourceProfileDelete: ProfileDelete, then IgnitionDelete of the stored config.
        api = self.provider.api()
        api.profile_delete(text(olds.get("name")) or id_)
        file_name, content = _ignition_file(olds)
        if content:
            api.ignition_delete(file_name)

    def read(self, call: Call, id_: str, state: Props, inputs: Props) -> tuple[str, Props, Props]:
        # resourceProfileRead: ProfileGet; a profile (or its config) that cannot be read is
        # gone (`d.SetId("")`); else kernel, initrd, args and the config come from Matchbox.
        import grpc

        api = self.provider.api()
        name = text(state.get("name")) or id_
        try:
            profile = api.profile_get(name)
        except grpc.RpcError:
            return "", {}, {}
        boot = profile.get("boot") or {}
        found: Props = {
            "kernel": boot.get("kernel") or None,
            "initrds": list(boot.get("initrd") or []) or None,
            "args": list(boot.get("args") or []) or None,
        }
        ignition_id = str(profile.get("ignition_id") or "")
        if ignition_id:
            try:
                config = api.ignition_get(ignition_id).decode()
            except grpc.RpcError:
                return "", {}, {}
            raw = ignition_id.endswith(".ign") or ignition_id.endswith(".ignition")
            found["rawIgnition" if raw else "containerLinuxConfig"] = config
        outputs = _merge(state, found)
        return id_, outputs, _merge(inputs, found)


def _merge(props: Props, found: Props) -> Props:
    """Values read back replace the stored ones, keeping a secret mark where the value is the
    same (the engine kept it)."""
    out = dict(props)
    for key, value in found.items():
        if value is None:
            out.pop(key, None)
        elif reveal(props.get(key)) == value:
            continue
        else:
            out[key] = secret(value) if is_secret(props.get(key)) else value
    return out


class Group(MatchboxResource):
    token = "matchbox:index/group:Group"
    keys = ("name", "profile", "selector", "metadata")
    required = ("name", "profile")

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        if preview:
            return "", self.outputs(news, UNKNOWN)
        api = self.provider.api()
        name = text(news["name"]) or ""
        selector = reveal(news.get("selector"))
        metadata = reveal(news.get("metadata"))
        # resourceGroupCreate: a RichGroup (id = name, metadata JSON-encoded), GroupPut.
        api.group_put(
            {
                "id": name,
                "profile": text(news.get("profile")) or "",
                "selector": dict(selector) if isinstance(selector, dict) else {},
                "metadata": dict(metadata) if isinstance(metadata, dict) else {},
            }
        )
        return name, self.outputs(news, name)

    def delete(self, call: Call, id_: str, olds: Props, old_inputs: Props) -> None:
        # resourceGroupDelete: GroupDelete.
        self.provider.api().group_delete(text(olds.get("name")) or id_)

    def read(self, call: Call, id_: str, state: Props, inputs: Props) -> tuple[str, Props, Props]:
        # resourceGroupRead: GroupGet; gone when it fails; selector, profile, metadata read.
        import grpc

        try:
            group = self.provider.api().group_get(text(state.get("name")) or id_)
        except grpc.RpcError:
            return "", {}, {}
        found: Props = {
            "selector": group.get("selector") or None,
            "profile": group.get("profile") or None,
            "metadata": group.get("metadata") or None,
        }
        return id_, _merge(state, found), _merge(inputs, found)


class MatchboxProvider(Provider):
    def __init__(self, dialer: Dialer = dial_matchbox) -> None:
        self._dialer = dialer
        self._api: MatchboxAPI | None = None
        super().__init__("matchbox", "0.3.0", [Profile(self), Group(self)])

    def check_config(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        # provider.go: the four settings are Required; resources.go marks client_key secret.
        failures = [
            CheckFailure(
                k,
                f'Missing required argument: The argument "{k}" is required, but'
                " no definition was found.",
            )
            for k in CONFIG_KEYS
            if news.get(k) is None
        ]
        inputs = dict(news)
        if "clientKey" in inputs:
            inputs["clientKey"] = secret(inputs["clientKey"])
        return inputs, failures

    def configure(self, config: Props) -> None:
        # providerConfigure: dial now; a failure fails the configuration.
        values = {k: config.get(k) for k in CONFIG_KEYS}
        if not all(v is not None and is_known(v) for v in values.values()):
            return
        endpoint = text(values["endpoint"]) or ""
        try:
            api = self._dialer(
                endpoint,
                text(values["ca"]) or "",
                text(values["clientCert"]) or "",
                text(values["clientKey"]) or "",
            )
        except ProviderError as error:
            raise ProviderError(
                f"failed to create Matchbox client or connect to {endpoint}: {error}"
            ) from error
        if self._api is not None:
            self._api.close()
        self._api = api

    def api(self) -> MatchboxAPI:
        if self._api is None:
            raise ProviderError("the matchbox provider is not configured")
        return self._api


if __name__ == "__main__":
    serve(MatchboxProvider())
