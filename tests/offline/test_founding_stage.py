"""The founding controller's CA keys are served only until the cluster exists.

Its first install runs `kubeadm init` and needs the cluster's CA material in its Ignition. Once
an update that completed has seen the API server answer, the stack's `clusterExists` output
says so; the program reads its previous outputs at its start (components/previous.py, the
engine's `pulumi:pulumi:readStackOutputs`, which StandInMocks answers with `previous_outputs`),
and from then on no machine founds the cluster (ignition.kubeadm.founds_cluster): the founding
controller's profile gets a join Ignition with a certificate key, like every other controller's,
and no Ignition of any machine holds a private key. The one exception is a stack that allows
rebuilding its only controller (`allowClusterRebuild`), whose rebuild founds the cluster again.

The whole program runs under the SDK's mocks (stand-in PKI: real keys); each machine's Ignition
is read back from its Matchbox profile (`rawIgnition`, what Matchbox serves by MAC).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from control_plane.program_output import ignition_files
from program_stacks import sized_stack
from test_cert_upload import open_sealed

from components.previous import CLUSTER_EXISTS_OUTPUT
from stubernetes.mocks import RecordingMonitor, StandInMocks, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program

SECRET_KEYS = ["matchbox"]
PROFILE = "matchbox:index/profile:Profile"
# Any PEM private key: PKCS#8, EC, RSA (RFC 7468 labels; what the tls provider writes).
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
KUBEADM_CONFIG = "/etc/stubernetes/kubeadm.yaml"
SHARED_PKI = "/etc/stubernetes/pki/"


def run(values: dict[str, Any], previous: dict[str, Any] | None = None) -> ProgramRun:
    mocks = StandInMocks("founding-stage", previous_outputs=previous or {})
    return run_program(values, SECRET_KEYS, monitor=RecordingMonitor(mocks))


def ignitions(program: ProgramRun) -> dict[str, dict[str, bytes]]:
    """Each machine's Ignition files (path -> contents), by machine name."""
    found = {}
    for registration in program.registrations:
        if registration.type == PROFILE:
            inputs = unwrap_secrets(registration.inputs)
            config = json.loads(inputs["rawIgnition"])
            machine = inputs["name"].removeprefix("lab-")
            found[machine] = {p: f.contents for p, f in ignition_files(config).items()}
    return found


def raw_ignitions(program: ProgramRun) -> dict[str, str]:
    return {
        unwrap_secrets(r.inputs)["name"]: unwrap_secrets(r.inputs)["rawIgnition"]
        for r in program.registrations
        if r.type == PROFILE
    }


def with_private_keys(files: dict[str, bytes]) -> list[str]:
    return sorted(path for path, contents in files.items() if PRIVATE_KEY.search(contents))


def kubeadm_kind(files: dict[str, bytes]) -> str:
    first = files[KUBEADM_CONFIG].decode().split("\n---\n")[0]
    (kind,) = re.findall(r"^kind: (\w+)$", first, re.MULTILINE)
    return str(kind)


def step_environment(program: ProgramRun, name: str) -> dict[str, str]:
    (step,) = [r for r in program.registrations if r.name == name]
    environment: dict[str, str] = unwrap_secrets(step.inputs)["environment"]
    return environment


def inputs_by_resource(program: ProgramRun) -> dict[tuple[str, str], Any]:
    return {(r.type, r.name): r.inputs_in_place for r in program.registrations}


def changed(before: ProgramRun, after: ProgramRun) -> set[tuple[str, str]]:
    old, new = inputs_by_resource(before), inputs_by_resource(after)
    assert set(old) == set(new), "the same resources in both runs"
    return {key for key in old if old[key] != new[key]}


def outputs(program: ProgramRun) -> dict[str, Any]:
    """The stack's outputs as the engine records them and the next update reads them back."""
    recorded: dict[str, Any] = unwrap_secrets(program.stack_outputs)
    return recorded


@pytest.fixture(scope="module")
def three(example_values: dict[str, Any]) -> dict[str, Any]:
    return sized_stack(example_values, 3, 2)


@pytest.fixture(scope="module")
def founding(three: dict[str, Any]) -> ProgramRun:
    """The first update of a new stack: no previous outputs."""
    return run(three)


@pytest.fixture(scope="module")
def established(three: dict[str, Any], founding: ProgramRun) -> ProgramRun:
    """The next update: it reads the first one's outputs, which say the cluster answered."""
    return run(three, outputs(founding))


def test_before_the_cluster_exists_only_the_founding_controller_holds_ca_keys(
    founding: ProgramRun,
) -> None:
    files = ignitions(founding)
    assert sorted(files) == ["c1", "c2", "c3", "w1", "w2"]
    assert kubeadm_kind(files["c1"]) == "InitConfiguration"
    # The CA, front-proxy CA, etcd CA and service-account keys, for kubeadm init.
    assert with_private_keys(files["c1"]) == [
        f"{SHARED_PKI}{name}" for name in ("ca.key", "etcd/ca.key", "front-proxy-ca.key", "sa.key")
    ]
    for machine in ("c2", "c3", "w1", "w2"):
        assert with_private_keys(files[machine]) == [], machine
        assert kubeadm_kind(files[machine]) == "JoinConfiguration"
    assert outputs(founding)[CLUSTER_EXISTS_OUTPUT] is True


