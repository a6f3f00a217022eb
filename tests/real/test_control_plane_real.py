"""A real control plane from what the program writes, and the program's other output against it.

The stack is the example's with a second controller c2 and the API endpoint at a virtual IP
(control_plane.stacks.with_second_controller). The whole program runs under mocks; the init
controller's Ignition is laid out in a scratch root; kubeadm's init phases write the PKI,
kubeconfigs and static Pod manifests; etcd, kube-apiserver, kube-controller-manager and
kube-scheduler run as local processes from those manifests, with every flag as kubeadm wrote
it and only the mounted paths moved under the root (control_plane.static_pods). They run in a
network namespace of their own whose loopback carries the init controller's address and the
virtual IP (control_plane.netns: kubeadm refuses a loopback advertise address), so every
address and port is the machine's own and free, and nothing is reachable from outside.
kwok plays the machines' kubelets. Everything is started once for this module and stopped at
its end; a failing test gets every component's log.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import os
import re
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.cluster import (
    ControlPlane,
    certificate_problem,
    kubectl_binary,
    start_control_plane,
)
from control_plane.kubeadm import HOST_CHECKS, config_args, kubeadm, machine_root
from control_plane.kwok import node_object, start_kwok
from control_plane.program_output import (
    KUBEADM_CONFIG,
    MachineOutput,
    ProgramOutput,
    render_program,
)
from control_plane.stacks import for_built_kubeadm, with_second_controller
from cryptography import x509
from cryptography.x509.oid import NameOID
from real_process import RealProcess
from repo_paths import REPO
from tool_cache import require_tool

pytestmark = pytest.mark.real

BOOTSTRAP_GROUP = "system:bootstrappers"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def running() -> list[RealProcess]:
    """Every process this module started, for the logs a failure gets."""
    return []


@pytest.fixture(autouse=True)
def attach_logs(request: pytest.FixtureRequest, running: list[RealProcess]) -> Iterator[None]:
    """On a failure, every component's log goes into the report (as captured output of the
    test's teardown, which pytest prints with the failure)."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for process in running:
            print(process.log_tail(80))


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(with_second_controller(example_values))


@pytest.fixture(scope="module")
def plane(
    output: ProgramOutput,
    tmp_path_factory: pytest.TempPathFactory,
    running: list[RealProcess],
) -> Iterator[ControlPlane]:
    plane = start_control_plane(output, tmp_path_factory.mktemp("control-plane"))
    if plane.operator_note:
        # The other tests still need an operator: kubeadm's own admin.conf stands in, and
        # test_the_programs_admin_kubeconfig_is_cluster_admin fails on the program's.
        warnings.warn(
            f"{plane.operator_note}; kubectl here uses kubeadm's admin.conf", stacklevel=1
        )
    running.extend([*plane.processes, plane.namespace.holder])
    try:
        yield plane
    finally:
        plane.stop()
        assert not any(p.alive() for p in [*plane.processes, plane.namespace.holder])


@pytest.fixture(scope="module")
def tokens_applied(plane: ControlPlane, output: ProgramOutput) -> dict[str, str]:
    """Each machine's bootstrap-token Secret, as the program creates it, applied with the
    program's admin kubeconfig; returns each machine's token."""
    plane.apply(list(output.token_secrets.values()))
    return {name: _token(secret) for name, secret in output.token_secrets.items()}


@pytest.fixture(scope="module")
def published(plane: ControlPlane, tokens_applied: dict[str, str]) -> None:
    """kubeadm init's bootstrap-token phase, after upload-config (which start_control_plane ran:
    the kubeadm-config and kubelet-config ConfigMaps, and the RBAC that lets bootstrap tokens
    read them, kubernetes `cmd/kubeadm/app/phases/uploadconfig/uploadconfig.go`): the
    InitConfiguration's tokens, the RBAC for node bootstrap and CSR approval, and the
    cluster-info ConfigMap in kube-public that anonymous users may read
    (`cmd/kubeadm/app/cmd/phases/init/bootstraptoken.go`,
    `cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/clusterinfo.go`)."""
    plane.init_phase("bootstrap-token")


