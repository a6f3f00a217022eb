#!/usr/bin/env python3
"""A stand-in ipmitool: one BMC's chassis kept in a JSON file, answering as ipmitool does.

State ($BMC_STATE): {"power": "on"|"off", "password": the BMC's, "bootdev": null or
{"device", "efi", "persistent"}, "boots": [what each power-up booted from]}.
Every call appends its argv and the IPMI_PASSWORD it saw to $TOOL_LOG.

What it imitates (ipmitool/ipmitool at be11d948):
- `-E` takes the password from IPMI_PASSWORD (lib/ipmi_main.c; without it ipmitool only warns
  "Unable to read password from environment", and the session then fails to authenticate);
- `chassis power status` prints "Chassis Power is on" or "Chassis Power is off"
  (lib/ipmi_chassis.c ipmi_chassis_print_power_status);
- `chassis power on|cycle` prints "Chassis Power Control: Up/On" or "... Cycle"; a cycle while
  the chassis is off fails with completion code 0xd5, printed as "Set Chassis Power Control to
  Cycle failed: Command not supported in present state" (lib/ipmi_chassis.c
  ipmi_chassis_power_control, lib/ipmi_strings.c), as Dell BMCs do (bmc-toolbox/bmclib#223);
  the other behaviour real BMCs show, doing nothing, is no better for a machine that must boot;
- `chassis bootdev pxe [options=efiboot,persistent]` prints "Set Boot Device to pxe"; the device
  holds for the next boot only unless `persistent`; `efiboot` sets the EFI boot type, otherwise
  the flags ask for a PC-compatible (legacy) boot (lib/ipmi_chassis.c bootdev options,
  BF1_BOOT_TYPE_EFI);
- a failing command exits 1 (src/ipmitool.c: EXIT_FAILURE).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

state_file = Path(os.environ["BMC_STATE"])
args = sys.argv[1:]
with Path(os.environ["TOOL_LOG"]).open("a") as log:
    log.write(f"argv={' '.join(args)}\nIPMI_PASSWORD={os.environ.get('IPMI_PASSWORD', '')}\n")

state: dict[str, Any] = json.loads(state_file.read_text())


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


options: dict[str, str] = {}
rest = list(args)
while rest and rest[0].startswith("-"):
    flag = rest.pop(0)
    options[flag] = "" if flag == "-E" else rest.pop(0)
password = options.get("-P")
if "-E" in options:
    password = os.environ.get("IPMI_PASSWORD")
    if password is None:
        print("Unable to read password from environment", file=sys.stderr)
if password != state["password"]:
    fail("Error: Unable to establish IPMI v2 / RMCP+ session")


def power_up() -> None:
    """The machine boots: from a set boot device, or from its own boot order (the disk)."""
    bootdev = state.get("bootdev")
    if bootdev is None:
        state["boots"].append("disk")
    else:
        state["boots"].append(f"{bootdev['device']} ({'efi' if bootdev['efi'] else 'legacy'})")
        if not bootdev["persistent"]:
            state["bootdev"] = None


match rest:
    case ["chassis", "power", "status"]:
        print(f"Chassis Power is {state['power']}")
    case ["chassis", "power", "on"]:
        if state["power"] == "off":
            state["power"] = "on"
            power_up()
        print("Chassis Power Control: Up/On")
    case ["chassis", "power", "cycle"]:
        if state["power"] == "off":
            fail(
                "Set Chassis Power Control to Cycle failed: Command not supported in present state"
            )
        power_up()
        print("Chassis Power Control: Cycle")
    case ["chassis", "bootdev", device, *more]:
        flags: list[str] = []
        for extra in more:
            if not extra.startswith("options="):
                fail(f"Invalid argument: {extra}")
            flags += extra.removeprefix("options=").split(",")
        unknown = set(flags) - {"efiboot", "persistent"}
        if unknown:
            fail(f"Invalid option: {sorted(unknown)[0]}")
        state["bootdev"] = {
            "device": device,
            "efi": "efiboot" in flags,
            "persistent": "persistent" in flags,
        }
        print(f"Set Boot Device to {device}")
    case _:
        fail(f"stand-in ipmitool: unexpected {rest}")
state_file.write_text(json.dumps(state))
