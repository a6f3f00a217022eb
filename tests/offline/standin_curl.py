#!/usr/bin/env python3
"""A stand-in curl talking to a stand-in Redfish BMC: one ComputerSystem kept in a JSON file.

State ($BMC_STATE): {"user", "password", "system": its path, "PowerState": "On"|"Off",
"Boot": {...}, "boots": [what each power-up booted from], "resets": [ResetType, ...]}.
Every call appends its argv and its standard input to $TOOL_LOG.

curl, as the scripts use it: `--config -` reads options from standard input, where a quoted
value takes backslash escapes (curl docs, --config); `--fail` turns an HTTP error into exit
status 22 and, with `--show-error`, "curl: (22) The requested URL returned error: <code>".

The BMC, after the DMTF Redfish schemas (DMTF/Redfish-Publications at 26c94965):
- ComputerSystem.PowerState is one of Resource.json PowerState (On, Off, ...); a PATCH of
  `Boot` takes BootSourceOverrideEnabled (Disabled, Once, Continuous), BootSourceOverrideTarget
  (ComputerSystem.json BootSource) and BootSourceOverrideMode (Legacy, UEFI) from
  ComputerSystem.v1_27_0.json, and refuses anything else with 400;
- `Once`: "On its next boot cycle, the system boots one time to the boot source override
  target. Then, the BootSourceOverrideEnabled value is reset to Disabled";
- ComputerSystem.Reset takes a ResetType from Resource.json ResetType: `On` turns an off unit
  on; `ForceRestart` ("Shut down immediately and non-gracefully and restart the unit") of a unit
  that is off is refused here with 409, the worst case, as an IPMI power cycle of an off chassis
  is refused (bmc-toolbox/bmclib#223): the schema does not say what a BMC does then.
- wrong or missing credentials: 401.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

POWER_STATES = {"On", "Off", "PoweringOn", "PoweringOff", "Paused"}
OVERRIDE_ENABLED = {"Disabled", "Once", "Continuous"}
OVERRIDE_MODES = {"Legacy", "UEFI"}
BOOT_SOURCES = {
    "None", "Pxe", "Floppy", "Cd", "Usb", "Hdd", "BiosSetup", "Utilities", "Diags", "UefiShell",
    "UefiTarget", "SDCard", "UefiHttp", "RemoteDrive", "UefiBootNext", "Recovery",
}  # fmt: skip
RESET_TYPES = {"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi"}

args = sys.argv[1:]
stdin = sys.stdin.read() if "-" in args else ""
with Path(os.environ["TOOL_LOG"]).open("a") as log:
    log.write(f"argv={' '.join(args)}\nstdin={stdin.rstrip()}\n")

state_file = Path(os.environ["BMC_STATE"])
state: dict[str, Any] = json.loads(state_file.read_text())


def config_value(line: str) -> tuple[str, str]:
    """One `name = "value"` line of a curl config, its escapes undone."""
    name, _, raw = line.partition("=")
    raw = raw.strip()
    if not raw.startswith('"'):
        return name.strip(), raw
    value, index = "", 1
    escapes = {"t": "\t", "n": "\n", "r": "\r", "v": "\v"}
    while raw[index] != '"':
        if raw[index] == "\\":
            index += 1
            value += escapes.get(raw[index], raw[index])
        else:
            value += raw[index]
        index += 1
    return name.strip(), value


def http_error(code: int) -> None:
    print(f"curl: (22) The requested URL returned error: {code}", file=sys.stderr)
    sys.exit(22)


method, body, url, headers = "GET", None, "", []
config: dict[str, str] = {}
rest = list(args)
while rest:
    arg = rest.pop(0)
    if arg == "--config":
        source = rest.pop(0)
        assert source == "-", "the stand-in reads a config from standard input only"
        config.update(config_value(line) for line in stdin.splitlines() if line.strip())
    elif arg == "-X":
        method = rest.pop(0)
    elif arg == "-d":
        body = rest.pop(0)
    elif arg == "-H":
        headers.append(rest.pop(0))
    elif arg == "--max-time":
        rest.pop(0)
    elif arg in {"--silent", "--show-error", "--fail", "--insecure"}:
        pass
    elif arg.startswith("https://"):
        url = arg
    else:
        sys.exit(f"stand-in curl: unexpected argument {arg}")

if config.get("user") != f"{state['user']}:{state['password']}":
    http_error(401)
path = url.split("/", 3)[3]
system = state["system"].lstrip("/")


def power_up() -> None:
    """The system boots: from an enabled override target, or from its own boot order."""
    boot = state["Boot"]
    if boot.get("BootSourceOverrideEnabled", "Disabled") == "Disabled":
        state["boots"].append("disk")
        return
    mode = boot.get("BootSourceOverrideMode", "firmware default")
    state["boots"].append(f"{boot['BootSourceOverrideTarget']} ({mode})")
    if boot["BootSourceOverrideEnabled"] == "Once":
        boot["BootSourceOverrideEnabled"] = "Disabled"


if method == "GET" and path == system:
    print(
        json.dumps(
            {
                "@odata.id": state["system"],
                "@odata.type": "#ComputerSystem.v1_27_0.ComputerSystem",
                "PowerState": state["PowerState"],
                "Boot": state["Boot"],
                "Actions": {
                    "#ComputerSystem.Reset": {
                        "target": f"{state['system']}/Actions/ComputerSystem.Reset",
                        "ResetType@Redfish.AllowableValues": sorted(RESET_TYPES),
                    }
                },
            }
        )
    )
elif method == "PATCH" and path == system:
    patch = json.loads(body or "{}")
    boot = patch.get("Boot", {})
    allowed = {
        "BootSourceOverrideEnabled": OVERRIDE_ENABLED,
        "BootSourceOverrideMode": OVERRIDE_MODES,
        "BootSourceOverrideTarget": BOOT_SOURCES,
    }
    if set(patch) != {"Boot"} or any(boot.get(k) not in allowed.get(k, set()) for k in boot):
        http_error(400)
    state["Boot"].update(boot)
elif method == "POST" and path == f"{system}/Actions/ComputerSystem.Reset":
    reset = json.loads(body or "{}").get("ResetType")
    if reset not in RESET_TYPES:
        http_error(400)
    if reset == "ForceRestart" and state["PowerState"] == "Off":
        http_error(409)
    state["resets"].append(reset)
    if (reset == "On" and state["PowerState"] == "Off") or reset == "ForceRestart":
        state["PowerState"] = "On"
        power_up()
else:
    http_error(404)
assert state["PowerState"] in POWER_STATES
state_file.write_text(json.dumps(state))
