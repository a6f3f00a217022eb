"""What each install step of a machine is told: its history, its drain bound, its boot mode."""

from __future__ import annotations

import copy
import re
from typing import Any

from pulumi.runtime import rpc

from components.install_step import KEEP_LAST_OUTPUT
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks, unwrap_secrets
from stubernetes.program_run import run_program

SECRET_KEYS = ["matchbox", "machines"]
PROFILE = "matchbox:index/profile:Profile"


def by_name(registrations: list[Registration]) -> dict[str, Registration]:
    return {r.name: r for r in registrations}


def environment(step: Registration) -> dict[str, str]:
    return dict(unwrap_secrets(step.inputs["environment"]))


def test_only_machines_that_joined_before_are_reinstalls(example_values: dict[str, Any]) -> None:
    mocks = StandInMocks("tests", previous_outputs={"installed": {"w1": "0a1b2c3d"}})
    run = run_program(example_values, SECRET_KEYS, monitor=RecordingMonitor(mocks))
    resources = by_name(run.registrations)
    assert environment(resources["lab-w1-clean"])["INSTALLED_BEFORE"] == "true"
    assert environment(resources["lab-w2-clean"])["INSTALLED_BEFORE"] == "false"
    assert environment(resources["lab-c1-clean"])["INSTALLED_BEFORE"] == "false"
    # The program records which machines finished their install chain, for the next update.
    installed = unwrap_secrets(run.stack_outputs["installed"])
    assert set(installed) == {"c1", "w1", "w2"}
    # Each with the hex id of the install anchor that did it (4 random bytes).
    assert all(re.fullmatch(r"[0-9a-f]{8}", anchor) for anchor in installed.values()), installed


def test_a_new_stack_knows_no_machine(example_values: dict[str, Any]) -> None:
    resources = by_name(run_program(example_values, SECRET_KEYS).registrations)
    for machine in ("c1", "w1", "w2"):
        assert environment(resources[f"lab-{machine}-clean"])["INSTALLED_BEFORE"] == "false"


def test_every_install_step_has_a_harmless_update(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    values["gates"] = {"drainTimeoutSeconds": 120}
    resources = by_name(run_program(values, SECRET_KEYS).registrations)
    for machine in ("c1", "w1", "w2"):
        for step in ("clean", "network-boot", "rejoin"):
            command = resources[f"lab-{machine}-{step}"]
            assert command.inputs["update"] == KEEP_LAST_OUTPUT
            assert command.inputs["triggers"] == [1.0]
        assert environment(resources[f"lab-{machine}-clean"])["DRAIN_TIMEOUT_SECONDS"] == "120"


def test_bmc_efi_boot_and_installer_arguments(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    values["machines"]["w1"]["bmc"] = {
        "kind": "redfish",
        "address": "10.1.0.21",
        "user": "admin",
        "password": "pw",
        "efiBoot": True,
    }
    values["machines"]["w1"]["installerKernelArgs"] = ["console=ttyS0,115200n8"]
    run = run_program(values, SECRET_KEYS)
    resources = by_name(run.registrations)
    boot = environment(resources["lab-w1-network-boot"])
    assert boot["EFI_BOOT"] == "true"
    assert rpc.is_rpc_secret(resources["lab-w1-network-boot"].inputs["environment"])
    # Installer arguments go to the live system's kernel line, and to no other machine's.
    profiles = {r.name: r for r in run.registrations if r.type == PROFILE}
    assert "console=ttyS0,115200n8" in profiles["lab-w1"].inputs["args"]
    assert "console=ttyS0,115200n8" not in profiles["lab-w2"].inputs["args"]


def test_the_outputs_of_an_update_fed_back_change_no_input(example_values: dict[str, Any]) -> None:
    """What the real engine does after an update: the next run reads that update's outputs
    (components/previous.py, `pulumi:pulumi:readStackOutputs`). An unchanged stack must then
    register every resource with the same inputs, the reinstall's `INSTALLED_BEFORE` included,
    or an unchanged stack previews changes after every update."""
    # After the update in which the cluster first answered: the founding stage's own one change
    # (tests/offline/test_founding_stage.py) is behind.
    first_previous = {"installed": {"w1": "0a1b2c3d"}, "clusterExists": True}
    first = run_program(
        example_values,
        SECRET_KEYS,
        monitor=RecordingMonitor(StandInMocks("tests", previous_outputs=first_previous)),
    )
    assert environment(by_name(first.registrations)["lab-w1-clean"])["INSTALLED_BEFORE"] == "true"
    recorded = unwrap_secrets(first.stack_outputs)
    assert recorded["installedOverEarlier"] == {"c1": False, "w1": True, "w2": False}
    second = run_program(
        example_values,
        SECRET_KEYS,
        monitor=RecordingMonitor(StandInMocks("tests", previous_outputs=recorded)),
    )
    # By URN: a status report's ConfigMap, Role and RoleBinding share one name, and the SDK may
    # register them in another order from one run to the next.
    before = {r.urn: r for r in first.registrations}
    after = {r.urn: r for r in second.registrations}
    assert set(before) == set(after)
    changed = [u for u in before if before[u].inputs_in_place != after[u].inputs_in_place]
    assert changed == []
    assert environment(by_name(second.registrations)["lab-w1-clean"])["INSTALLED_BEFORE"] == "true"
