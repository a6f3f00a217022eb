"""Every install step's output is lines the command provider can take, whatever the tools say.

pulumi-command v1.2.1 runs a step as `/bin/sh -c <create>` (provider/pkg/provider/local/
commandOutputs.go run: `args = []string{"/bin/sh", "-c"}` unless an interpreter is given, and the
program gives none: components/install_step.py, gates.py, membership.py), so the steps run here
as `/bin/sh -c "bash components/scripts/<step>"` from the repository's root. It logs their output
through a bufio.Scanner that stops for good at a line of 64 KiB (util/util.go LogOutput; the
step then hangs for ever), and returns stdout and stderr as gRPC strings, which cannot carry
bytes that are not UTF-8 (the step fails after it ran, and runs again at the next `up`).

So each step runs with stand-in tools that answer as the stand-ins do (fake_kubectl.py,
standin_ipmitool.py, standin_curl.py) and then print a 100 KiB line and bytes that
are not UTF-8, on their standard output or on their standard error: what a BMC's or an API
server's error page, or a machine's own report, could carry. Every line the step prints must
stay within components/scripts/bounded-output.sh's bound, and all of it must be UTF-8. The
command stand-in (tests/engine/plugins/command_provider.py, which fails where the real provider
hangs or fails) then runs some of them as the engine would, with and without the bound.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine.plugins.command_provider import INVALID_UTF8, MAX_SCAN_TOKEN, Ran, Runner
from engine.plugins.server import Call, EngineLog, Props, ProviderError
from repo_paths import REPO
from standin_tools import CREDENTIALS, PASSWORD, STANDINS

from components.install_step import SCRIPTS

SCRIPTS_DIR = REPO / SCRIPTS
BOUNDED_OUTPUT = SCRIPTS_DIR / "bounded-output.sh"
# What the stand-in tools add to their answers: a line of 100 KiB, then a line of bytes that are
# not UTF-8 (a Latin-1 "é", a lone continuation byte, a truncated sequence, 0xFF, a NUL).
LONG_MARK, BYTES_MARK = b"noise-long-line", b"noise-bytes"
# A machine's own status report (components/status_report.py) that the waits print.
REPORT_MARK = b"report-long-line"
NOISE = (
    LONG_MARK + b" " + b"x" * (100 * 1024) + b"\n" + BYTES_MARK + b" caf\xe9 \x80 \xc3( \xff\x00\n"
)


def line_bound() -> int:
    found = re.search(r"^OUTPUT_LINE_BYTES=(\d+)$", BOUNDED_OUTPUT.read_text(), re.M)
    assert found, "bounded-output.sh sets OUTPUT_LINE_BYTES"
    return int(found[1])


@dataclass(frozen=True)
class Step:
    """One run of an install step: its script and arguments, environment, and the stand-ins'
    state (the cluster for kubectl, the BMC for ipmitool and curl)."""

    name: str
    script: str
    env: dict[str, str]
    cluster: dict[str, Any] | None = None
    bmc: dict[str, Any] | None = None
    args: str = ""
    # Whether what a tool or a machine says reaches the step's output in this run at all.
    foreign_output: bool = True


def ready(boot: str = "old-boot") -> dict[str, str]:
    return {"bootID": boot, "ready": "True"}


def nodes(*names: str) -> dict[str, Any]:
    return {name: ready() for name in names}


def workload(name: str, node: str) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "node": node, "owner": "ReplicaSet", "app": name}


KUBE = {"KUBECONFIG_CONTENT": f"users: [{{user: {{token: {CREDENTIALS}}}}}]"}
WAIT = {"TIMEOUT_SECONDS": "1", "POLL_SECONDS": "0"}
CERTS_MANIFEST = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "kubeadm-certs",
            "namespace": "kube-system",
            "ownerReferences": [
                {"kind": "Secret", "name": "bootstrap-token-abcdef", "uid": "__OWNER_UID__"}
            ],
        },
    }
)
TOKEN = {"metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system", "uid": "u1"}}
BMC = {"BMC_ADDRESS": "10.0.0.51", "BMC_USER": "admin", "BMC_PASSWORD": PASSWORD}
SYSTEM = "/redfish/v1/Systems/1"
LONG_REPORT = {
    "labels": {"stubernetes.dev/status-of": "w1"},
    "data": {
        "phase": "join",
        "state": "retrying",
        "attempts": "3",
        "last_error": f"{REPORT_MARK.decode()} " + "e" * 102400,
    },
}

STEPS = [
    Step("install-clock", "install-clock", {}, foreign_output=False),
    Step(
        "clean: API down after a join",
        "clean-before-rejoin",
        {
            **KUBE,
            "MACHINE": "w1",
            "ROLE": "worker",
            "CONTROLLERS": "c1",
            "INSTALLED_BEFORE": "true",
        },
        cluster={"api": "down", "nodes": {}},
    ),
    Step(
        "clean: a controller drained, its etcd member removed",
        "clean-before-rejoin",
        {
            **KUBE,
            "MACHINE": "c2",
            "ROLE": "controller",
            "CONTROLLERS": "c1 c2",
            "INSTALLED_BEFORE": "true",
        },
        cluster={"nodes": nodes("c1", "c2"), "etcd": ["c1", "c2"], "pods": [workload("web", "c2")]},
    ),
    Step(
        "rejoin: back with a new boot",
        "wait-for-rejoin",
        {
            **KUBE,
            **WAIT,
            "MACHINE": "w1",
            "CLEAN_OUTPUT": "old-boot-id=old-boot",
            "TIMEOUT_SECONDS": "10",
        },
        cluster={
            "nodes": nodes("w1"),
            "rejoin_after": 2,
            "rejoin_as": ready("new-boot"),
            "configmaps": {"stubernetes-status-w1": LONG_REPORT},
        },
    ),
    Step(
        "rejoin: not registered before the timeout",
        "wait-for-rejoin",
        {**KUBE, **WAIT, "MACHINE": "w1", "CLEAN_OUTPUT": "old-boot-id="},
        cluster={"nodes": {}, "configmaps": {"stubernetes-status-w1": LONG_REPORT}},
    ),
    Step(
        "gate api: the API server does not answer",
        "wait-for-nodes",
        {**KUBE, **WAIT, "NODES": "c1 w1"},
        cluster={"api": "down", "nodes": {}},
        args="api",
    ),
    Step(
        "gate ready: the API server does not answer",
        "wait-for-nodes",
        {**KUBE, **WAIT, "NODES": "c1 w1"},
        cluster={"api": "forbidden", "nodes": {}},
        args="ready",
    ),
    Step(
        "upload: the certificates for a joining controller",
        "upload-control-plane-certs",
        {
            **KUBE,
            "MACHINE": "c2",
            "CERTIFICATE_KEY_JOIN": "true",
            "TOKEN_SECRET": "bootstrap-token-abcdef",
            "CERTS_MANIFEST": CERTS_MANIFEST,
        },
        cluster={"nodes": nodes("c1"), "secrets": {"kube-system/bootstrap-token-abcdef": TOKEN}},
    ),
    Step(
        "control-plane join: the API server does not answer",
        "wait-for-control-plane-join",
        {
            **KUBE,
            **WAIT,
            "MACHINE": "c2",
            "CERTIFICATE_KEY_JOIN": "true",
            "TOKEN_SECRET": "bootstrap-token-abcdef",
            "CERTS_SECRET": "kubeadm-certs",
        },
        cluster={"api": "down", "nodes": {}},
    ),
    Step(
        "upgrade: the API server does not answer",
        "upgrade-machine",
        {
            **KUBE,
            **WAIT,
            "MACHINE": "w1",
            "RELEASE": "1.36.4",
            "KUBEADM_UPGRADE": "node",
            "BINARIES": "kubeadm https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm "
            + "ab" * 32,
            "DRAIN_TIMEOUT_SECONDS": "10",
        },
        cluster={"api": "down", "nodes": {}},
    ),
    Step(
        "cluster facts: the API server does not answer",
        "cluster-facts",
        {**KUBE, "REQUEST_TIMEOUT": "1s"},
        cluster={"api": "down", "nodes": {}},
    ),
    Step(
        "cluster facts: a machine's report",
        "cluster-facts",
        {**KUBE, "REQUEST_TIMEOUT": "1s"},
        cluster={"nodes": nodes("w1"), "configmaps": {"stubernetes-status-w1": LONG_REPORT}},
    ),
    Step(
        "network boot: IPMI, a machine that is on",
        "network-boot-once",
        {**BMC, "MACHINE": "w1", "BOOT_METHOD": "ipmi", "REDFISH_SYSTEM": SYSTEM},
        bmc={"power": "on", "password": PASSWORD, "bootdev": None, "boots": []},
    ),
    Step(
        "network boot: IPMI, a BMC that refuses the password",
        "network-boot-once",
        {**BMC, "MACHINE": "w1", "BOOT_METHOD": "ipmi", "REDFISH_SYSTEM": SYSTEM},
        bmc={"power": "on", "password": "another", "bootdev": None, "boots": []},
    ),
    Step(
        "network boot: Redfish, a machine that is off",
        "network-boot-once",
        {**BMC, "MACHINE": "w1", "BOOT_METHOD": "redfish", "REDFISH_SYSTEM": SYSTEM},
        bmc={
            "user": "admin",
            "password": PASSWORD,
            "system": SYSTEM,
            "PowerState": "Off",
            "Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"},
            "boots": [],
            "resets": [],
        },
    ),
    Step(
        "network boot: Redfish, wrong credentials",
        "network-boot-once",
        {**BMC, "MACHINE": "w1", "BOOT_METHOD": "redfish", "REDFISH_SYSTEM": SYSTEM},
        bmc={
            "user": "admin",
            "password": "another",
            "system": SYSTEM,
            "PowerState": "On",
            "Boot": {},
            "boots": [],
            "resets": [],
        },
    ),
    Step(
        "network boot: a pxeCommand that prints what it likes",
        "network-boot-once",
        {
            "MACHINE": "w1",
            "BOOT_METHOD": "command",
            "PXE_COMMAND": 'cat "$NOISE_FILE"; cat "$NOISE_FILE" >&2',
        },
    ),
    Step(
        "network boot: by hand",
        "network-boot-once",
        {"MACHINE": "w1", "BOOT_METHOD": "manual"},
        foreign_output=False,
    ),
    Step(
        "remove: a worker drained and deleted",
        "remove-machine",
        {**KUBE, "MACHINE": "w1", "ROLE": "worker", "CONTROLLERS": "c1"},
        cluster={"nodes": nodes("c1", "w1"), "etcd": ["c1"], "pods": [workload("web", "w1")]},
    ),
    Step(
        "remove: a controller whose peer's etcd does not answer",
        "remove-machine",
        {**KUBE, "MACHINE": "c2", "ROLE": "controller", "CONTROLLERS": "c1 c2"},
        cluster={"nodes": nodes("c1", "c2"), "etcd": ["c1", "c2"], "etcd_down": ["c1"]},
    ),
]


def noisy_tools(tmp_path: Path, noise_on: str) -> Path:
    """kubectl, ipmitool and curl: each stand-in's own answer, then on a line of its own (as a
    warning after the answer) NOISE, on ``noise_on``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fd = 1 if noise_on == "stdout" else 2
    for tool, standin in STANDINS.items():
        path = bin_dir / tool
        path.write_text(
            "#!/bin/sh\n"
            f'python3 {standin} "$@"\n'
            "status=$?\n"
            f'echo >&{fd}; cat "$NOISE_FILE" >&{fd}\n'
            'exit "$status"\n'
        )
        path.chmod(0o755)
    return bin_dir


