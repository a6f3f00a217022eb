"""The whole Pulumi program under the SDK's mocks, run as the language host runs it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pulumi
import pytest
from program_stacks import sized_stack
from pulumi.runtime import rpc

from ignition.kubeadm_certs import BOOTSTRAP_TOKEN_GROUP
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program
from stubernetes.render import resource_record

PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"
SECRET_KEYS = ["matchbox"]


@pytest.fixture(scope="module", params=[(1, 2), (3, 5)], ids=["example-1c2w", "3c5w"])
def program(
    request: pytest.FixtureRequest, example_values: dict[str, Any]
) -> tuple[int, ProgramRun]:
    controllers, workers = request.param
    values = (
        example_values
        if (controllers, workers) == (1, 2)
        else sized_stack(example_values, controllers, workers)
    )
    return controllers + workers, run_program(values, SECRET_KEYS)


def of_type(run: ProgramRun, type_: str) -> list[Registration]:
    return [r for r in run.registrations if r.type == type_]


def one(run: ProgramRun, type_: str, name: str) -> Registration:
    (found,) = [r for r in of_type(run, type_) if r.name == name]
    return found


def test_resource_types_and_counts(program: tuple[int, ProgramRun]) -> None:
    machines, run = program
    controllers = sum(1 for r in run.registrations if r.name.endswith("-certificate-key"))
    assert controllers == (1 if machines == 3 else 3)
    counts = Counter(r.type for r in run.registrations)
    assert counts == {
        "stubernetes:cluster:Cluster": 1,
        "stubernetes:cluster:Pki": 1,
        # Three CAs, service accounts, the admin and the break-glass client.
        "tls:index/privateKey:PrivateKey": 6,
        "tls:index/selfSignedCert:SelfSignedCert": 3,
        "tls:index/certRequest:CertRequest": 2,
        "tls:index/locallySignedCert:LocallySignedCert": 2,
        "stubernetes:cluster:BootstrapToken": machines,
        "random:index/randomString:RandomString": machines,
        # Each machine's token secret, and each controller's certificate key.
        "random:index/randomPassword:RandomPassword": machines + controllers,
        "stubernetes:machine:Machine": machines,
        PROFILE: machines,
        GROUP: machines,
        "pulumi:providers:matchbox": 1,
        "pulumi:providers:kubernetes": 1,
        # Every machine's token, the init controller's too: it joins with it when booted again.
        "kubernetes:core/v1:Secret": machines,
        "stubernetes:cluster:ReadinessGate": 3,
        # Three gates, and each machine's install clock, clean, network-boot and rejoin
        # steps, its membership step and its upgrade step; each controller's upload of its
        # certificates and wait for its join.
        COMMAND: 3 + 6 * machines + 2 * controllers,
        "random:index/randomId:RandomId": machines,  # each machine's install anchor
        # The core release, OpenEBS, and with the stack's loadBalancerPool: MetalLB, Gateway
        # API's CRDs, Envoy Gateway, the pool and Gateway (lan), the household DNS.
        RELEASE: 7,
        # Each machine's status report: its ConfigMap, and the Role and RoleBinding that let
        # its token alone write it; and the one Role and RoleBinding that let bootstrap tokens
        # read the kubeadm-certs Secret (kubeadm's createRBAC).
        # The same for each machine's upgrade channel, written by its kubelet
        # (components/upgrade_channel.py).
        "stubernetes:machine:StatusReport": machines,
        "stubernetes:machine:UpgradeChannel": machines,
        "kubernetes:core/v1:ConfigMap": 2 * machines,
        "kubernetes:rbac.authorization.k8s.io/v1:Role": 2 * machines + 1,
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 2 * machines + 1,
    }


def test_releases_wait_for_the_right_gate(program: tuple[int, ProgramRun]) -> None:
    _, run = program
    gates = {
        name: one(run, COMMAND, f"lab-{name}").urn for name in ("api-server", "registered", "ready")
    }
    for release in of_type(run, RELEASE):
        expected = "registered" if release.name == "stubernetes-core" else "ready"
        waits = {gate for gate, urn in gates.items() if urn in release.dependencies}
        assert waits == {expected}, release.name
    # And after the releases each needs: CRDs before their objects, the pool before a Service
    # that waits for an address from it.
    for name, needed in (
        ("envoy-gateway", {"gateway-api"}),
        ("lan", {"metallb", "envoy-gateway"}),
        ("household-dns", {"lan"}),
    ):
        dependencies = set(one(run, RELEASE, name).dependencies)
        assert {one(run, RELEASE, n).urn for n in needed} <= dependencies, name
    # The ready gate waits for the pod network, which the core release brings.
    core = one(run, RELEASE, "stubernetes-core")
    assert core.urn in one(run, COMMAND, "lab-ready").dependencies


def test_every_gate_waits_for_every_machine(program: tuple[int, ProgramRun]) -> None:
    machines, run = program
    groups = {r.urn for r in of_type(run, GROUP)}
    assert len(groups) == machines
    for gate in ("lab-registered", "lab-ready"):
        assert groups <= set(one(run, COMMAND, gate).dependencies), gate
    # The tokens go in as soon as the API server answers, which needs the init controller only.
    api_server = one(run, COMMAND, "lab-api-server")
    assert api_server.urn in one(run, COMMAND, "lab-registered").dependencies
    assert set(api_server.dependencies) & groups == {one(run, GROUP, "lab-c1").urn}
    for secret in of_type(run, "kubernetes:core/v1:Secret"):
        assert api_server.urn in secret.dependencies


def test_matchbox_objects_are_deleted_before_replacement(program: tuple[int, ProgramRun]) -> None:
    _, run = program
    objects = of_type(run, PROFILE) + of_type(run, GROUP)
    assert objects and all(r.delete_before_replace for r in objects)
    for registration in objects:
        inputs = unwrap_secrets(registration.inputs)
        assert inputs["name"] == registration.name  # the id is the name: <cluster>-<machine>


def test_secrets_arrive_secret(program: tuple[int, ProgramRun]) -> None:
    _, run = program
    assert rpc.is_rpc_secret(run.stack_outputs["kubeconfig"])
    assert not rpc.is_rpc_secret(run.stack_outputs["machines"])
    for profile in of_type(run, PROFILE):
        assert rpc.is_rpc_secret(profile.inputs["rawIgnition"]), profile.name
    provider = one(run, "pulumi:providers:kubernetes", "cluster")
    assert rpc.is_rpc_secret(provider.inputs["kubeconfig"])
    matchbox = one(run, "pulumi:providers:matchbox", "matchbox")
    for key in ("clientKey", "clientCert", "ca"):
        assert rpc.is_rpc_secret(matchbox.inputs[key]), key
    for step in of_type(run, COMMAND):
        environment = step.inputs["environment"]
        if rpc.is_rpc_secret(environment):
            continue
        for key in ("KUBECONFIG_CONTENT", "BMC_PASSWORD"):
            if key in environment:
                assert rpc.is_rpc_secret(environment[key]), (step.name, key)
    for secret in of_type(run, "kubernetes:core/v1:Secret"):
        data = secret.inputs["stringData"]
        assert rpc.is_rpc_secret(data) or rpc.is_rpc_secret(data["token-secret"])
    for signer in of_type(run, "tls:index/locallySignedCert:LocallySignedCert"):
        assert rpc.is_rpc_secret(signer.inputs["caPrivateKeyPem"])
    for cert in of_type(run, "tls:index/selfSignedCert:SelfSignedCert"):
        assert rpc.is_rpc_secret(cert.inputs["privateKeyPem"])


def secret_strings(value: Any, inside_secret: bool = False) -> list[str]:
    if rpc.is_rpc_secret(value):
        return secret_strings(rpc.unwrap_rpc_secret(value), True)
    if isinstance(value, dict):
        return [s for v in value.values() for s in secret_strings(v, inside_secret)]
    if isinstance(value, list):
        return [s for v in value for s in secret_strings(v, inside_secret)]
    return [value] if inside_secret and isinstance(value, str) else []


def test_no_secret_value_appears_in_plain_text(program: tuple[int, ProgramRun]) -> None:
    _, run = program
    records = json.dumps([resource_record(r) for r in run.registrations])
    plain_outputs = json.dumps(unwrap_secrets(run.stack_outputs["machines"]))
    # Secrets exactly where the program marked them (a secret variable of an environment, not
    # every variable beside it), as the engine receives them.
    secrets = {s for r in run.registrations for s in secret_strings(r.inputs_in_place)}
    secrets |= set(secret_strings(run.stack_outputs))
    # Short strings (an empty stdout, "true") say nothing about a secret.
    secrets = {s for s in secrets if len(s) >= 12}
    # Nor does kubeadm's group name, which a token Secret carries beside its secret and the
    # kubeadm-certs RoleBinding names (kubernetes cmd/kubeadm/app/constants.go
    # NodeBootstrapTokenAuthGroup).
    secrets.discard(BOOTSTRAP_TOKEN_GROUP)
    assert len(secrets) > 10
    tokens = [s for s in secrets if len(s) == 16 and s.isalnum()]
    assert tokens, "the token secrets are among the secret values"
    for value in secrets:
        assert value not in records, value[:40]
        assert value not in plain_outputs
        # A key's body is as secret as the key: no line of it shows anywhere.
        for line in value.splitlines():
            if len(line) >= 40 and "KEY" not in line:
                assert line not in records


def test_bad_config_stops_the_program_before_any_resource(example_values: dict[str, Any]) -> None:
    values = json.loads(json.dumps(example_values))
    values["machines"]["w1"]["mac"] = "not-a-mac"
    with pytest.raises(pulumi.RunError, match="machine 'w1': field 'mac'"):
        run_program(values, SECRET_KEYS)


def test_bad_config_registers_nothing(example_values: dict[str, Any]) -> None:
    monitor = RecordingMonitor(StandInMocks("x"))
    values = json.loads(json.dumps(example_values))
    del values["admin"]["sshAuthorizedKeys"]
    with pytest.raises(pulumi.RunError, match="stubernetes:admin: field 'sshAuthorizedKeys'"):
        run_program(values, SECRET_KEYS, monitor=monitor)
    assert monitor.registrations == []


def test_provider_identity_is_known_even_at_preview(example_values: dict[str, Any]) -> None:
    """Only `clusterIdentifier` decides whether the Kubernetes provider (and with it every
    release) is replaced; it is a plain, known string, whatever the kubeconfig is at preview."""
    run = run_program(example_values, SECRET_KEYS, preview=True)
    provider = one(run, "pulumi:providers:kubernetes", "cluster")
    assert provider.inputs["clusterIdentifier"] == "stubernetes-lab"
    assert len(of_type(run, RELEASE)) == 7


def test_the_kubernetes_provider_waits_for_the_api_server(program: tuple[int, ProgramRun]) -> None:
    """pulumi-kubernetes reads the API server's schema when it is configured and, with no
    server there, marks the cluster unreachable for the rest of the update, failing every
    resource through it (pulumi/pulumi-kubernetes provider/pkg/provider/provider.go,
    Configure and `clusterUnreachable`): the first up of a new cluster configures it only
    after the API gate passed. Found by the real engine (tests/engine/test_engine_stack.py)."""
    _, run = program
    gate = one(run, COMMAND, "lab-api-server")
    provider = one(run, "pulumi:providers:kubernetes", "cluster")
    assert gate.urn in provider.dependencies