def test_once_the_cluster_exists_no_ignition_holds_a_private_key(
    established: ProgramRun,
) -> None:
    files = ignitions(established)
    for machine, machine_files in files.items():
        assert with_private_keys(machine_files) == [], machine
        assert not any(p.startswith(SHARED_PKI) for p in machine_files), machine
    # Nor anything Matchbox serves, read as it is stored (the files' data URLs undecoded).
    for name, raw in raw_ignitions(established).items():
        assert "PRIVATE KEY" not in raw, name
        assert not PRIVATE_KEY.search(raw.encode()), name


def test_once_the_cluster_exists_the_founding_controller_joins_with_a_certificate_key(
    founding: ProgramRun, established: ProgramRun
) -> None:
    c1 = ignitions(established)["c1"]
    assert kubeadm_kind(c1) == "JoinConfiguration"
    text = c1[KUBEADM_CONFIG].decode()
    (key,) = re.findall(r"certificateKey: ([0-9a-f]{64})$", text, re.MULTILINE)
    # Its founding-stage join config for an answering cluster is gone with the CA material.
    assert "/etc/stubernetes/kubeadm-join.yaml" not in c1
    assert "/etc/stubernetes/kubeadm-join.yaml" in ignitions(founding)["c1"]
    # Its reinstall uploads the certificates for that key, as any controller's does.
    upload = step_environment(established, "lab-c1-upload-certs")
    assert upload["CERTIFICATE_KEY_JOIN"] == "true"
    manifest = json.loads(upload["CERTS_MANIFEST"])
    assert manifest["metadata"]["name"] == "kubeadm-certs"
    assert step_environment(founding, "lab-c1-upload-certs")["CERTIFICATE_KEY_JOIN"] == "false"
    # Its upload opens with the key its Ignition carries (kubeadm's copycerts format:
    # tests/real/test_cert_upload.py), a key of its own: not c2's, and not in its founding config.
    # (AES-GCM: another key raises InvalidTag.)
    assert manifest["data"] and all(open_sealed(v, key) for v in manifest["data"].values())
    founding_c1 = ignitions(founding)["c1"]
    assert key not in founding_c1[KUBEADM_CONFIG].decode()
    c2 = ignitions(established)["c2"][KUBEADM_CONFIG].decode()
    assert key not in c2


def test_the_stage_change_is_one_planned_change_then_nothing(
    three: dict[str, Any], founding: ProgramRun, established: ProgramRun
) -> None:
    """After the first complete update, the next one changes the founding controller's profile
    (its join Ignition) and the settings of its two certificate steps, which an update re-runs
    nothing for (components/install_step.py KEEP_LAST_OUTPUT); after that an unchanged stack
    registers the same inputs twice."""
    assert changed(founding, established) == {
        (PROFILE, "lab-c1"),
        ("command:local:Command", "lab-c1-upload-certs"),
        ("command:local:Command", "lab-c1-control-plane-joined"),
    }
    again = run(three, outputs(established))
    assert changed(established, again) == set()
    assert outputs(again) == outputs(established)
    assert ignitions(again) == ignitions(established)


def test_an_unchanged_new_stack_registers_the_same_inputs_twice(
    three: dict[str, Any], founding: ProgramRun
) -> None:
    assert changed(founding, run(three)) == set()


def test_a_rebuildable_single_controller_keeps_its_founding_ignition(
    example_values: dict[str, Any],
) -> None:
    """A stack that allows rebuilding its only controller founds the cluster again on that
    rebuild (its old cluster is gone with its disk), so that controller's Ignition keeps the CA
    material; without the setting the single controller's later Ignition is a join too."""
    rebuildable = copy.deepcopy(example_values)
    rebuildable["cluster"]["allowClusterRebuild"] = True
    first = run(rebuildable)
    later = ignitions(run(rebuildable, outputs(first)))["c1"]
    assert kubeadm_kind(later) == "InitConfiguration"
    assert with_private_keys(later)
    fixed = run(example_values)
    later = ignitions(run(example_values, outputs(fixed)))["c1"]
    assert kubeadm_kind(later) == "JoinConfiguration"
    assert with_private_keys(later) == []


def test_a_failed_first_update_keeps_the_founding_stage(three: dict[str, Any]) -> None:
    """Outputs of an update that never saw the API server (none recorded, or not true): the
    founding controller still founds."""
    for previous in ({}, {CLUSTER_EXISTS_OUTPUT: False}, {CLUSTER_EXISTS_OUTPUT: "true"}):
        files = ignitions(run(three, previous))
        assert kubeadm_kind(files["c1"]) == "InitConfiguration", previous
        assert with_private_keys(files["c1"]), previous