def command_line(step: Step) -> str:
    """The step's `create` as the program writes it (components/install_step.py, gates.py,
    membership.py's delete): `bash components/scripts/<step> [args]`, from the project's root."""
    return f"bash {SCRIPTS}/{step.script}{' ' + step.args if step.args else ''}"


def environment(tmp_path: Path, step: Step, noise_on: str, noise: bytes = NOISE) -> dict[str, str]:
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    if step.cluster is not None:
        (cluster / "state.json").write_text(json.dumps(step.cluster))
    if step.bmc is not None:
        (tmp_path / "bmc.json").write_text(json.dumps(step.bmc))
    (tmp_path / "noise").write_bytes(noise)
    return {
        **os.environ,
        "PATH": f"{noisy_tools(tmp_path, noise_on)}:{os.environ['PATH']}",
        "FAKE_CLUSTER": str(cluster),
        "BMC_STATE": str(tmp_path / "bmc.json"),
        "TOOL_LOG": str(tmp_path / "tools.log"),
        "NOISE_FILE": str(tmp_path / "noise"),
        **step.env,
    }


def run_step(tmp_path: Path, step: Step, noise_on: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["/bin/sh", "-c", command_line(step)],
        cwd=REPO,
        env=environment(tmp_path, step, noise_on),
        capture_output=True,
        timeout=120,
        check=False,
    )


