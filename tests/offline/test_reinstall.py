"""Reinstalling one machine replaces that machine's install chain and nothing else."""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi
import pytest
from program_stacks import sized_stack
from pulumi.runtime import rpc
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import main
from stubernetes.mocks import Registration
from stubernetes.program_run import ProgramRun, run_program
from stubernetes.render import resource_record
from stubernetes.urns import ANCHOR_TYPE, MACHINE_TYPE

SECRET_KEYS = ["matchbox", "machines"]


def records(run: ProgramRun) -> dict[tuple[str, str], str]:
    """Each resource's record (options and inputs, secrets as digests), keyed by type and name."""
    result = {}
    for registration in run.registrations:
        record = resource_record(registration)
        result[(registration.type, registration.name)] = json.dumps(record, sort_keys=True)
    return result


def with_generation(values: dict[str, Any], machine: str, generation: int) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    changed["machines"][machine]["generation"] = generation
    return changed


def changed_resources(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, str]]:
    old, new = records(run_program(before, SECRET_KEYS)), records(run_program(after, SECRET_KEYS))
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def chain(machine: str) -> set[tuple[str, str]]:
    """What a reinstall of `machine` changes in the recorded inputs: exactly its own chain (a
    controller's with its new certificate key, the upload of its certificates encrypted with
    it, and the wait for its control-plane join)."""
    controller = {
        ("random:index/randomPassword:RandomPassword", f"lab-{machine}-certificate-key"),
        ("command:local:Command", f"lab-{machine}-upload-certs"),
        ("command:local:Command", f"lab-{machine}-control-plane-joined"),
    }
    return (controller if machine.startswith("c") else set()) | {
        ("random:index/randomId:RandomId", f"lab-{machine}-install"),
        ("random:index/randomString:RandomString", f"lab-{machine}-token-id"),
        ("random:index/randomPassword:RandomPassword", f"lab-{machine}-token-secret"),
        ("matchbox:index/profile:Profile", f"lab-{machine}"),  # the new Ignition
        ("kubernetes:core/v1:Secret", f"lab-{machine}-bootstrap-token"),
        ("command:local:Command", f"lab-{machine}-install-clock"),
        ("command:local:Command", f"lab-{machine}-clean"),
        ("command:local:Command", f"lab-{machine}-network-boot"),
        ("command:local:Command", f"lab-{machine}-rejoin"),
        # Its status report's binding names the new token's user (the ConfigMap, replaced with
        # the anchor, keeps its recorded inputs: test_status_report).
        ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", f"lab-{machine}-status"),
        # Its upgrade step: the generation is in its triggers (it upgrades nothing: the new
        # install boots the stack's release; components/upgrade_step.py).
        ("command:local:Command", f"lab-{machine}-upgrade"),
    }


def test_reinstalling_a_worker_changes_only_its_chain(example_values: dict[str, Any]) -> None:
    assert changed_resources(example_values, with_generation(example_values, "w1", 2)) == chain(
        "w1"
    )


def test_reinstalling_one_controller_of_three_changes_only_its_chain(
    example_values: dict[str, Any],
) -> None:
    values = sized_stack(example_values, 3, 2)
    assert changed_resources(values, with_generation(values, "c2", 2)) == chain("c2")


def test_reinstalled_init_controller_joins_its_peers(example_values: dict[str, Any]) -> None:
    """c1 ran `kubeadm init` once; wiped, it joins the others, with a token Secret of its own."""
    values = sized_stack(example_values, 3, 2)
    changed = changed_resources(values, with_generation(values, "c1", 2))
    # No longer the founding controller, its report objects, like its token Secret, no longer
    # wait for its own rejoin: only their dependencies differ.
    report = {
        ("kubernetes:core/v1:ConfigMap", "lab-c1-status"),
        ("kubernetes:rbac.authorization.k8s.io/v1:Role", "lab-c1-status"),
    }
    assert changed == chain("c1") | report
    run = run_program(with_generation(values, "c1", 2), SECRET_KEYS)
    profile = next(r for r in run.registrations if r.name == "lab-c1" and "profile" in r.type)
    ignition = json.loads(rpc.unwrap_rpc_secret(profile.inputs["rawIgnition"]))
    env = next(f for f in ignition["storage"]["files"] if f["path"] == "/etc/stubernetes/setup.env")
    assert "KUBEADM_COMMAND=join" in _decode(env)


def _decode(entry: dict[str, Any]) -> str:
    import base64

    return base64.b64decode(entry["contents"]["source"].split(",", 1)[1]).decode()


def by_name(run: ProgramRun) -> dict[str, Registration]:
    """Custom resources by name (a machine's component and Matchbox objects share its name)."""
    return {r.name: r for r in run.registrations if r.custom and not r.type.startswith("matchbox")}


def parent_type(registration: Registration) -> str:
    return registration.parent.split("::")[2]


