"""The real kubeadm accepts what the program writes into each machine's Ignition.

Every machine's `/etc/stubernetes/kubeadm.yaml` comes out of the Ignition in its Matchbox
profile, from a run of the whole program under mocks (stand-in PKI and tokens: real keys).
`kubeadm config validate` reads each one; on the init controller, inside a scratch root laid
out as the machine's after Ignition and the setup service's `install_shared_pki`, the init
phases that write files run for real: `certs all`, `kubeconfig all`, `etcd local`,
`control-plane all`.

kubeadm init's `preflight` phase runs in test_kubeadm_preflight_real.py, against the root the
real Ignition writes and the node's containerd; the phases that need a running kubelet or API
server run against a real control plane in test_control_plane_real.py.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.kubeadm import (
    KUBERNETES_DIR,
    MANIFESTS_DIR,
    PKI_DIR,
    config_args,
    kubeadm,
    machine_root,
)
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from program_stacks import sized_stack

from ignition.node import CONTAINERD_CONFIG

pytestmark = pytest.mark.real

# The shared material kubeadm reuses when it finds it: a CA whose cert and key load from the
# certificate dir is kept ("Using existing <ca> certificate authority": kubernetes
# `cmd/kubeadm/app/cmd/phases/init/certs.go` runCAPhase), and so is an sa.key that loads
# ("Using the existing "sa" key": `cmd/kubeadm/app/phases/certs/certs.go`
# CreateServiceAccountKeyAndPublicKeyFiles).
SHARED_FILES = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)
# Leaf certificates `certs all` writes and the CA that signs each
# (kubernetes `cmd/kubeadm/app/phases/certs/certlist.go` GetDefaultCertList).
LEAVES = {
    "apiserver.crt": "ca.crt",
    "apiserver-kubelet-client.crt": "ca.crt",
    "front-proxy-client.crt": "front-proxy-ca.crt",
    "etcd/server.crt": "etcd/ca.crt",
    "etcd/peer.crt": "etcd/ca.crt",
    "etcd/healthcheck-client.crt": "etcd/ca.crt",
    "apiserver-etcd-client.crt": "etcd/ca.crt",
}
# What `kubeconfig all` writes (kubernetes `cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go`
# getKubeConfigSpecsBase): admin and super-admin point at the controlPlaneEndpoint; the
# controller-manager's and scheduler's at the machine's own API endpoint, and so does the
# kubelet's (`cmd/kubeadm/app/cmd/phases/init/kubeconfig.go` runKubeConfigFile unsets the
# controlPlaneEndpoint for kubelet.conf).
KUBECONFIGS_AT_ENDPOINT = ("admin.conf", "super-admin.conf")
KUBECONFIGS_LOCAL = ("kubelet.conf", "controller-manager.conf", "scheduler.conf")
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

STACKS = {"example": (1, 2), "three-controllers": (3, 2)}


@pytest.fixture(scope="module", params=sorted(STACKS))
def rendered(request: pytest.FixtureRequest, example_values: dict[str, Any]) -> ProgramOutput:
    values = for_built_kubeadm(example_values)
    if request.param != "example":
        values = sized_stack(values, *STACKS[request.param])
    return render_program(values)


def test_kubeadm_validates_every_machine_config(rendered: ProgramOutput, tmp_path: Path) -> None:
    """`kubeadm config validate` loads every document with kubeadm's strict decoder (unknown
    or duplicate fields are errors) and runs the API validation of its kind
    (kubernetes `cmd/kubeadm/app/cmd/config.go` newCmdConfigValidate,
    `cmd/kubeadm/app/util/config/common.go` ValidateConfig)."""
    problems = []
    validated = []
    for name, machine in sorted(rendered.machines.items()):
        # kubeadm.yaml, and any other kubeadm config the Ignition carries beside it.
        for config in sorted(machine.kubeadm_configs()):
            path = tmp_path / name / config.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(machine.files[config].contents)
            run = kubeadm(["config", "validate", f"--config={path}"], check=False)
            # validate only warns (exit 0) about a document it ignores or a setting it
            # tolerates: any warning counts, so a config kubeadm half-ignores does not pass.
            warnings = [line for line in run.stderr.splitlines() if line.startswith("W")]
            if run.returncode != 0 or warnings:
                problems.append(f"{name} ({machine.role}) {config}:\n{run.report()}")
            validated.append((name, config))
    assert not problems, "\n\n".join(problems)
    assert {name for name, _ in validated} == {m.name for m in rendered.stack.machines}


def test_every_machine_names_the_release_and_containerds_socket(rendered: ProgramOutput) -> None:
    """kubeadm deploys the control plane at `kubernetesVersion` and talks to the runtime at
    `nodeRegistration.criSocket` (kubernetes `cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go`).
    Every machine's config names the exact release its binaries are (`v<release>`: a bare
    minor or a label would send kubeadm to dl.k8s.io, `cmd/kubeadm/app/util/version.go`
    kubernetesReleaseVersion) and the socket its own containerd config serves."""
    release = f"v{rendered.stack.cluster.kubernetes_release}"
    for name, machine in sorted(rendered.machines.items()):
        documents = machine.kubeadm_documents()
        address = tomllib.loads(machine.files[CONTAINERD_CONFIG].contents.decode())["grpc"]
        registrations = [
            documents[kind]["nodeRegistration"]
            for kind in ("InitConfiguration", "JoinConfiguration")
            if kind in documents
        ]
        assert registrations, name
        for registration in registrations:
            assert registration["criSocket"] == f"unix://{address['address']}", name
        if "ClusterConfiguration" in documents:
            assert documents["ClusterConfiguration"]["kubernetesVersion"] == release, name


def _files(root: Path, folder: str) -> dict[str, bytes]:
    base = root / folder.lstrip("/")
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def _cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def test_init_phases_reuse_the_programs_cas(rendered: ProgramOutput, tmp_path: Path) -> None:
    init = rendered.init_controller
    root = machine_root(init, tmp_path / "root")
    program_pki = {name: f.contents for name, f in init.shared_pki().items()}
    assert sorted(program_pki) == sorted(SHARED_FILES)
    before = _files(root, PKI_DIR)
    assert before == program_pki  # install_shared_pki put exactly the program's files there

    certs = kubeadm(["init", "phase", "certs", "all", *config_args()], rootfs=root)
    after = _files(root, PKI_DIR)
    # Byte for byte the program's material: kubeadm made no CA and no service-account key.
    assert _digests({n: after[n] for n in SHARED_FILES}) == _digests(program_pki)
    for ca in ("ca", "front-proxy-ca", "etcd/ca"):
        # kubeadm's own words for a CA it found and kept (runCAPhase, above).
        assert f"Using existing {ca} certificate authority" in certs.stdout, certs.report()
    assert 'Using the existing "sa" key' in certs.stdout, certs.report()
    for leaf, ca in LEAVES.items():
        assert leaf in after, f"{leaf} missing after certs all:\n{certs.report()}"
        _cert(after[leaf]).verify_directly_issued_by(_cert(program_pki[ca]))

    documents = init.kubeadm_documents()
    cluster = documents["ClusterConfiguration"]
    local = documents["InitConfiguration"].get("localAPIEndpoint", {})
    apiserver = _cert(after["apiserver.crt"])
    sans = apiserver.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    names |= set(sans.get_values_for_type(x509.DNSName))
    endpoint_host = cluster["controlPlaneEndpoint"].rpartition(":")[0]
    wanted = {endpoint_host, *cluster["apiServer"].get("certSANs", [])}
    if "advertiseAddress" in local:
        wanted.add(local["advertiseAddress"])
    assert wanted <= names, f"the API server's certificate lacks SANs {wanted - names}"

    kubeadm(["init", "phase", "kubeconfig", "all", *config_args()], rootfs=root)
    ca_pem = program_pki["ca.crt"]
    for name in (*KUBECONFIGS_AT_ENDPOINT, *KUBECONFIGS_LOCAL):
        config = yaml.safe_load((root / KUBERNETES_DIR.lstrip("/") / name).read_text())
        (cluster_entry,) = config["clusters"]
        assert _b64(cluster_entry["cluster"]["certificate-authority-data"]) == ca_pem, name
        server = cluster_entry["cluster"]["server"]
        if name in KUBECONFIGS_AT_ENDPOINT:
            assert server == f"https://{cluster['controlPlaneEndpoint']}", name
        elif "advertiseAddress" in local:
            assert server == f"https://{local['advertiseAddress']}:{local['bindPort']}", name
        (user,) = config["users"]
        client = _cert(_b64(user["user"]["client-certificate-data"]))
        client.verify_directly_issued_by(_cert(ca_pem))
        usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usages, name

    kubeadm(["init", "phase", "etcd", "local", *config_args()], rootfs=root)
    kubeadm(["init", "phase", "control-plane", "all", *config_args()], rootfs=root)
    manifests = {
        Path(name).stem: yaml.safe_load(text.decode())
        for name, text in _files(root, MANIFESTS_DIR).items()
    }
    assert sorted(manifests) == sorted(STATIC_PODS)
    flags = {name: _flags(pod) for name, pod in manifests.items()}
    networking = cluster["networking"]
    assert flags["kube-apiserver"]["--service-cluster-ip-range"] == networking["serviceSubnet"]
    assert flags["kube-controller-manager"]["--cluster-cidr"] == networking["podSubnet"]
    for extra in cluster.get("controllerManager", {}).get("extraArgs", []):
        assert flags["kube-controller-manager"][f"--{extra['name']}"] == extra["value"]
    # The component that signs cluster-info for token discovery and the one that removes
    # expired tokens are on (kubernetes `cmd/kubeadm/app/phases/controlplane/manifests.go`
    # getControllerManagerCommand; `pkg/controller/bootstrap/`).
    assert flags["kube-controller-manager"]["--controllers"] == "*,bootstrapsigner,tokencleaner"
    assert flags["etcd"]["--name"] == documents["InitConfiguration"]["nodeRegistration"]["name"]
    if "advertiseAddress" in local:
        address = local["advertiseAddress"]
        assert flags["kube-apiserver"]["--advertise-address"] == address
        assert f"https://{address}:2379" in flags["etcd"]["--advertise-client-urls"].split(",")
    # The files the phases wrote did not touch the program's CA material either.
    final = _files(root, PKI_DIR)
    assert _digests({n: final[n] for n in SHARED_FILES}) == _digests(program_pki)


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _flags(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    flags = {}
    for argument in container["command"][1:]:
        key, _, value = argument.partition("=")
        flags[key] = value
    return flags