@pytest.fixture(scope="module")
def kwok(plane: ControlPlane, running: list[RealProcess]) -> Iterator[RealProcess]:
    process = start_kwok(plane.admin_kubeconfig, plane.work / "logs", plane.namespace)
    running.append(process)
    try:
        yield process
    finally:
        process.stop()
        assert not process.alive()


@pytest.fixture
def real_kubectl_path(tmp_path: Path) -> str:
    """PATH with the real kubectl first, as the operator's machine has it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(kubectl_binary())
    return f"{bin_dir}:{os.environ['PATH']}"


# --------------------------------------------------------------------------- helpers


def _token(secret: dict[str, Any]) -> str:
    data = secret.get("stringData") or {
        k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()
    }
    return f"{data['token-id']}.{data['token-secret']}"


def _kubeadm_token(machine: MachineOutput) -> str | None:
    """The token in the machine's own kubeadm config: its join's, or its init's first."""
    documents = machine.kubeadm_documents()
    if "JoinConfiguration" in documents:
        token: str = documents["JoinConfiguration"]["discovery"]["bootstrapToken"]["token"]
        return token
    tokens = documents["InitConfiguration"].get("bootstrapTokens") or []
    return str(tokens[0]["token"]) if tokens else None


def _whoami(plane: ControlPlane, token: str) -> subprocess.CompletedProcess[str]:
    return plane.kubectl(
        f"--token={token}",
        "auth",
        "whoami",
        "-o",
        "json",
        kubeconfig=plane.anonymous_kubeconfig(),
        check=False,
    )


def _machines(output: ProgramOutput, role: str, init: bool = False) -> list[MachineOutput]:
    return [m for m in output.machines.values() if m.role == role and m.init == init]