def test_the_chain_is_replaced_with_the_anchor(example_values: dict[str, Any]) -> None:
    run = run_program(example_values, SECRET_KEYS)
    resources = by_name(run)
    anchor = resources["lab-w1-install"]
    assert anchor.type == ANCHOR_TYPE
    assert parent_type(anchor).split("$")[-1] == MACHINE_TYPE
    for name in (
        "lab-w1-token-id",
        "lab-w1-token-secret",
        "lab-w1-clean",
        "lab-w1-network-boot",
        "lab-w1-rejoin",
    ):
        assert resources[name].replace_with == [anchor.urn], name
    for type_ in ("matchbox:index/profile:Profile", "matchbox:index/group:Group"):
        matchbox = next(r for r in run.registrations if r.type == type_ and r.name == "lab-w1")
        assert matchbox.replace_with == [anchor.urn]
        assert matchbox.delete_before_replace
    # The order a reinstall walks: clean, profile, group, network boot, wait for the rejoin.
    profile = next(
        r for r in run.registrations if r.type.endswith("Profile") and r.name == "lab-w1"
    )
    group = next(r for r in run.registrations if r.type.endswith("Group") and r.name == "lab-w1")
    assert resources["lab-w1-clean"].urn in profile.dependencies
    assert profile.urn in group.dependencies
    assert group.urn in resources["lab-w1-network-boot"].dependencies
    assert resources["lab-w1-network-boot"].urn in resources["lab-w1-rejoin"].dependencies
    # The rejoin wait knows what the clean step found.
    assert (
        "CLEAN_OUTPUT"
        in resources["lab-w1-rejoin"].property_dependencies.get("environment", ["CLEAN_OUTPUT"])
        or resources["lab-w1-clean"].urn in resources["lab-w1-rejoin"].dependencies
    )


def test_reinstalling_the_only_controller_is_refused(example_values: dict[str, Any]) -> None:
    with pytest.raises(pulumi.RunError) as refused:
        run_program(with_generation(example_values, "c1", 2), SECRET_KEYS)
    message = str(refused.value)
    assert "machine 'c1': field 'generation'" in message
    assert "only controller" in message and "allowClusterRebuild" in message


def test_the_only_controller_may_rebuild_when_allowed(example_values: dict[str, Any]) -> None:
    values = with_generation(example_values, "c1", 2)
    values["cluster"]["allowClusterRebuild"] = True
    resources = by_name(run_program(values, SECRET_KEYS))
    clean = rpc.unwrap_rpc_secret(resources["lab-c1-clean"].inputs["environment"])
    assert clean["ALLOW_CLUSTER_REBUILD"] == "true"
    # A rebuild is a new cluster: c1 runs kubeadm init again; its token Secret is added once
    # the new API server answers, as on a first install.
    assert "lab-c1-bootstrap-token" in resources


PASSWORD = 'hunter2-"quoted"-$HOME'


def test_bmc_password_never_in_a_command_line_or_plain_output(
    example_values: dict[str, Any],
) -> None:
    values = copy.deepcopy(example_values)
    values["machines"]["w1"]["bmc"] = {
        "kind": "ipmi",
        "address": "10.0.0.51",
        "user": "admin",
        "password": PASSWORD,
    }
    resources = by_name(run_program(values, SECRET_KEYS))
    step = resources["lab-w1-network-boot"]
    assert PASSWORD not in step.inputs["create"]
    environment = step.inputs["environment"]
    if not rpc.is_rpc_secret(environment):
        assert rpc.is_rpc_secret(environment["BMC_PASSWORD"])
    plain = json.dumps([resource_record(r) for r in resources.values()])
    assert PASSWORD not in plain and "hunter2" not in plain


def test_urn_command_prints_the_anchor_urn(
    example_values: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["urn", "--stack-file", str(EXAMPLE_STACK_FILE), "--machine", "w2"]) == 0
    printed = capsys.readouterr().out.strip()
    # The engine's URN: the stack, the project, the parent chain of types, the name.
    run = run_program(example_values, SECRET_KEYS)
    by_urn = {r.urn: r for r in run.registrations}
    anchor = by_name(run)["lab-w2-install"]
    # The engine joins the types of every ancestor below the root stack, then the resource's.
    chain, parent = [anchor.type], anchor.parent
    while parent in by_urn:
        chain.insert(0, by_urn[parent].type)
        parent = by_urn[parent].parent
    assert parent.split("::")[2] == "pulumi:pulumi:Stack"
    expected = f"urn:pulumi:example::stubernetes::{'$'.join(chain)}::{anchor.name}"
    assert printed == expected


def test_urn_command_names_an_unknown_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["urn", "--stack-file", str(EXAMPLE_STACK_FILE), "--machine", "w9"]) == 2
    assert "machine 'w9'" in capsys.readouterr().err


def test_pxe_command_gets_the_machine_filled_in(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    values["machines"]["w1"]["pxeCommand"] = "smartplug --cycle $name --mac $mac --ip $address"
    resources = by_name(run_program(values, SECRET_KEYS))
    environment = rpc.unwrap_rpc_secret(resources["lab-w1-network-boot"].inputs["environment"])
    assert environment["BOOT_METHOD"] == "command"
    assert environment["PXE_COMMAND"] == (
        "smartplug --cycle w1 --mac 52:54:00:a1:00:02 --ip 192.168.10.21"
    )
    manual = rpc.unwrap_rpc_secret(resources["lab-w2-network-boot"].inputs["environment"])
    assert manual == {"MACHINE": "w2", "BOOT_METHOD": "manual"}
