"""A Flatcar machine on Matchbox under the SDK's mocks: two profiles and two groups, as poseidon/
typhoon's Flatcar module registers them (bare-metal/flatcar-linux/kubernetes/profiles.tf and
groups.tf): the install group selects the MAC and serves the PXE boot and install Ignition; the
machine's own group selects the MAC and `os: installed`, which the installer asks for, and
Matchbox answers a request with the matching group of the most selectors (poseidon/matchbox
matchbox/server/server.go SelectGroup; tests/real/test_matchbox_real.py serves them for real).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi.runtime import rpc

from components.machine_steps import Role, steps_of
from stackconfig import parse_stack_config
from stubernetes.mocks import Registration, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program

PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"
RELEASE = "4593.2.5"  # Flatcar stable, published 2026-08-13 (flatcar-website data/releases/stable)


def flatcar_values(values: dict[str, Any]) -> dict[str, Any]:
    values["os"] = {"flavor": "flatcar", "channel": "stable", "version": RELEASE}
    return values


@pytest.fixture
def run(raw_values: dict[str, Any]) -> ProgramRun:
    return run_program(flatcar_values(raw_values), ["matchbox"])


def named(run: ProgramRun, kind: str) -> dict[str, Registration]:
    return {r.name: r for r in run.registrations if r.type == kind}


def test_the_flatcar_rows_come_before_the_machines_own_group(raw_values: dict[str, Any]) -> None:
    stack = parse_stack_config(flatcar_values(raw_values))
    for role in Role:
        names = [s.name for s in steps_of(stack, role)]
        assert names.index("clean") < names.index("install-profile")
        assert names.index("install-group") + 1 == names.index("group")
        group = steps_of(stack, role)[names.index("group")]
        assert group.after == ("install-group",)


def test_each_machine_has_an_install_profile_and_group_and_its_own(run: ProgramRun) -> None:
    profiles, groups = named(run, PROFILE), named(run, GROUP)
    for machine in ("c1", "w1", "w2"):
        install, own = f"lab-{machine}-flatcar-install", f"lab-{machine}"
        assert groups[install].inputs["profile"] == install
        assert groups[own].inputs["profile"] == own
        mac = groups[own].inputs["selector"]["mac"]
        assert groups[install].inputs["selector"] == {"mac": mac}
        assert groups[own].inputs["selector"] == {"mac": mac, "os": "installed"}
        boot = profiles[install].inputs
        assert boot["kernel"].endswith(f"/{RELEASE}/flatcar_production_pxe.vmlinuz")
        assert "flatcar.first_boot=1" in boot["args"]
        # The installed system boots from its disk: its profile is its Ignition alone.
        assert "kernel" not in profiles[own].inputs


def test_the_installer_fetches_the_machines_own_flatcar_ignition(run: ProgramRun) -> None:
    profiles = named(run, PROFILE)
    install = json.loads(profiles["lab-w1-flatcar-install"].inputs["rawIgnition"])
    units = {u["name"]: u for u in install["systemd"]["units"]}
    assert "stubernetes-install.service" in units
    own = profiles["lab-w1"]
    # The machine's Ignition carries its join token: a secret, as on Fedora CoreOS; the install
    # Ignition carries nothing secret.
    assert rpc.is_rpc_secret(own.inputs["rawIgnition"])
    assert not rpc.is_rpc_secret(profiles["lab-w1-flatcar-install"].inputs["rawIgnition"])
    config = json.loads(unwrap_secrets(own.inputs)["rawIgnition"])
    paths = {f["path"] for f in config["storage"]["files"]}
    assert "/opt/bin/kubelet" in paths and "/etc/flatcar/update.conf" in paths


def test_the_machines_group_waits_for_its_install_group(run: ProgramRun) -> None:
    by_urn = {r.urn: r for r in run.registrations}
    groups = named(run, GROUP)
    waits = {by_urn[u].name for u in groups["lab-w1"].dependencies}
    assert "lab-w1-flatcar-install" in waits
    for name in ("lab-w1-flatcar-install", "lab-w1"):
        for registration in (groups[name], named(run, PROFILE)[name]):
            assert registration.delete_before_replace
            assert [by_urn[u].name for u in registration.replace_with] == ["lab-w1-install"]
