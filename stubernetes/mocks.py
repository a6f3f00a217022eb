"""The program under Pulumi's mocks: stand-in outputs, and a monitor that records every option.

Resource options (delete_before_replace, dependencies, replace_with, ...) are not part of
`MockResourceArgs`; the `RegisterResourceRequest` that a `MockMonitor` receives carries them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

# Re-exported: the tests and the render read registered inputs with it.
from components.previous import unwrap_secrets as unwrap_secrets
from ignition.material import TOKEN_ALPHABET
from stubernetes import standin_pki

SECRET_SIG_KEY = rpc._special_sig_key


def _random_bytes(seed: str, name: str, inputs: dict[str, Any]) -> bytes:
    # A real random resource only changes when it is replaced, e.g. when its keepers change:
    # the stand-in follows its inputs, so a new generation gives a new token.
    canonical = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(f"stubernetes-standin/{seed}/random/{name}/{canonical}".encode()).digest()


def _random_text(seed: str, name: str, inputs: dict[str, Any], length: int) -> str:
    digest = _random_bytes(seed, name, inputs)
    return "".join(TOKEN_ALPHABET[b % len(TOKEN_ALPHABET)] for b in digest)[:length]


class StandInMocks(pulumi.runtime.Mocks):
    """Outputs a real engine would compute, derived from a seed so renders are reproducible.

    `previous_outputs` are what the program reads of its own stack (its last update's
    outputs; none for a new stack). `renewed_certs` names certificates to return as renewed:
    the same request signed again, as the tls provider does when it replaces one that is due.
    `now` is when the stand-in world creates things (certificates start then, installs start
    then): fixed by default so renders are reproducible; a test that hands the output to a
    real API server passes the real time, or the year-long certificates have long expired.
    `cluster_facts` is what components/scripts/cluster-facts would print of a running cluster
    (none by default: under mocks no cluster is asked, and the program learns nothing of one).
    """

    def __init__(
        self,
        seed: str,
        previous_outputs: dict[str, Any] | None = None,
        renewed_certs: frozenset[str] = frozenset(),
        now: datetime.datetime = standin_pki.EPOCH,
        cluster_facts: str = "",
    ) -> None:
        self.seed = seed
        self.cluster_facts = cluster_facts
        self.previous_outputs = previous_outputs or {}
        self.renewed_certs = renewed_certs
        self.now = now

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = unwrap_secrets(args.inputs)
        outputs: dict[str, Any] = {}
        if args.typ == "tls:index/privateKey:PrivateKey":
            outputs = standin_pki.private_key(self.seed, args.name)
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            outputs = standin_pki.self_signed_cert(args.name, inputs, self.now)
        elif args.typ == "tls:index/certRequest:CertRequest":
            outputs = standin_pki.cert_request(inputs)
        elif args.typ == "tls:index/locallySignedCert:LocallySignedCert":
            label = f"{args.name}/renewed" if args.name in self.renewed_certs else args.name
            outputs = standin_pki.locally_signed_cert(label, inputs, self.now)
        elif args.typ in (
            "random:index/randomString:RandomString",
            "random:index/randomPassword:RandomPassword",
        ):
            length = int(inputs["length"])
            outputs = {"result": _random_text(self.seed, args.name, inputs, length)}
        elif args.typ == "random:index/randomId:RandomId":
            raw = _random_bytes(self.seed, args.name, inputs)[: int(inputs["byteLength"])]
            outputs = {"hex": raw.hex(), "dec": str(int.from_bytes(raw))}
        elif args.typ == "command:local:Command" and inputs.get("create", "").endswith(
            "/install-clock"
        ):
            # What the install clock prints (components/scripts/install-clock): the world's now.
            outputs = {"stdout": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "stderr": ""}
        elif args.typ == "command:local:Command":
            # Under mocks nothing runs; the output says so rather than faking a result.
            outputs = {"stdout": "not run (offline render)", "stderr": ""}
        return f"{args.name}-id", {**args.inputs, **outputs}

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "pulumi:pulumi:readStackOutputs":
            # As the engine's builtin provider answers it (pulumi/pulumi
            # pkg/resource/deploy/builtins.go readStackOutputs): the stack's name, the outputs of
            # its last completed update, and which of them are secret.
            name = args.args.get("name", "")
            return {"name": name, "outputs": self.previous_outputs, "secretOutputNames": []}, []
        if args.token == "command:local:run":
            # pulumi-command local/runController.go: the inputs back, with the command's output.
            return {**args.args, "stdout": self.cluster_facts, "stderr": ""}, []
        return {}, []


@dataclass
class Registration:
    """What the program asked the engine for one resource, options included."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    delete_before_replace: bool
    replace_on_changes: list[str]
    replace_with: list[str]
    additional_secret_outputs: list[str]
    inputs: dict[str, Any] = field(default_factory=dict)
    # The inputs as sent, each secret marked where it is (not pushed up to its top-level key as
    # `rpc.deserialize_properties` does) and whole numbers as integers.
    inputs_in_place: dict[str, Any] = field(default_factory=dict)
    # The outputs the engine returned, likewise.
    outputs_in_place: dict[str, Any] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}
        self.texts = SharedTexts()

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[-2:-1] == ["pulumi:pulumi:Stack"]:
            self.stack_outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.additionalSecretOutputs:
            # As the engine does: outputs a provider declares secret come back secret.
            state = rpc.deserialize_properties(response.object)
            for key in request.additionalSecretOutputs:
                if key in state and not rpc.is_rpc_secret(state[key]):
                    state[key] = {SECRET_SIG_KEY: rpc._special_secret_sig, "value": state[key]}
            response.object.CopyFrom(_sync_await(rpc.serialize_properties(state, {})))
        if request.type != "pulumi:pulumi:Stack":
            registered = self.resources.get(response.urn)
            if registered is not None:
                self.texts.share(registered.state)
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=request.custom,
                    provider=request.provider,
                    dependencies=sorted(request.dependencies),
                    property_dependencies={
                        key: sorted(value.urns)
                        for key, value in sorted(request.propertyDependencies.items())
                    },
                    delete_before_replace=request.deleteBeforeReplace,
                    replace_on_changes=sorted(request.replaceOnChanges),
                    replace_with=sorted(request.replace_with),
                    additional_secret_outputs=sorted(request.additionalSecretOutputs),
                    inputs=self.texts.share(rpc.deserialize_properties(request.object)),
                    inputs_in_place=in_place(request.object, self.texts),
                    outputs_in_place=in_place(response.object, self.texts),
                    ignore_changes=sorted(request.ignoreChanges),
                )
            )
        return response