def too_long(output: bytes, bound: int) -> list[int]:
    return [len(line) for line in output.split(b"\n") if len(line) > bound]


def test_every_install_step_has_a_run_here() -> None:
    """The steps are the scripts the program runs (the files that are not sourced helpers)."""
    steps = {p.name for p in SCRIPTS_DIR.iterdir() if p.is_file() and p.suffix != ".sh"}
    assert steps == {step.script for step in STEPS}


def test_the_bound_is_far_below_the_scanners() -> None:
    # A line and its newline must fit bufio.Scanner's 64 KiB buffer, with room to spare.
    assert 0 < line_bound() < MAX_SCAN_TOKEN // 8


@pytest.mark.parametrize("step", STEPS, ids=[s.name for s in STEPS])
def test_a_steps_lines_stay_bounded_and_utf8_whatever_its_tools_print(
    tmp_path: Path, step: Step
) -> None:
    bound = line_bound()
    reached = []
    for noise_on in ("stdout", "stderr"):
        work = tmp_path / noise_on
        work.mkdir()
        done = run_step(work, step, noise_on)
        for stream, output in (("stdout", done.stdout), ("stderr", done.stderr)):
            where = f"{step.name}, the tools' noise on their {noise_on}, the step's {stream}"
            assert too_long(output, bound) == [], where
            try:
                output.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AssertionError(f"{where}: not UTF-8: {error}") from error
            if LONG_MARK in output or REPORT_MARK in output:
                assert b" [cut]" in output, where
            if any(mark in output for mark in (LONG_MARK, BYTES_MARK, REPORT_MARK)):
                reached.append((noise_on, stream))
    # The foreign output did reach the step's output somewhere (bounded and cleaned): the run
    # proves something. Steps that call no tool have nothing to pass on.
    assert bool(reached) == step.foreign_output, reached