def _run_command(
    plane: ControlPlane, command: dict[str, Any], path: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """As pulumi-command runs a Command's `create`: `/bin/sh -c <create>` in the project
    directory, with the process environment plus `environment` (pulumi/pulumi-command
    `provider/pkg/provider/local/commandController.go` and `util.go` run)."""
    environment = {**os.environ, **command["environment"], **overrides, "PATH": path}
    if "KUBECONFIG_CONTENT" in command["environment"]:
        # The program gives its scripts its admin kubeconfig, which stays in use unless its
        # certificate cannot authenticate now (ControlPlane.operator_note).
        assert command["environment"]["KUBECONFIG_CONTENT"] == plane.output.admin_kubeconfig
        environment["KUBECONFIG_CONTENT"] = plane.admin_kubeconfig.read_text()
    return subprocess.run(
        plane.wrap(["/bin/sh", "-c", command["create"]]),
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _node_names(plane: ControlPlane) -> set[str]:
    listing = plane.kubectl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}").stdout
    return set(listing.split())


def _register(plane: ControlPlane, machines: list[MachineOutput], boot: str = "boot-1") -> None:
    """Nodes for the machines that have none, as their kubelets would register them."""
    present = _node_names(plane)
    new = [node_object(m, f"{m.name}-{boot}") for m in machines if m.name not in present]
    if new:
        document = {"apiVersion": "v1", "kind": "List", "items": new}
        plane.kubectl("create", "-f", "-", input_text=json.dumps(document))


def _wait_ready(plane: ControlPlane, names: list[str], timeout: int = 120) -> None:
    plane.kubectl(
        "wait",
        "--for=condition=Ready",
        *(f"node/{n}" for n in names),
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )


def _delete_nodes(plane: ControlPlane, names: list[str]) -> None:
    plane.kubectl("delete", "node", "--ignore-not-found", "--wait=true", *names)


# --------------------------------------------------------------------------- the control plane


def test_components_run_with_kubeadms_flags_and_only_their_mounts_moved(
    plane: ControlPlane,
) -> None:
    plane.check_alive()
    assert sorted(plane.argv) == sorted(plane.pods)
    for name, argv in plane.argv.items():
        pod = plane.pods[name]
        assert len(argv) == len(pod.command), name
        for written, ran in zip(pod.command[1:], argv[1:], strict=True):
            if ran != written:
                # A moved value names a mounted path under the root, nothing else differs.
                assert str(plane.root) in ran, (name, written, ran)
                assert ran.replace(str(plane.root), "") == written, (name, written, ran)
    # kubeadm's controller-manager runs the token signer and cleaner of its own accord
    # (kubernetes `cmd/kubeadm/app/phases/controlplane/manifests.go` getControllerManagerCommand;
    # the controllers: `pkg/controller/bootstrap/bootstrapsigner.go`, `tokencleaner.go`).
    assert plane.pods["kube-controller-manager"].flag("controllers") == (
        "*,bootstrapsigner,tokencleaner"
    )


@pytest.mark.parametrize("exported", ["kubeconfig", "breakGlassKubeconfig"])
def test_the_programs_admin_kubeconfigs_are_cluster_admin(
    plane: ControlPlane, output: ProgramOutput, exported: str, tmp_path: Path
) -> None:
    """Each admin kubeconfig the stack exports (components/pki.py, stand-in PKI under mocks)
    against the API server that kubeadm set up from the program's CA: `kubeconfig` in
    kubeadm's kubeadm:cluster-admins group (bound to cluster-admin by kubeadm init), the
    break-glass one in system:masters (which needs no binding: kubernetes
    `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`)."""
    if exported not in output.kubeconfigs:
        pytest.fail(f"the stack exports no {exported!r}: {sorted(output.kubeconfigs)}")
    text = output.kubeconfigs[exported]
    config = yaml.safe_load(text)
    (cluster,) = config["clusters"]
    # The stack's apiEndpoint is where the API server answers: no server is rewritten.
    assert cluster["cluster"]["server"] == f"https://{output.stack.cluster.api_endpoint}"
    problem = certificate_problem(text)
    assert not problem, f"{exported}: {problem}"
    program = tmp_path / "kubeconfig"
    program.write_text(text)
    program.chmod(0o600)
    answer = plane.kubectl("auth", "can-i", "*", "*", kubeconfig=program, check=False)
    assert answer.stdout.strip() == "yes", answer.stdout + answer.stderr
    # The identity is the admin certificate's: CN the user, each O a group (kubernetes
    # `staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go`
    # CommonNameUserConversion).
    (user,) = config["users"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))
    review = json.loads(plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=program).stdout)
    info = review["status"]["userInfo"]
    (common_name,) = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert info["username"] == common_name.value
    organizations = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert {str(o.value) for o in organizations} <= set(info["groups"])


def test_the_api_answers_at_a_single_controllers_own_api_endpoint(
    example_values: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    running: list[RealProcess],
) -> None:
    """With one controller the program takes an apiEndpoint at that controller's own address,
    with any port (stackconfig/checks.py api_endpoint_problems), and the nodes and the
    operator reach the cluster there (README: `apiEndpoint`). kubeadm serves the API on
    localAPIEndpoint.bindPort (`--secure-port`: kubernetes
    `cmd/kubeadm/app/phases/controlplane/manifests.go` getAPIServerCommand) and points
    admin.conf, cluster-info and every join at the controlPlaneEndpoint."""
    values = for_built_kubeadm(example_values)
    host, _, port = values["cluster"]["apiEndpoint"].rpartition(":")
    values["cluster"]["apiEndpoint"] = f"{host}:{8443 if port != '8443' else 9443}"
    output = render_program(values)
    assert (
        output.init_controller.kubeadm_documents()["ClusterConfiguration"]["controlPlaneEndpoint"]
        == (values["cluster"]["apiEndpoint"])
    )
    plane = start_control_plane(output, tmp_path_factory.mktemp("single-controller"))
    running.extend([*plane.processes, plane.namespace.holder])
    try:
        url = f"{plane.server}/readyz"
        probe = ["curl", "--silent", "--show-error", "--cacert", str(plane.ca_file), url]
        answer = plane.namespace.run(probe)
        assert answer.stdout.strip() == "ok", (
            f"{url}: {answer.stderr.strip()}; the API server listens on --secure-port="
            f"{plane.pods['kube-apiserver'].flag('secure-port')}"
        )
    finally:
        plane.stop()