class SharedTexts:
    """One str object for each distinct long text the recording holds. A registration is read
    three times over (its inputs as the SDK reads them, and its inputs and outputs as sent) and
    the mock monitor keeps its state besides: without sharing, each machine's Ignition and each
    step's kubeconfig were held four times over (70 MB of peak memory at 500 machines)."""

    SHORTEST = 64

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def text(self, value: str) -> str:
        if len(value) < self.SHORTEST:
            return value
        return self._texts.setdefault(value, value)

    def share(self, value: Any) -> Any:
        """`value` with each long text in it replaced by the shared one, in place."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = self.share(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = self.share(item)
        return value


def _plain(value: struct_pb2.Value, texts: SharedTexts) -> Any:
    """A protobuf Value as `json_format.MessageToDict` reads it, whole numbers as integers."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return texts.text(value.string_value)
    if kind == "struct_value":
        return {key: _plain(item, texts) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_plain(item, texts) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            # As MessageToDict refuses them: JSON has no such number.
            raise ValueError(f"Fail to serialize {number} for Value.number_value")
        return int(number) if number.is_integer() else number
    if kind == "bool_value":
        return value.bool_value
    return None


def in_place(properties: struct_pb2.Struct, texts: SharedTexts | None = None) -> dict[str, Any]:
    """Properties as the wire carries them: a secret stays marked exactly where it is (as the
    `rpc.wrap_rpc_secret` form, which `rpc.is_rpc_secret` recognises), so a map with one secret
    entry keeps its other entries readable; numbers, which the wire holds as doubles, are
    integers again where they are whole (a port is 53, not 53.0). Read field by field as
    `json_format.MessageToDict` reads a Struct, without its generic walk over descriptors."""
    shared = texts or SharedTexts()
    return {key: _plain(value, shared) for key, value in properties.fields.items()}