def test_a_bounded_step_keeps_its_exit_status_arguments_and_order(tmp_path: Path) -> None:
    """bounded-output.sh runs the step again as its child: the child's status, arguments and
    standard input are the step's, each stream's lines keep their order, and an empty line or
    a tab stays."""
    script = tmp_path / "step"
    script.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        f'. "{BOUNDED_OUTPUT}"\n'
        'printf "%s\\n" "$@"; echo; printf "a\\tb\\n"; read -r line; echo "in: $line"\n'
        "echo err >&2; exit 7\n"
    )
    done = subprocess.run(
        ["/bin/sh", "-c", f"bash {script} one 'two words'"],
        input=b"given\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 7
    assert done.stdout == b"one\ntwo words\n\na\tb\nin: given\n"
    assert done.stderr == b"err\n"


def test_a_line_is_cut_at_the_bound_and_foreign_bytes_become_question_marks(
    tmp_path: Path,
) -> None:
    bound = line_bound()
    script = tmp_path / "step"
    script.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        f'. "{BOUNDED_OUTPUT}"\n'
        f"head -c {bound} /dev/zero | tr '\\0' a; echo\n"
        f"head -c {bound + 1} /dev/zero | tr '\\0' b; echo\n"
        "printf 'caf\\351 \\342\\200\\224 \\033[1m x\\r\\n'\n"
        "printf 'last, no newline'\n"
    )
    done = subprocess.run(["bash", str(script)], capture_output=True, timeout=30, check=True)
    lines = done.stdout.decode("ascii").split("\n")
    assert lines[0] == "a" * bound  # exactly at the bound: whole
    assert lines[1] == "b" * (bound - len(" [cut]")) + " [cut]"
    # Not printable ASCII, valid UTF-8 or not (an em dash, ESC): "?" byte for byte.
    assert lines[2] == "caf? ??? ?[1m x"
    assert lines[3:] == ["last, no newline", ""]