def test_each_machines_token_secret_authenticates_as_that_token(
    plane: ControlPlane, output: ProgramOutput, tokens_applied: dict[str, str]
) -> None:
    """The bootstrap token authenticator takes a `bootstrap-token-<id>` Secret of type
    bootstrap.kubernetes.io/token in kube-system with usage-bootstrap-authentication "true",
    and names the user system:bootstrap:<id> in system:bootstrappers plus auth-extra-groups
    (kubernetes `plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go` AuthenticateToken)."""
    assert set(tokens_applied) >= {m for m, out in output.machines.items() if not out.init}
    for name, token in sorted(tokens_applied.items()):
        in_ignition = _kubeadm_token(output.machines[name])
        if in_ignition is not None:
            assert token == in_ignition, f"{name}: its Secret is not the token in its Ignition"
        answer = _whoami(plane, token)
        assert answer.returncode == 0, f"{name}: {answer.stderr}"
        user = json.loads(answer.stdout)["status"]["userInfo"]
        token_id = token.partition(".")[0]
        assert user["username"] == f"system:bootstrap:{token_id}", name
        secret = output.token_secrets[name]["stringData"]
        assert set(user["groups"]) >= {
            BOOTSTRAP_GROUP,
            *secret["auth-extra-groups"].split(","),
        }, name
    # The same id with another secret is refused: the Secret's secret is what authenticates.
    token_id, _, secret_part = next(iter(tokens_applied.values())).partition(".")
    wrong = f"{token_id}.{secret_part[::-1] if secret_part[::-1] != secret_part else 'x' * 16}"
    refused = _whoami(plane, wrong)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused


def test_bootstrap_token_phase_publishes_signed_cluster_info(
    plane: ControlPlane, output: ProgramOutput, tokens_applied: dict[str, str], published: None
) -> None:
    # Anonymous, as a joining machine asks before it trusts anything (kubernetes
    # `cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/clusterinfo.go`
    # CreateClusterInfoRBACRules lets system:anonymous get this ConfigMap).
    url = f"{plane.server}/api/v1/namespaces/kube-public/configmaps/cluster-info"
    deadline = time.monotonic() + 90
    while True:
        got = plane.namespace.run(
            ["curl", "--silent", "--show-error", "--fail", "--cacert", str(plane.ca_file), url]
        )
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)["data"]
        # The controller-manager's bootstrap signer adds a JWS signature of the kubeconfig
        # for every token that may sign (`pkg/controller/bootstrap/bootstrapsigner.go`).
        unsigned = [
            name
            for name, token in tokens_applied.items()
            if f"jws-kubeconfig-{token.partition('.')[0]}" not in data
        ]
        if not unsigned or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not unsigned, f"cluster-info not signed for the tokens of {unsigned}"
    published_config = yaml.safe_load(data["kubeconfig"])
    (cluster,) = published_config["clusters"]
    assert cluster["cluster"]["server"] == f"https://{output.stack.cluster.api_endpoint}"
    ca = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    assert ca == output.init_controller.shared_pki()["ca.crt"].contents


def test_joins_get_the_kubelet_configuration_from_the_cluster(
    plane: ControlPlane, output: ProgramOutput
) -> None:
    """A join ignores a KubeletConfiguration in its config file (kubernetes
    `cmd/kubeadm/app/util/config/joinconfiguration.go`, "Ignored configuration document")
    and downloads the kubelet-config ConfigMap that init's upload-config wrote from the init
    controller's document (`cmd/kubeadm/app/phases/uploadconfig/uploadconfig.go`,
    `cmd/kubeadm/app/componentconfigs/kubelet.go`): each joining machine's own document must
    agree with it, or its settings would be lost without a word."""
    got = plane.kubectl("get", "configmap", "kubelet-config", "-n", "kube-system", "-o", "json")
    uploaded = yaml.safe_load(json.loads(got.stdout)["data"]["kubelet"])
    init = output.init_controller.kubeadm_documents()["KubeletConfiguration"]
    for machine in output.machines.values():
        wanted = machine.kubeadm_documents().get("KubeletConfiguration", init)
        differing = {k: (v, uploaded.get(k)) for k, v in wanted.items() if uploaded.get(k) != v}
        assert not differing, f"{machine.name}: (its own, the cluster's) {differing}"


