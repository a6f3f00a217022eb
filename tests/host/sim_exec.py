"""How the simulated host runs a unit's commands: as systemd runs a service's, on the machine's
disk, where a crash can strike before any command. A stand-in for systemd's execution of a
service (the commands themselves are the real scripts).

systemd runs a service's `ExecStart=` lines in order, as root, with its own PATH
(systemd.exec(5), "Environment Variables in Spawned Processes": /usr/local/sbin:/usr/local/bin:
/usr/sbin:/usr/bin) and the unit's `Environment=`, no stdin, stdout and stderr to the journal,
and ends every process the service left when it stops (systemd.kill(5),
KillMode=control-group). Here the commands run in a private mount namespace where the
machine's directories are bind-mounted over the real paths the scripts use (`BOUND_PATHS`),
over throwaway overlays of the host's /etc, /var, /var/lib, /opt and /usr/local/lib so that
the mount points need not exist on the host: whatever the scripts write anywhere else lands in
those overlays and is reported (`outside_writes`). The stand-ins' directory comes first in PATH
(node_standin.py).

A kill (a power cut) is injected before any command the runner and its phases execute: a DEBUG
trap, loaded through BASH_ENV, numbers the commands of each script's main shell and kills the
process group at a given one (`TRACE_BASH`); stand-ins kill from inside their calls. With
tracing on, the trap also records a digest of the persistent state before each command, so that
the crash suite can kill once for each distinct state a kill can leave behind.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sim_systemd import UnitFile

# systemd's PATH for system services, after the stand-ins.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
# The real paths the scripts use, served from the machine's disk: Fedora CoreOS's and Flatcar's
# (whose binaries and scripts are in /opt and whose update hold is in /etc/flatcar:
# ignition/flatcar_machine.py); a machine of one flavor has the other's empty.
BOUND_PATHS = (
    "/etc/stubernetes",
    "/etc/kubernetes",
    "/etc/zincati",
    "/etc/flatcar",
    "/var/lib/stubernetes",
    "/var/lib/etcd",
    "/var/openebs/local",
    "/usr/local/lib/stubernetes",
    "/usr/local/bin",
    "/opt/cni",
    "/opt/bin",
    "/opt/stubernetes",
)
# Host directories overlaid (in the namespace only) so that missing mount points can be made;
# a parent before the directories under it. A bound path is made in its deepest overlay.
OVERLAID = {
    "/etc": "etc",
    "/var": "var",
    "/var/lib": "var-lib",
    "/opt": "opt",
    "/usr/local/lib": "usr-local-lib",
}

TRACE_BASH = r"""# Loaded through BASH_ENV by every script of a simulated boot.
# A kill point is "I.S": command S of the main shell of the I-th script started (counted across
# boots; scripts start one after another, while within a script subshells and pipelines run
# beside the main shell, which is why only the main shell's commands are counted, in a variable
# of its own). The DEBUG trap kills the process group before the command at point SIM_KILL_AT.
__sim_invocation=0
if [[ -r $SIM_DIR/invocations ]]; then read -r __sim_invocation <"$SIM_DIR/invocations" || :; fi
__sim_invocation=$((__sim_invocation + 1))
printf '%s\n' "$__sim_invocation" >"$SIM_DIR/invocations"
__sim_step=0
__sim_on_debug() {
	[[ $BASHPID == "$$" ]] || return 0
	__sim_step=$((__sim_step + 1))
	local point=$__sim_invocation.$__sim_step
	if [[ -n ${SIM_TRACE:-} ]]; then
		# With a digest of the persistent state the command is about to meet: a kill before
		# it leaves exactly that state behind. (The host's tar, not the recorded one.)
		local digest
		digest=$(command -p tar -C "$SIM_DIR/.." -c --sort=name --mtime=@0 --owner=0 --group=0 \
			--numeric-owner --exclude=phase.log ./root ./sim/machine.state \
			./sim/cluster.state | md5sum)
		printf '%s\t%s\t%s\t%s\n' "$point" "${digest%% *}" \
			"${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]:-?}" "${BASH_COMMAND//$'\n'/ }" \
			>>"$SIM_DIR/trace"
	fi
	if [[ $point == "${SIM_KILL_AT:-}" ]]; then
		printf 'command %s: %s\n' "$point" "${BASH_COMMAND//$'\n'/ }" >"$SIM_DIR/killed"
		kill -KILL 0
	fi
	return 0
}
set -o functrace
trap __sim_on_debug DEBUG
"""


@dataclass(frozen=True)
class Ran:
    """How a unit's commands ended: their status (None when killed or hung), the kill, a hang
    (the boot's or the unit's time limit ended them), and writes outside the bound paths."""

    returncode: int | None
    killed: str | None
    hung: bool
    outside_writes: list[str]


def overlay_of(bound: str) -> str | None:
    """The deepest overlaid host directory above a bound path: where its mount point is made
    (None: the mount point is the host's own, which exists)."""
    return max((host for host in OVERLAID if bound.startswith(host + "/")), key=len, default=None)


def boot_script(sim: Path, root: Path, unit: UnitFile) -> str:
    ovl = sim / "ovl"
    mkdirs = []
    fstab = []
    for host, name in OVERLAID.items():
        upper, work = ovl / "upper" / name, ovl / "work" / name
        mkdirs += [upper, work]
        for bound in BOUND_PATHS:
            if overlay_of(bound) == host and not Path(bound).exists():
                mkdirs.append(upper / bound[len(host) + 1 :])
        options = f"lowerdir={host},upperdir={upper},workdir={work}"
        fstab.append(f"stubernetes-sim {host} overlay {options} 0 0")
    fstab += [f"{root / bound.lstrip('/')} {bound} none bind 0 0" for bound in BOUND_PATHS]
    (sim / "fstab").write_text("\n".join(fstab) + "\n")
    lines = [
        "set -e",
        # Overlays (their upper layers on a tmpfs of this namespace) over the host's
        # directories, so that the mount points can be made without touching the host; then
        # the machine's directories over the real paths. One `mount -a` does it all.
        f"mount -t tmpfs stubernetes-sim {shlex.quote(str(ovl))}",
        "mkdir -p " + " ".join(shlex.quote(str(d)) for d in mkdirs),
        'mount -a -T "$SIM_DIR/fstab"',
        "cd /",
        "export SIM_WRAPPER_PID=$$ BASH_ENV=$SIM_DIR/trace.bash",
        # Job control: each command gets its own process group, which a kill takes down
        # without taking this wrapper, which then reports what was written outside.
        "set -m +e",
        "rc=0",
    ]
    for prefix, argv in unit.exec_start:
        command = " ".join(shlex.quote(a) for a in argv)
        lines += [
            "if [[ $rc == 0 && ! -e $SIM_DIR/reboot-requested ]]; then",
            f"\t{command} </dev/null",
            f"\trc=$?{'; rc=0' if '-' in prefix else ''}",
            "fi",
        ]
    lines += [
        f"(cd {shlex.quote(str(ovl / 'upper'))} && find . -mindepth 2) "
        '>"$SIM_DIR/upper-listing" 2>&1',
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


def allowed_in_overlays() -> set[str]:
    """The mount points made in the overlays, and the directories made to hold them."""
    allowed = set()
    for bound in BOUND_PATHS:
        host = overlay_of(bound)
        if host is None:
            continue
        relative = Path(bound[len(host) + 1 :])
        allowed |= {f"./{OVERLAID[host]}/{p}" for p in (relative, *relative.parents[:-1])}
    return allowed


def run_exec_start(
    sim: Path,
    root: Path,
    unit: UnitFile,
    journal_file: Path,
    timeout: float,
    kill_at: str | None,
    trace: bool,
) -> Ran:
    """Run the unit's commands once, to their end, a kill, or `timeout` seconds."""
    (sim / "ovl").mkdir(exist_ok=True)
    (sim / "killed").unlink(missing_ok=True)
    (sim / "upper-listing").unlink(missing_ok=True)
    # A unit's own PATH replaces systemd's (a Flatcar machine's units add /opt/bin).
    path = dict(unit.environment).get("PATH", SYSTEM_PATH)
    env = {
        **dict(unit.environment),
        "PATH": f"{sim / 'bin'}:{path}",
        "LANG": "C.UTF-8",
        "SIM_DIR": str(sim),
    }
    if kill_at:
        env["SIM_KILL_AT"] = kill_at
    if trace:
        env["SIM_TRACE"] = "1"
    if unit.timeout_start is not None:
        timeout = min(timeout, unit.timeout_start)
    script = boot_script(sim, root, unit)
    with journal_file.open("a") as journal:
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/bash", "-c", script],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=journal,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # A blocking wait (Popen.wait with a timeout polls, up to 50 ms late), and a timer
        # that ends a boot that hangs.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            kill_session(process.pid)

        timer = threading.Timer(timeout, expire)
        timer.start()
        returncode = process.wait()
        timer.cancel()
        timer.join()
        kill_session(process.pid)
    killed_file = sim / "killed"
    killed = killed_file.read_text().strip() if killed_file.exists() else None
    listing_file = sim / "upper-listing"
    listing = listing_file.read_text().split() if listing_file.exists() else []
    hung = expired.is_set()
    return Ran(
        returncode=None if hung or killed else returncode,
        killed=killed,
        hung=hung,
        outside_writes=sorted(set(listing) - allowed_in_overlays()),
    )


def session_members(sid: int) -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, session. Zombies are dead already.
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            yield int(entry.name)


def kill_session(sid: int) -> None:
    """What the end of a boot does to whatever the boot started, wherever its process group."""
    for _ in range(50):
        members = list(session_members(sid))
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    raise RuntimeError(f"processes of session {sid} survive SIGKILL")
