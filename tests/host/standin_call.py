"""The recorder every stand-in command of the simulated host runs under: one call, its fault.

A stand-in is a command the setup scripts run against the real system that cannot run here
(systemctl, kubeadm, ...): the program node_standin.py, under each command's name. Every call
is appended to the machine's call log (one Python literal a line) with the setup status file
as it reads at that moment, and its outcome comes from the machine's fault plan: succeed, fail,
hang, die of a signal, or kill the whole boot before, inside (between the steps of) or after
its state change. The state it changes is the simulated machine's (sim/machine.state) and the
fake cluster's (sim/cluster.state), both rewritten atomically after each step, as every real
state change it stands for is all or nothing. An invocation no model knows is logged as
"unmodeled" and fails, so that the scripts cannot drift from the models unnoticed.

A boot runs stand-ins a dozen times, so this module and every model it loads start fast: no
module that takes long to import (json, pathlib, typing, re, contextlib, subprocess, signal,
which imports enum); state files are read back by `eval` with no builtins.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    JSON = dict[str, Any]

STATUS_FILE = "/var/lib/stubernetes/status"
SIGKILL = 9  # signal(7); the signal module costs its import of enum


def read_text(path: str) -> str:
    with open(path) as file:
        return file.read()


def read_state(path: str) -> JSON:
    data: JSON = eval(read_text(path), {"__builtins__": {}})
    return data


def write_state(path: str, data: JSON) -> None:
    """Atomic, like every real state change it models: a kill never leaves half a file."""
    with open(path + ".tmp", "w") as file:
        file.write(repr(data) + "\n")
    os.replace(path + ".tmp", path)


def read_status() -> dict[str, str]:
    try:
        text = read_text(STATUS_FILE)
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)
    os.chmod(path, mode)


def exists(path: str) -> bool:
    return os.path.exists(path)


def is_nonempty_dir(path: str) -> bool:
    return os.path.isdir(path) and bool(os.listdir(path))


def clear_dir(path: str) -> None:
    import shutil

    if not os.path.isdir(path):
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def option(args: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE`."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def out(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def err(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def call_key(name: str, args: list[str]) -> str:
    """What the fault plan and the tests call a call: the command and its verb."""
    words = [a for a in args if not a.startswith("-")]
    if name in ("kubeadm", "crictl") and words:
        if name == "kubeadm" and words[:2] == ["init", "phase"]:
            return " ".join([name, *words[:3]])
        if name == "kubeadm" and words[:1] == ["certs"]:
            return " ".join([name, *words[:2]])
        return f"{name} {words[0]}"
    if name == "kubectl" and "get" in args:
        return " ".join([name, *args[args.index("get") : args.index("get") + 2]])
    if name == "systemctl" and words:
        return f"{name} {words[0]}"
    return name


class Call:
    """One invocation: its place in the log, its fault, the machine and the cluster it changes."""

    def __init__(self, sim: str, name: str, args: list[str]) -> None:
        self.sim = sim
        # The machine's disk as its daemons see it (systemd's unit files, containerd's config);
        # the scripts' own paths are bound over the real ones in the boot's namespace.
        self.root = os.path.dirname(sim) + "/root"
        self.name = name
        self.args = args
        self.key = call_key(name, args)
        self.machine = read_state(sim + "/machine.state")
        self.cluster = read_state(sim + "/cluster.state")
        counters = read_state(sim + "/counters.state")
        counters["calls"] += 1
        counters["keys"][self.key] = counters["keys"].get(self.key, 0) + 1
        write_state(sim + "/counters.state", counters)
        self.seq: int = counters["calls"]
        self.nth: int = counters["keys"][self.key]
        self.fault = self._fault(read_state(sim + "/plan.state"))
        self.steps_done: list[str] = []
        self.effect = "none"
        # The facts of the kubeadm config file this call was given (`--config`).
        self.config_facts: JSON = {}

    def _fault(self, plan: JSON) -> JSON:
        kill = plan.get("kill_call")
        if kill and kill["seq"] == self.seq:
            return dict(kill)
        queue = plan.get("faults", {}).get(self.key, [])
        if self.nth <= len(queue):
            fault: JSON = queue[self.nth - 1]
            return fault
        return {"do": "ok"}

    @property
    def facts(self) -> JSON:
        facts: JSON = {**self.machine["facts"], **self.config_facts}
        return facts

    def log(self, **fields: Any) -> None:
        record = {"seq": self.seq, "key": self.key, **fields}
        with open(self.sim + "/calls.log", "a") as log:
            log.write(repr(record) + "\n")

    def save(self) -> None:
        write_state(self.sim + "/machine.state", self.machine)
        write_state(self.sim + "/cluster.state", self.cluster)

    def step(self, name: str, last: bool = False) -> None:
        """A state change is complete (and saved); the fault plan may kill the boot right here."""
        self.save()
        self.steps_done.append(name)
        self.effect = "complete" if last else "partial"
        if self.fault.get("step") == name:
            if self.fault.get("do") == "kill-step":
                self.kill_boot(f"after step {name}")
            if self.fault.get("do") == "hang-step":
                self.log(end="hanging", where=f"after step {name}", effect=self.effect)
                time.sleep(3600)
            if self.fault.get("do") == "signal-step":
                self.die(f"after step {name}")

    def die(self, where: str) -> NoReturn:
        """This command alone is killed by a signal (the OOM killer's SIGKILL, say): the boot
        goes on, and whoever ran it sees status 128+N."""
        number = int(self.fault.get("signal", SIGKILL))
        self.log(
            end="signal", where=where, rc=128 + number, effect=self.effect, steps=self.steps_done
        )
        os.kill(os.getpid(), number)
        raise SystemExit(128 + number)

    def kill_boot(self, where: str) -> NoReturn:
        """A power cut: every process of the boot dies at once."""
        self.log(end="killed", where=where, effect=self.effect, steps=self.steps_done)
        with open(self.sim + "/killed", "w") as marker:
            marker.write(f"call {self.seq} {self.key}: {where}\n")
        # The unit's command (the runner, its phases) is one process group; a command under
        # `timeout` is in timeout's. This one goes last.
        groups = [g for g in (exec_start_group(), os.getpgrp()) if g is not None]
        for pgid in dict.fromkeys(groups):
            try:  # noqa: SIM105 (contextlib costs every stand-in call its import)
                os.killpg(pgid, SIGKILL)
            except ProcessLookupError:
                pass
        raise SystemExit(137)

    def node_ready(self, node: JSON) -> bool:
        """A Node counts as Ready while its kubelet runs, and for the grace period after."""
        if node.get("kubelet") == "running":
            return True
        stopped = float(node.get("stopped_at", 0.0))
        return time.time() - stopped < float(self.cluster.get("grace_seconds", 0.0))

    def api_up(self) -> bool:
        return bool(self.cluster.get("initialized")) and self.cluster.get("api") == "up"


def unmodeled(call: Call) -> int:
    call.log(end="unmodeled", argv=[call.name, *call.args])
    err(f"stand-in {call.name}: no model for {call.args}")
    return 2


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def exec_start_group() -> int | None:
    """The process group of the unit's command: the ancestor that the boot wrapper started."""
    wrapper = int(os.environ["SIM_WRAPPER_PID"])
    pid = os.getpid()
    while pid > 1:
        parent = parent_pid(pid)
        if parent == wrapper:
            return os.getpgid(pid)
        pid = parent
    return None