# The ports a joining controller's preflight finds taken (kubernetes
# `cmd/kubeadm/app/preflight/checks.go` InitNodeChecks: the API server's bindPort, then
# KubeSchedulerPort, KubeControllerManagerPort, EtcdListenClientPort, EtcdListenPeerPort of
# `cmd/kubeadm/app/constants/constants.go`): here it runs in the init controller's network
# namespace, whose control plane holds them; on its own machine they are free.
CONTROL_PLANE_PORTS = (10259, 10257, 2379, 2380)


def _shared_namespace_ports(machine: MachineOutput) -> list[str]:
    join = machine.kubeadm_documents()["JoinConfiguration"]
    if "controlPlane" not in join:
        return []
    local = join["controlPlane"].get("localAPIEndpoint", {})
    ports = (int(local.get("bindPort", 6443)), *CONTROL_PLANE_PORTS)
    return [f"Port-{port}" for port in ports]


# kubeadm's own words once token discovery trusts the cluster: the JWS signature with the
# token, then the TLS connection against the pinned CA hash
# (`cmd/kubeadm/app/discovery/token/token.go` retrieveValidatedConfigInfo).
DISCOVERED = (
    "Cluster info signature and contents are valid"
    " and TLS certificate validates against pinned roots"
)


@pytest.mark.parametrize("role", ["worker", "controller"])
def test_join_discovery_validates_the_published_cluster_info(
    plane: ControlPlane, output: ProgramOutput, published: None, role: str, tmp_path: Path
) -> None:
    """`kubeadm join phase preflight` with the machine's rendered JoinConfiguration runs token
    discovery (`cmd/kubeadm/app/cmd/phases/join/preflight.go` runPreflight -> joinData.InitCfg
    -> `cmd/kubeadm/app/discovery/discovery.go` For), then fetches the cluster's
    InitConfiguration with the token. A controller's Ignition carries no CA material but its
    certificate key, so checkIfReadyForAdditionalControlPlane does not look for the material
    (hasCertificateKey): control-plane-prepare downloads it (tests/real/test_cert_upload.py)."""
    machine = _machines(output, role)[0]
    root = machine_root(machine, tmp_path / "root")
    ignored = [*HOST_CHECKS, *_shared_namespace_ports(machine)]
    run = kubeadm(
        [
            "join",
            "phase",
            "preflight",
            *config_args(),
            f"--ignore-preflight-errors={','.join(ignored)}",
            "--v=1",
        ],
        rootfs=root,
        check=False,
        wrap=plane.wrap,
    )
    assert run.returncode == 0, run.report()
    endpoint = output.stack.cluster.api_endpoint
    assert f'{DISCOVERED}, will use API Server "{endpoint}"' in run.stderr, run.report()

    # The same join with a CA hash that is not the cluster's does not trust it.
    config = (root / KUBEADM_CONFIG.lstrip("/")).read_text()
    (pinned,) = re.findall(r"sha256:[0-9a-f]{64}", config)
    forged = "sha256:" + ("0" * 64 if pinned != "sha256:" + "0" * 64 else "1" * 64)
    documents = list(yaml.safe_load_all(config.replace(pinned, forged)))
    for document in documents:
        if document["kind"] == "JoinConfiguration":
            document["timeouts"] = {"discovery": "15s"}
    (root / KUBEADM_CONFIG.lstrip("/")).write_text(yaml.safe_dump_all(documents))
    refused = kubeadm(
        [
            "join",
            "phase",
            "preflight",
            *config_args(),
            f"--ignore-preflight-errors={','.join(ignored)}",
        ],
        rootfs=root,
        check=False,
        wrap=plane.wrap,
    )
    assert refused.returncode != 0, refused.report()
    assert "none of the public keys" in refused.stderr + refused.stdout, refused.report()


# --------------------------------------------------------------------------- the core chart


