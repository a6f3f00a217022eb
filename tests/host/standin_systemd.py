"""Stand-in systemctl and reboot: the unit state the setup scripts change through systemd.

A stand-in (there is no systemd to ask in a scratch root). The real systemd 252 of the real
node guest (tests/lab/test_lab_node.py) runs the same units for a worker: the presets Ignition
writes applied at the first boot, containerd before the setup, the setup's phases, the status
report's path unit and timer, `systemctl disable` at the end, and the kubelet brought back by
its own unit after a power cut. What it follows:
- Where units come from: the unit files Ignition wrote under /etc/systemd/system, and the
  units the Fedora CoreOS image ships under /usr/lib/systemd/system, of which only those the
  node uses are listed here (`OS_UNITS`): containerd.service and docker.service (Fedora's
  containerd and moby-engine packages; coreos/fedora-coreos-config#1618 lists containerd
  explicitly) and zincati.service. A unit Ignition masks is a link to /dev/null in
  /etc/systemd/system (systemctl(1) "mask"; coreos/ignition internal/exec/stages/files/
  units.go maskUnit).
- `systemctl disable UNIT`: its [Install] symlinks are removed; the unit stays startable
  (systemctl(1) "disable"). Its message is systemd's "Removed ..." line (src/shared/install.c
  install_changes_dump).
- `systemctl start UNIT` queues a start job and waits for it (systemctl(1) "start"): a unit that
  does not exist fails with "Unit UNIT not found." and status 5 (EXIT_NOTINSTALLED, systemd
  src/systemctl/systemctl-util.c translate_bus_error_to_exit_status), a masked one with "Unit
  UNIT is masked." and status 1; a job that fails prints "Job for UNIT failed because the
  control process exited with error code." and where to look (src/shared/bus-wait-for-jobs.c
  log_job_error_with_service_result) and exits 1; starting an active unit does nothing.
  Starting is modelled for containerd.service only (standin_runtime.py); any other start is
  unmodeled.
- `systemctl --no-block reboot` and `reboot` only queue the reboot: the boot ends once the
  unit's command returns (systemctl(1) "--no-block").
"""

from __future__ import annotations

import os

from standin_call import Call, err, unmodeled
from standin_runtime import CONTAINERD, start_containerd

# The units of the Fedora CoreOS image the node uses (under /usr/lib/systemd/system).
OS_UNITS = ("containerd.service", "docker.service", "zincati.service")
UNIT_DIR = "/etc/systemd/system"


def unit_state(root: str, unit: str) -> str:
    """How systemd loads the unit: "masked", "found" (Ignition's or the image's), "not-found"."""
    path = f"{root}{UNIT_DIR}/{unit}"
    if os.path.islink(path) and os.readlink(path) == "/dev/null":
        return "masked"
    if os.path.isfile(path) or unit in OS_UNITS:
        return "found"
    return "not-found"


def request_reboot(call: Call) -> int:
    call.machine["reboot_requested"] = True
    with open(call.sim + "/reboot-requested", "w"):
        pass
    call.step("reboot-requested", last=True)
    return 0


def start(call: Call, units: list[str]) -> int:
    for unit in units:
        state = unit_state(call.root, unit)
        if state == "not-found":
            err(f"Failed to start {unit}: Unit {unit} not found.")
            return 5
        if state == "masked":
            err(f"Failed to start {unit}: Unit {unit} is masked.")
            return 1
        if unit != CONTAINERD:
            return unmodeled(call)
        failure = start_containerd(call.machine, call.root, "systemctl start")
        call.step(f"start {unit}", last=True)
        if failure is not None:
            err(
                f"Job for {unit} failed because {failure}.",
                f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.',
            )
            return 1
    return 0


def systemctl(call: Call) -> int:
    args = call.args
    if args == ["--no-block", "reboot"]:
        return request_reboot(call)
    words = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    units = call.machine["units"]
    if words[:1] == ["disable"] and len(words) > 1 and not flags:
        for unit in words[1:]:
            if units.get(unit) == "enabled":
                err(f'Removed "{UNIT_DIR}/multi-user.target.wants/{unit}".')
            units[unit] = "disabled"
        call.step("disable", last=True)
        return 0
    if words[:1] == ["start"] and len(words) > 1 and not flags:
        return start(call, words[1:])
    return unmodeled(call)


def reboot(call: Call) -> int:
    return request_reboot(call) if not call.args else unmodeled(call)