# --------------------------------------------------------------- through the command provider


class _EngineLog(EngineLog):
    """The engine's Log, as the command stand-in's Runner reaches it: here a list."""

    def __init__(self) -> None:
        super().__init__(None)
        self.lines: list[str] = []

    def send(self, severity: int, message: str, urn: str, ephemeral: bool) -> None:
        self.lines.append(message)


@pytest.fixture
def in_repo() -> Iterator[None]:
    # The engine runs a program's commands in the project's directory (commandOutputs.go run:
    # `cmd.Dir = os.Getwd()` without `dir`); the Runner does the same from its own.
    here = Path.cwd()
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(here)


BYTES_ONLY = NOISE.split(b"\n")[1] + b"\n"
# Steps that run to their end with stand-in tools that add NOISE (a 100 KiB line: the real
# provider hangs), or BYTES_ONLY (it fails after the step ran), to what they print on stderr.
# The rejoin wait's own trouble is the machine's report, a 100 KiB line whatever the tools say.
PROVIDER_CASES = [
    pytest.param(step, noise, unbounded, id=f"{step.name}, {kind}")
    for step in STEPS
    for noise, unbounded, kind in (
        (NOISE, "hangs", "a 100 KiB line"),
        (BYTES_ONLY, "hangs" if "rejoin" in step.name else "not UTF-8", "bytes not UTF-8"),
    )
    if step.name
    in {
        "clean: a controller drained, its etcd member removed",
        "network boot: IPMI, a machine that is on",
        "network boot: a pxeCommand that prints what it likes",
        "rejoin: back with a new boot",
    }
]


@pytest.mark.usefixtures("in_repo")
@pytest.mark.parametrize(("step", "noise", "unbounded"), PROVIDER_CASES)
def test_the_command_provider_takes_a_steps_output_which_unbounded_would_trip_it(
    tmp_path: Path, step: Step, noise: bytes, unbounded: str
) -> None:
    """As the engine runs it, through the command stand-in: with its output bounded the step
    runs to its end and returns its outputs; with the bound skipped (the child's marker set
    from the start), the same tools' output makes the real provider hang, or fail after the
    step ran (and run it again at the next up: a second power cycle, a second drain), and the
    stand-in says so."""
    outcomes = []
    for bounded in (True, False):
        work = tmp_path / ("bounded" if bounded else "unbounded")
        work.mkdir()
        env = environment(work, step, "stderr", noise)
        if not bounded:
            env["STUBERNETES_OUTPUT_BOUNDED"] = "true"
        log = _EngineLog()
        call = Call("urn:pulumi:lab::stubernetes::command:local:Command::step", log)
        inputs: Props = {"environment": dict(env)}
        try:
            Runner().run(call, command_line(step), inputs, Ran("", "")).as_outputs()
            outcomes.append("ran")
        except ProviderError as error:
            text = str(error)
            if "would hang here for ever" in text:
                outcomes.append("hangs")
            elif text == INVALID_UTF8:
                outcomes.append("not UTF-8")
            else:
                outcomes.append(text[-2000:])
        assert all(len(line) < MAX_SCAN_TOKEN for line in log.lines)
    assert outcomes == ["ran", unbounded]