def _core_release(output: ProgramOutput) -> dict[str, Any]:
    (release,) = [r for r in output.releases.values() if r["chart"] == "charts/stubernetes-core"]
    return release


def _values_file(release: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(release.get("values") or {}))
    return path


def test_every_core_chart_object_passes_a_server_side_dry_run(
    plane: ControlPlane, output: ProgramOutput, tmp_path: Path
) -> None:
    """The chart rendered by the real helm with the values the program gives its Release
    (stackconfig/releases.py core_release, as registered), then `kubectl apply
    --dry-run=server`: admission, defaulting and validation of the real API server, nothing
    stored (kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go`
    dryRun)."""
    release = _core_release(output)
    helm = require_tool("helm", "helm")
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            release["name"],
            str(REPO / release["chart"]),
            "--namespace",
            release["namespace"],
            "--values",
            str(_values_file(release, tmp_path / "values.json")),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    assert objects
    # A namespaced object's dry run needs its namespace to exist, and a dry-run Namespace is
    # never stored: the chart's own Namespaces are created first, and removed afterwards so
    # that the Helm install below owns them.
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    created = [
        n["metadata"]["name"]
        for n in namespaces
        if plane.kubectl("get", "namespace", n["metadata"]["name"], check=False).returncode != 0
    ]
    try:
        if namespaces:
            plane.apply(namespaces)
        answer = plane.kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
            check=False,
        )
        assert answer.returncode == 0, answer.stderr
        lines = [line for line in answer.stdout.splitlines() if line.strip()]
        assert len(lines) == len(objects) and all("(server dry run)" in x for x in lines), (
            answer.stdout
        )
    finally:
        if created:
            plane.kubectl("delete", "namespace", "--wait=true", "--timeout=120s", *created)


# --------------------------------------------------------------------------- gates and reinstalls


def test_gate_script_passes_api_registered_ready_in_turn(
    plane: ControlPlane, output: ProgramOutput, kwok: RealProcess, real_kubectl_path: str
) -> None:
    """components/scripts/wait-for-nodes with the real kubectl: `kubectl get nodes` and the
    Ready condition each kwok Node gets (kwok `kustomize/stage/node/fast/node-initialize.yaml`)."""
    names = [m.name for m in output.stack.machines]
    _delete_nodes(plane, names)
    api = output.command("wait-for-nodes api")
    registered = output.command("wait-for-nodes registered")
    ready = output.command("wait-for-nodes ready")
    assert registered["environment"]["NODES"].split() == names
    fast = {"TIMEOUT_SECONDS": "4", "POLL_SECONDS": "1"}

    answer = _run_command(plane, api, real_kubectl_path, **fast)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[-1] == "gate api: the API server answers"

    init = output.init_controller
    _register(plane, [init])
    missing = [n for n in names if n != init.name]
    answer = _run_command(plane, registered, real_kubectl_path, **fast)
    assert answer.returncode == 1, answer.stdout
    timed_out, *reports = answer.stderr.strip().splitlines()
    assert timed_out == (
        f"gate registered: timed out after 4s; not registered as Nodes: {' '.join(missing)}"
    )
    # No status report objects in this cluster: the gate says so for each (the real ones:
    # tests/real/test_status_report_real.py).
    assert reports == [f"  {name}: last report: no report yet" for name in missing]
    answer = _run_command(plane, ready, real_kubectl_path, **fast)
    assert answer.returncode == 1
    timed_out = answer.stderr.strip().splitlines()[0]
    assert timed_out.startswith("gate ready: timed out after 4s; missing or not Ready: ")
    assert set(missing) <= set(timed_out.rpartition(": ")[2].split())

    _register(plane, list(output.machines.values()))
    answer = _run_command(plane, registered, real_kubectl_path, **fast)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[-1] == f"gate registered: passed ({len(names)} machines)"
    answer = _run_command(plane, ready, real_kubectl_path, TIMEOUT_SECONDS="120", POLL_SECONDS="1")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.splitlines()[-1] == f"gate ready: passed ({len(names)} machines)"


