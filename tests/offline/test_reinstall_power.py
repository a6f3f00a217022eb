"""The operator-side install step that powers a machine: network-boot-once, run for real
against the stand-in ipmitool and curl (standin_ipmitool.py, standin_curl.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from standin_tools import PASSWORD, STANDINS, bmc_of, run, tool_log

# --- network-boot-once: IPMI -------------------------------------------------------------------

IPMI_ENV = {
    "MACHINE": "w1",
    "BOOT_METHOD": "ipmi",
    "BMC_ADDRESS": "10.0.0.51",
    "BMC_USER": "admin",
    "BMC_PASSWORD": PASSWORD,
    "REDFISH_SYSTEM": "/redfish/v1/Systems/1",
}
IPMI = "argv=-I lanplus -H 10.0.0.51 -U admin -E chassis"


def ipmi_bmc(power: str) -> dict[str, Any]:
    return {"power": power, "password": PASSWORD, "bootdev": None, "boots": []}


# `chassis power status` prints "Chassis Power is on|off" (ipmitool lib/ipmi_chassis.c); a power
# cycle of a chassis that is off is refused or does nothing (bmc-toolbox/bmclib#223), so an off
# machine is powered on instead. Without options=persistent, bootdev holds for one boot.
@pytest.mark.parametrize(
    ("power", "action", "said"),
    [("on", "power cycle", "was on: power cycled"), ("off", "power on", "was off: powered on")],
)
def test_ipmi_reads_the_power_state_then_boots_from_the_network_once(
    tmp_path: Path, power: str, action: str, said: str
) -> None:
    result = run(tmp_path, "network-boot-once", IPMI_ENV, bmc=ipmi_bmc(power))
    assert result.returncode == 0, result.stderr
    assert tool_log(tmp_path, "argv=") == [
        f"{IPMI} power status",
        f"{IPMI} bootdev pxe",
        f"{IPMI} {action}",
    ]
    assert said in result.stdout
    bmc = bmc_of(tmp_path)
    assert bmc["power"] == "on"
    assert bmc["boots"] == ["pxe (legacy)"]  # booted from the network, once
    assert bmc["bootdev"] is None  # and the next boot is from disk again
    log = (tmp_path / "tools.log").read_text()
    assert "persistent" not in log
    assert tool_log(tmp_path, "IPMI_PASSWORD=") == [f"IPMI_PASSWORD={PASSWORD}"] * 3
    assert "hunter2" not in "".join(tool_log(tmp_path, "argv=")) and "hunter2" not in result.stdout


def test_ipmi_uefi_boot_sets_the_efi_boot_type(tmp_path: Path) -> None:
    # ipmitool `chassis bootdev pxe options=efiboot` sets the boot flags' EFI boot type
    # (lib/ipmi_chassis.c BF1_BOOT_TYPE_EFI); without it the flags ask for a legacy boot.
    result = run(
        tmp_path, "network-boot-once", {**IPMI_ENV, "EFI_BOOT": "true"}, bmc=ipmi_bmc("off")
    )
    assert result.returncode == 0, result.stderr
    assert f"{IPMI} bootdev pxe options=efiboot" in tool_log(tmp_path, "argv=")
    assert bmc_of(tmp_path)["boots"] == ["pxe (efi)"]
    assert "one-time UEFI network boot" in result.stdout


def test_the_standin_bmc_refuses_a_power_cycle_when_off(tmp_path: Path) -> None:
    """What the old sequence (bootdev, then cycle) met on a new rack's powered-off machine."""
    (tmp_path / "bmc.json").write_text(json.dumps(ipmi_bmc("off")))
    env = {**os.environ, "BMC_STATE": str(tmp_path / "bmc.json"), "TOOL_LOG": str(tmp_path / "log"),
           "IPMI_PASSWORD": PASSWORD}  # fmt: skip
    result = subprocess.run(
        ["python3", str(STANDINS["ipmitool"]), "-E", "chassis", "power", "cycle"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Command not supported in present state" in result.stderr
    assert bmc_of(tmp_path)["boots"] == []


def test_ipmi_stops_on_an_unreadable_power_state(tmp_path: Path) -> None:
    bmc = {**ipmi_bmc("on"), "password": "not the one given"}
    result = run(tmp_path, "network-boot-once", IPMI_ENV, bmc=bmc)
    assert result.returncode == 1
    assert "does not tell its power state; nothing was done" in result.stderr
    assert tool_log(tmp_path, "argv=") == [f"{IPMI} power status"]


# --- network-boot-once: Redfish ----------------------------------------------------------------

SYSTEM = "/redfish/v1/Systems/System.Embedded.1"
REDFISH_ENV = {**IPMI_ENV, "BOOT_METHOD": "redfish", "BMC_ADDRESS": "bmc.example",
               "REDFISH_SYSTEM": SYSTEM}  # fmt: skip


def redfish_bmc(power: str) -> dict[str, Any]:
    return {
        "user": "admin",
        "password": PASSWORD,
        "system": SYSTEM,
        "PowerState": power,
        "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"},
        "boots": [],
        "resets": [],
    }


# DMTF Redfish: ComputerSystem.PowerState (Resource.json PowerState), a one-time override
# (BootSourceOverrideEnabled "Once": reset to Disabled after that boot), and
# ComputerSystem.Reset's ResetType "On" for a system that is off, "ForceRestart" otherwise.
@pytest.mark.parametrize(
    ("power", "reset", "said"),
    [("On", "ForceRestart", "was on: restarted"), ("Off", "On", "was off: powered on")],
)
def test_redfish_reads_the_power_state_then_boots_from_the_network_once(
    tmp_path: Path, power: str, reset: str, said: str
) -> None:
    result = run(tmp_path, "network-boot-once", REDFISH_ENV, bmc=redfish_bmc(power))
    assert result.returncode == 0, result.stderr
    argv = tool_log(tmp_path, "argv=")
    assert len(argv) == 3 and all("hunter2" not in line for line in argv)
    assert " -X GET https://bmc.example" + SYSTEM in argv[0]
    assert argv[1].endswith(f"https://bmc.example{SYSTEM}") and " -X PATCH " in argv[1]
    assert '"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"' in argv[1]
    assert "BootSourceOverrideMode" not in argv[1]  # the BMC's own default unless asked
    assert argv[2].endswith(f"{SYSTEM}/Actions/ComputerSystem.Reset")
    assert f'{{"ResetType":"{reset}"}}' in argv[2]
    assert said in result.stdout
    bmc = bmc_of(tmp_path)
    assert bmc["resets"] == [reset]
    assert bmc["boots"] == ["Pxe (firmware default)"]
    assert bmc["Boot"]["BootSourceOverrideEnabled"] == "Disabled"  # the next boot is the disk's
    stdin = tool_log(tmp_path, "stdin=")
    assert stdin == ['stdin=user = "admin:hunter2 \\"quoted\\" \\\\ $HOME"'] * 3


def test_redfish_uefi_boot_sets_the_override_mode(tmp_path: Path) -> None:
    # ComputerSystem.v1_27_0.json Boot.BootSourceOverrideMode: "Legacy" or "UEFI".
    env = {**REDFISH_ENV, "EFI_BOOT": "true"}
    result = run(tmp_path, "network-boot-once", env, bmc=redfish_bmc("Off"))
    assert result.returncode == 0, result.stderr
    patch = tool_log(tmp_path, "argv=")[1]
    assert '"BootSourceOverrideMode":"UEFI"' in patch
    assert bmc_of(tmp_path)["boots"] == ["Pxe (UEFI)"]


# The config line network-boot-once sends curl, as the Redfish tests see it arrive.
CURL_CONFIG = 'user = "admin:hunter2 \\"quoted\\" \\\\ $HOME"\n'


def test_the_standin_redfish_bmc_refuses_a_force_restart_when_off(tmp_path: Path) -> None:
    """What the old sequence (PATCH, then ForceRestart) met on a powered-off machine."""
    (tmp_path / "bmc.json").write_text(json.dumps(redfish_bmc("Off")))
    env = {**os.environ, "BMC_STATE": str(tmp_path / "bmc.json"), "TOOL_LOG": str(tmp_path / "log")}
    result = subprocess.run(
        ["python3", str(STANDINS["curl"]), "--config", "-", "--fail", "--show-error", "-X", "POST",
         "-d", '{"ResetType":"ForceRestart"}', f"https://bmc.example{SYSTEM}/Actions/ComputerSystem.Reset"],
        input=CURL_CONFIG,
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 22
    assert "returned error: 409" in result.stderr
    assert bmc_of(tmp_path)["PowerState"] == "Off"


# --- network-boot-once: the rest ---------------------------------------------------------------


def test_pxe_command_and_manual(tmp_path: Path) -> None:
    marker = tmp_path / "plug"
    env = {"MACHINE": "w1", "BOOT_METHOD": "command", "PXE_COMMAND": f"echo cycled > {marker}"}
    assert run(tmp_path, "network-boot-once", env).returncode == 0
    assert marker.read_text() == "cycled\n"
    manual = run(tmp_path, "network-boot-once", {"MACHINE": "w1", "BOOT_METHOD": "manual"})
    assert manual.returncode == 0
    assert "network-boot it by hand now" in manual.stdout


def test_a_malformed_efi_boot_setting_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, "network-boot-once", {**IPMI_ENV, "EFI_BOOT": "yes"}, bmc=ipmi_bmc("on"))
    assert result.returncode == 2
    assert "EFI_BOOT must be true or false" in result.stderr
    assert not (tmp_path / "tools.log").exists()