def test_a_workers_reinstall_steps_clean_and_wait_for_its_new_boot(
    plane: ControlPlane, output: ProgramOutput, kwok: RealProcess, real_kubectl_path: str
) -> None:
    """clean-before-rejoin drains and deletes the old Node (kubectl drain: kubernetes/kubectl
    `pkg/drain/drain.go`; kwok deletes the evicted pod: `kustomize/stage/pod/fast/pod-delete.yaml`)
    and prints its boot ID; wait-for-rejoin waits for a Node of that name with another boot ID
    that is Ready. As on a reinstall after the machine joined, INSTALLED_BEFORE is true (the
    program reads it from its last update's outputs: components/previous.py)."""
    all_machines = list(output.machines.values())
    _register(plane, all_machines)
    _wait_ready(plane, [m.name for m in all_machines])
    worker = _machines(output, "worker")[-1]
    old_boot = plane.kubectl(
        "get", "node", worker.name, "-o", "jsonpath={.status.nodeInfo.bootID}"
    ).stdout
    assert old_boot
    # A workload pod on the worker, for the drain to evict.
    plane.apply([_pinned_deployment(worker.name)])
    plane.kubectl(
        "wait",
        "--for=condition=Available",
        "deployment/drain-me",
        "-n",
        "default",
        "--timeout=120s",
    )
    clean = output.command("clean-before-rejoin", worker.name)
    cleaned = _run_command(plane, clean, real_kubectl_path, INSTALLED_BEFORE="true")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert cleaned.stdout.splitlines()[-1] == f"old-boot-id={old_boot}"
    assert f"drained {worker.name}" in cleaned.stdout
    assert "evicting pod default/drain-me-" in cleaned.stderr, cleaned.stderr
    assert worker.name not in _node_names(plane)

    rejoin = output.command("wait-for-rejoin", worker.name)
    waited = _run_command(
        plane,
        rejoin,
        real_kubectl_path,
        CLEAN_OUTPUT=cleaned.stdout.strip(),
        TIMEOUT_SECONDS="3",
        POLL_SECONDS="1",
    )
    assert waited.returncode == 1
    assert waited.stderr.startswith(f"{worker.name} did not rejoin within 3s: not registered yet")

    _register(plane, [worker], boot="boot-2")
    waited = _run_command(
        plane,
        rejoin,
        real_kubectl_path,
        CLEAN_OUTPUT=cleaned.stdout.strip(),
        TIMEOUT_SECONDS="120",
        POLL_SECONDS="1",
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert waited.stdout.splitlines()[-1] == (
        f"{worker.name} rejoined: Ready, boot {worker.name}-boot-2 (was {old_boot})"
    )
    plane.kubectl("delete", "deployment", "drain-me", "-n", "default", "--wait=true")


def test_a_removed_workers_membership_delete_drains_and_deletes_its_node(
    plane: ControlPlane, output: ProgramOutput, kwok: RealProcess, real_kubectl_path: str
) -> None:
    """remove-machine, the delete of a worker's membership step, with the real kubectl: the
    command provider runs `delete` as it runs `create` (`/bin/sh -c`, the recorded environment:
    pulumi/pulumi-command provider/pkg/provider/local/commandController.go Delete)."""
    all_machines = list(output.machines.values())
    _register(plane, all_machines)
    _wait_ready(plane, [m.name for m in all_machines])
    worker = _machines(output, "worker")[0]
    plane.apply([_pinned_deployment(worker.name)])
    plane.kubectl(
        "wait",
        "--for=condition=Available",
        "deployment/drain-me",
        "-n",
        "default",
        "--timeout=120s",
    )
    (membership,) = [
        c
        for c in output.commands.values()
        if str(c.get("delete", "")) == "bash components/scripts/remove-machine"
        and c["environment"]["MACHINE"] == worker.name
    ]
    removed = _run_command(plane, {**membership, "create": membership["delete"]}, real_kubectl_path)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"{worker.name} left the cluster: drained and deleted its Node" in removed.stdout
    assert removed.stdout.splitlines()[-1].startswith(f"not done to {worker.name}: its disk")
    assert "evicting pod default/drain-me-" in removed.stderr, removed.stderr
    assert worker.name not in _node_names(plane)
    # Run again (a retried destroy): the Node is already gone, which is fine.
    again = _run_command(plane, {**membership, "create": membership["delete"]}, real_kubectl_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"no Node {worker.name} to drain or delete" in again.stdout
    plane.kubectl("delete", "deployment", "drain-me", "-n", "default", "--wait=true")
    _register(plane, [worker], boot="boot-3")


def _pinned_deployment(node: str) -> dict[str, Any]:
    labels = {"app": "drain-me"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "drain-me", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        },
    }


def test_core_release_installs_with_helm_and_is_deployed(
    plane: ControlPlane, output: ProgramOutput, kwok: RealProcess, tmp_path: Path
) -> None:
    """`helm install --wait --atomic` with the program's Release settings (name, chart,
    namespace, createNamespace, atomic, values); Helm waits for every workload's pods to be
    ready (helm `pkg/kube/ready.go`), which kwok makes them (`pod-ready.yaml`)."""
    machines = list(output.machines.values())
    _register(plane, machines)
    _wait_ready(plane, [m.name for m in machines])
    release = _core_release(output)
    assert release.get("atomic") in (True, "True", "true")
    helm = str(require_tool("helm", "helm"))
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.admin_kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }
    argv = [
        helm,
        "install",
        release["name"],
        str(REPO / release["chart"]),
        "--namespace",
        release["namespace"],
        "--values",
        str(_values_file(release, tmp_path / "values.json")),
        "--wait",
        "--atomic",
        "--timeout",
        "300s",
    ]
    if release.get("createNamespace") in (True, "True", "true"):
        argv.append("--create-namespace")
    installed = subprocess.run(
        plane.wrap(argv), env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    status = subprocess.run(
        plane.wrap(
            [helm, "status", release["name"], "--namespace", release["namespace"], "-o", "json"]
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    # flannel on every Node, the one fleet-lock server ready.
    daemonset = json.loads(
        plane.kubectl(
            "get",
            "daemonset",
            "-A",
            "-l",
            "app.kubernetes.io/instance=" + release["name"],
            "-o",
            "json",
        ).stdout
    )["items"]
    assert daemonset and all(d["status"].get("numberReady") == len(machines) for d in daemonset), [
        d["status"] for d in daemonset
    ]


def test_every_token_expires_after_its_install_and_the_cluster_forgets_it(
    plane: ControlPlane, output: ProgramOutput, tokens_applied: dict[str, str]
) -> None:
    """A token's Secret carries `expiration`, installCredentialHours after its install began;
    past it the bootstrap token authenticator refuses the token (kubernetes
    `plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go`, isSecretExpired) and the
    controller manager's token cleaner deletes the Secret (`pkg/controller/bootstrap/
    tokencleaner.go`), which kubeadm's controller-manager flags enable."""
    hours = output.stack.cluster.install_credential_hours
    now = datetime.datetime.now(datetime.UTC)
    for name, secret in sorted(output.token_secrets.items()):
        expiration = datetime.datetime.strptime(
            secret["stringData"]["expiration"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=datetime.UTC)
        # The install started at the stand-in clock's now, within the last few minutes.
        assert datetime.timedelta(hours=hours - 1) < expiration - now <= datetime.timedelta(
            hours=hours
        ), name
    # The same Secret for a machine whose install began longer ago than that.
    name, secret = sorted(output.token_secrets.items())[0]
    expired = copy.deepcopy(secret)
    token_id = "zzzzzz"
    expired["metadata"]["name"] = f"bootstrap-token-{token_id}"
    expired["stringData"]["token-id"] = token_id
    past = now - datetime.timedelta(hours=hours + 1)
    expired["stringData"]["expiration"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
    plane.apply([expired])
    token = f"{token_id}.{expired['stringData']['token-secret']}"
    refused = _whoami(plane, token)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused
    deadline = time.monotonic() + 60
    while True:
        found = plane.kubectl(
            "-n", "kube-system", "get", "secret", f"bootstrap-token-{token_id}", check=False
        )
        if "NotFound" in found.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert "NotFound" in found.stderr, "the token cleaner left the expired token's Secret"
