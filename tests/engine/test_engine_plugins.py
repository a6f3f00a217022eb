"""The stand-in provider plugins (tests/engine/plugins), driven over gRPC as the engine drives
them, each rule beside the upstream source it models; then, with the real Pulumi CLI, an
Automation API program whose random, tls and command resources go through the real engine.

Each plugin runs as the engine runs it: ``tests/engine/bin/pulumi-resource-<name> <engine
address>``, its port read from stdout; a fake engine here receives its ``Log`` calls.
Matchbox's plugin talks to a real Matchbox (marker ``real``); the engine test needs the Pulumi
CLI that ``scripts/tools pulumi`` builds (marker ``engine``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2, provider_pb2_grpc
from repo_paths import REPO

from engine.plugins.random_provider import bcrypt_salt, pure_bcrypt
from engine.plugins.server import (
    UNKNOWN,
    Props,
    Secret,
    Value,
    from_struct,
    reveal,
    to_struct,
)

BIN = REPO / "tests" / "engine" / "bin"
SITE = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
DIFF_NONE = provider_pb2.DiffResponse.DIFF_NONE
DIFF_SOME = provider_pb2.DiffResponse.DIFF_SOME


# --------------------------------------------------------------------------- the harness


@dataclass
class LogEntry:
    severity: int
    message: str
    urn: str
    ephemeral: bool
    at: float


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """The engine's ``Log`` service, recording what plugins send."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.lock = threading.Lock()

    def Log(self, request: engine_pb2.LogRequest, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.entries.append(
                LogEntry(
                    int(request.severity),
                    request.message,
                    request.urn,
                    request.ephemeral,
                    time.monotonic(),
                )
            )
        return empty_pb2.Empty()

    def for_urn(self, urn: str) -> list[LogEntry]:
        with self.lock:
            return [e for e in self.entries if e.urn == urn]

    def wait_for(self, urn: str, message: str, timeout: float = 20) -> LogEntry:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.for_urn(urn):
                if entry.message == message:
                    return entry
            time.sleep(0.02)
        raise AssertionError(f"no log {message!r} for {urn}: {self.for_urn(urn)}")


@dataclass
class Plugin:
    """One plugin process and a typed client for it."""

    name: str
    process: subprocess.Popen[bytes]
    stub: Any
    cwd: Path
    serial: list[int] = field(default_factory=lambda: [0])

    def urn(self, token: str, name: str | None = None) -> str:
        if name is None:
            self.serial[0] += 1
            name = f"r{self.serial[0]}"
        return f"urn:pulumi:test::engine-plugins::{token}::{name}"

    def check(
        self, urn: str, news: Mapping[str, Value], olds: Mapping[str, Value] | None = None
    ) -> tuple[Props, list[Any]]:
        response = self.stub.Check(
            provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds or {}), news=to_struct(news))
        )
        return from_struct(response.inputs), list(response.failures)

    def create(
        self, urn: str, news: Mapping[str, Value], preview: bool = False
    ) -> tuple[str, Props]:
        response = self.stub.Create(
            provider_pb2.CreateRequest(urn=urn, properties=to_struct(news), preview=preview)
        )
        return str(response.id), from_struct(response.properties)

    def diff(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Value],
        news: Mapping[str, Value],
        old_inputs: Mapping[str, Value],
    ) -> Any:
        return self.stub.Diff(
            provider_pb2.DiffRequest(
                urn=urn,
                id=id_,
                olds=to_struct(olds),
                news=to_struct(news),
                old_inputs=to_struct(old_inputs),
            )
        )

    def update(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Value],
        news: Mapping[str, Value],
        old_inputs: Mapping[str, Value],
        preview: bool = False,
    ) -> Props:
        response = self.stub.Update(
            provider_pb2.UpdateRequest(
                urn=urn,
                id=id_,
                olds=to_struct(olds),
                news=to_struct(news),
                old_inputs=to_struct(old_inputs),
                preview=preview,
            )
        )
        return from_struct(response.properties)

    def delete(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Value],
        old_inputs: Mapping[str, Value] | None = None,
    ) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(
                urn=urn, id=id_, properties=to_struct(olds), old_inputs=to_struct(old_inputs or {})
            )
        )

    def read(
        self, urn: str, id_: str, state: Mapping[str, Value], inputs: Mapping[str, Value]
    ) -> tuple[str, Props, Props]:
        response = self.stub.Read(
            provider_pb2.ReadRequest(
                urn=urn, id=id_, properties=to_struct(state), inputs=to_struct(inputs)
            )
        )
        return str(response.id), from_struct(response.properties), from_struct(response.inputs)

    def configure(self, args: Mapping[str, Value]) -> Any:
        return self.stub.Configure(provider_pb2.ConfigureRequest(args=to_struct(args)))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


# Go's unicode.IsSpace: the white space strings.TrimSpace removes at either end.
GO_WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000"
)


def hash_for_state(der: bytes) -> str:
    """terraform-provider-tls common.go hashForState(string(der)): the hex SHA-1 of the bytes
    after Go's strings.TrimSpace. A DER whose random signature ends in such a byte (a tab, a
    space...) hashes without it; bytes that are not UTF-8 are no white space to Go."""
    text = der.decode("utf-8", "surrogateescape").strip(GO_WHITE_SPACE)
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def start_plugin(
    name: str, engine_address: str, cwd: Path, env: Mapping[str, str] | None = None
) -> Plugin:
    process = subprocess.Popen(
        [str(BIN / f"pulumi-resource-{name}"), engine_address],
        stdout=subprocess.PIPE,
        cwd=cwd,
        env=None if env is None else dict(env),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise AssertionError(f"pulumi-resource-{name} printed {line!r}, not its port")
    channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
    stub = provider_pb2_grpc.ResourceProviderStub(channel)
    # The engine's first call (pkg/resource/plugin/provider_plugin.go NewProvider).
    stub.Handshake(provider_pb2.ProviderHandshakeRequest(engine_address=engine_address))
    return Plugin(name, process, stub, cwd)


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[FakeEngine, str]]:
    fake = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    engine_pb2_grpc.add_EngineServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def plugins(
    engine: tuple[FakeEngine, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Plugin]]:
    started: dict[str, Plugin] = {}

    def get(name: str) -> Plugin:
        if name not in started:
            cwd = tmp_path_factory.mktemp(f"{name}-cwd")
            started[name] = start_plugin(name, engine[1], cwd)
        return started[name]

    yield get
    for plugin in started.values():
        plugin.stop()


@pytest.fixture
def command(plugins: Callable[[str], Plugin]) -> Plugin:
    return plugins("command")


@pytest.fixture
def random_plugin(plugins: Callable[[str], Plugin]) -> Plugin:
    return plugins("random")


@pytest.fixture
def tls(plugins: Callable[[str], Plugin]) -> Plugin:
    return plugins("tls")


def rpc_error(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.UNKNOWN
    return str(error.details())


def rpc_failure(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), str(error.details())


def replaces(response: Any) -> list[str]:
    return sorted(response.replaces)


# ------------------------------------------------------------------- plugin protocol


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("random", "pulumi_random"),
        ("tls", "pulumi_tls"),
        ("command", "pulumi_command"),
        ("matchbox", "pulumiverse_matchbox"),
    ],
)
def test_each_plugin_reports_the_version_its_sdk_package_asks_for(
    plugins: Callable[[str], Plugin], name: str, package: str
) -> None:
    # The SDK registers its resources with the version in its pulumi-plugin.json; the engine
    # looks for that plugin (pulumi_<x>/_utilities.py get_version, pulumi-plugin.json).
    wanted = json.loads((SITE / package / "pulumi-plugin.json").read_text())
    plugin = plugins(name)
    info = plugin.stub.GetPluginInfo(empty_pb2.Empty())
    assert (wanted["name"], info.version) == (name, wanted["version"])


def test_configure_accepts_secrets_and_previews(plugins: Callable[[str], Plugin]) -> None:
    # pulumi-go-provider and the bridge both accept secrets and support preview; the engine
    # then calls Create and Update during previews with `preview` set.
    response = plugins("random").configure({"version": "4.21.4"})
    assert (response.acceptSecrets, response.supportsPreview) == (True, True)


def test_a_provider_configuration_change_updates_the_provider_in_place(
    plugins: Callable[[str], Plugin],
) -> None:
    # pulumi-terraform-bridge pkg/tfbridge/provider.go configDiffer: replaces only where a
    # field ForcesProviderReplace (no field of these providers does).
    response = plugins("matchbox").stub.DiffConfig(
        provider_pb2.DiffRequest(
            urn="urn:pulumi:test::engine-plugins::pulumi:providers:matchbox::m",
            olds=to_struct({"endpoint": "a:1", "version": "0.3.0"}),
            news=to_struct({"endpoint": "b:1", "version": "0.3.0"}),
        )
    )
    assert (response.changes, list(response.diffs), list(response.replaces)) == (
        DIFF_SOME,
        ["endpoint"],
        [],
    )


# ----------------------------------------------------------------------------- command

COMMAND = "command:local:Command"


def test_command_create_runs_in_the_engines_directory_and_trims_one_newline(
    command: Plugin,
) -> None:
    # commandOutputs.go run: `/bin/sh -c <create>`, `cmd.Dir` = os.Getwd() without `dir`;
    # stdout/stderr are the captures minus one trailing "\n" (strings.TrimSuffix).
    urn = command.urn(COMMAND)
    script = "pwd; printf 'two\\n\\n'; printf 'err\\n' >&2"
    id_, outputs = command.create(urn, {"create": script})
    # commandController.go Create: `resource.NewUniqueHex(name, 8, 0)`.
    name = urn.rsplit("::", 1)[1]
    assert id_.startswith(name) and len(id_) == len(name) + 8
    int(id_[len(name) :], 16)
    assert outputs == {
        "create": script,
        "stdout": f"{command.cwd}\ntwo\n",
        "stderr": "err",
    }


def test_command_environment_adds_to_the_plugins_environment(command: Plugin) -> None:
    # run: `cmd.Env = os.Environ()` plus `environment`.
    _, outputs = command.create(
        command.urn(COMMAND),
        {"create": 'echo "$GREETING ${HOME:+home-set}"', "environment": {"GREETING": "hello"}},
    )
    assert outputs["stdout"] == "hello home-set"


@pytest.mark.parametrize("pythonpath", [None, "/operator/site"])
def test_command_environment_is_the_engines_without_the_stand_ins_module_path(
    engine: tuple[FakeEngine, str], tmp_path: Path, pythonpath: str | None
) -> None:
    # run: `cmd.Env = os.Environ()`, the plugin's environment as the engine started it: a
    # PYTHONPATH the engine has reaches the command, and the stand-in adds none of its own
    # (tests/engine/launch.py puts tests/ on its module path instead).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    plugin = start_plugin("command", engine[1], tmp_path, env)
    try:
        _, outputs = plugin.create(plugin.urn(COMMAND), {"create": 'echo "${PYTHONPATH-unset}"'})
    finally:
        plugin.stop()
    assert outputs["stdout"] == (pythonpath or "unset")


def test_command_preview_runs_nothing_and_leaves_stdout_unknown(command: Plugin) -> None:
    # commandController.go Create: "If in preview, don't run the command"; infer markComputed:
    # outputs that mirror inputs stay known, stdout and stderr are unknown.
    marker = command.cwd / "preview-ran"
    news: Props = {"create": f"touch {marker}", "triggers": [1]}
    _, outputs = command.create(command.urn(COMMAND), news, preview=True)
    assert not marker.exists()
    assert outputs == {**news, "stdout": UNKNOWN, "stderr": UNKNOWN}


def test_command_output_streams_to_the_engine_log_line_by_line_while_it_runs(
    command: Plugin, engine: tuple[FakeEngine, str]
) -> None:
    # util.go LogOutput: each line of stdout and stderr goes to the engine as an info status
    # message (ephemeral), with the resource's URN, while the command runs; the command here
    # waits for the test to see its first line before it prints the second.
    fake = engine[0]
    urn = command.urn(COMMAND)
    go = command.cwd / "go-on"
    script = f"echo first; i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; "
    script += "i=$((i+1)); done; echo second >&2; echo third"
    result: dict[str, Props] = {}
    worker = threading.Thread(
        target=lambda: result.update(out=command.create(urn, {"create": script})[1])
    )
    worker.start()
    first = fake.wait_for(urn, "first")
    assert "out" not in result, "the first line arrived only after the command ended"
    go.touch()
    worker.join(30)
    assert result["out"]["stdout"] == "first\nthird" and result["out"]["stderr"] == "second"
    entries = fake.for_urn(urn)
    # Within a stream the order is kept; across stdout and stderr it is not (os/exec copies
    # each pipe in a goroutine of its own, as this plugin reads each in a thread).
    assert entries[0].message == "first"
    assert sorted(e.message for e in entries) == ["first", "second", "third"]
    assert all(e.ephemeral and e.severity == engine_pb2.INFO for e in entries)
    assert first.at < entries[1].at


@pytest.mark.parametrize(
    ("logging", "logged"),
    [("stdout", ["out"]), ("stderr", ["err"]), ("stdoutAndStderr", ["out", "err"]), ("none", [])],
)
def test_command_logging_picks_the_streams_logged(
    command: Plugin, engine: tuple[FakeEngine, str], logging: str, logged: list[str]
) -> None:
    # logging.go ShouldLogStdout/ShouldLogStderr; the outputs capture both regardless.
    urn = command.urn(COMMAND)
    _, outputs = command.create(
        urn, {"create": "echo out; sleep 0.1; echo err >&2", "logging": logging}
    )
    assert (outputs["stdout"], outputs["stderr"]) == ("out", "err")
    assert sorted(e.message for e in engine[0].for_urn(urn)) == sorted(logged)


def test_a_failing_command_fails_with_the_command_and_its_output(command: Plugin) -> None:
    # run: `fmt.Errorf("%w: running %q:\n%s", err, command, stdouterrbuf)`; Create returns the
    # error with no resource (nothing for the engine to record).
    script = 'echo partial; echo "bad \\"thing\\"" >&2; exit 3'
    details = rpc_error(lambda: command.create(command.urn(COMMAND), {"create": script}))
    heading = (
        'exit status 3: running "echo partial; echo \\"bad \\\\\\"thing\\\\\\"\\" >&2; exit 3":\n'
    )
    assert details.startswith(heading)
    # Both streams, each line as written (their interleaving is the pipes' race).
    assert sorted(details[len(heading) :].splitlines()) == ['bad "thing"', "partial"]


def run_invoke(command: Plugin, args: Props) -> Props:
    response = command.stub.Invoke(
        provider_pb2.InvokeRequest(tok="command:local:run", args=to_struct(args))
    )
    return from_struct(getattr(response, "return"))


def test_the_run_function_returns_its_inputs_and_the_output(command: Plugin) -> None:
    # runController.go Run.Invoke: RunOutputs{RunInputs: input} plus run's stdout and stderr,
    # one trailing newline trimmed, in the engine's directory.
    args: Props = {"command": 'pwd; echo "$FACT"; echo err >&2', "environment": {"FACT": "x"}}
    assert run_invoke(command, args) == {**args, "stdout": f"{command.cwd}\nx", "stderr": "err"}


def test_a_failing_run_function_fails_the_invoke_with_runs_error(command: Plugin) -> None:
    details = rpc_error(lambda: run_invoke(command, {"command": "echo partial; exit 4"}))
    assert details == 'exit status 4: running "echo partial; exit 4":\npartial\n'


# Go's bufio.MaxScanTokenSize (src/bufio/scan.go), the buffer limit of util.go LogOutput.
SCAN_LIMIT = 64 * 1024


def _line_of(size: int, newline: bool = True) -> str:
    """A shell command printing one line of ``size`` bytes ("x"), with or without "\\n"."""
    return f"head -c {size} /dev/zero | tr '\\0' x{'; echo' if newline else ''}"


@pytest.mark.parametrize("logging", [None, "stderr"])
def test_a_logged_line_of_64_kib_fails_at_once_where_the_real_provider_hangs(
    command: Plugin, tmp_path: Path, logging: str | None
) -> None:
    # util.go LogOutput's bufio.Scanner stops with ErrTooLong at a line that fills its 64 KiB
    # buffer; nothing reads the output pipe after that and the real command never finishes.
    # The stand-in kills the command (a child that holds the pipe too) and fails at once.
    survived = tmp_path / "survived"
    script = f"{{ {_line_of(100 * 1024)}; }} >&2; (sleep 2; touch {survived}) & sleep 30; echo"
    news: Props = {"create": script, **({"logging": logging} if logging else {})}
    started = time.monotonic()
    code, details = rpc_failure(lambda: command.create(command.urn(COMMAND), news))
    took = time.monotonic() - started
    assert code == grpc.StatusCode.UNKNOWN
    assert details.startswith("the real provider would hang here for ever: a line of 65536")
    assert "on stderr" in details and "bufio.MaxScanTokenSize" in details
    assert details.endswith(f"running {json.dumps(script)}")
    assert took < 10, took
    time.sleep(2.5 - min(took, 2.5))
    assert not survived.exists(), "the command's child was left running"


@pytest.mark.parametrize(
    ("script", "logging", "length"),
    [
        # The longest line the scanner takes: 65535 bytes and its newline fill the buffer.
        (_line_of(SCAN_LIMIT - 1), None, SCAN_LIMIT - 1),
        # A full buffer stops the scanner, but with nothing written after it nothing blocks.
        (_line_of(SCAN_LIMIT, newline=False), None, SCAN_LIMIT),
        # No stream logged: no scanner reads them (logging.go, commandOutputs.go run).
        (_line_of(100 * 1024), "none", 100 * 1024),
        (_line_of(100 * 1024), "stderr", 100 * 1024),
    ],
)
def test_output_the_scanner_survives_passes_whole(
    command: Plugin, script: str, logging: str | None, length: int
) -> None:
    news: Props = {"create": script, **({"logging": logging} if logging else {})}
    _, outputs = command.create(command.urn(COMMAND), news)
    assert outputs["stdout"] == "x" * length


def test_a_line_one_byte_over_the_scanners_limit_fails(command: Plugin) -> None:
    # 65536 bytes and a newline: the buffer is full before the newline, and the newline blocks.
    code, details = rpc_failure(
        lambda: command.create(command.urn(COMMAND), {"create": _line_of(SCAN_LIMIT)})
    )
    assert code == grpc.StatusCode.UNKNOWN
    assert "would hang here for ever" in details and "on stdout" in details


def test_output_that_is_not_utf8_fails_create_and_update_after_the_command_ran(
    command: Plugin, engine: tuple[FakeEngine, str], tmp_path: Path
) -> None:
    # The outputs' strings go into google.protobuf.Value unchecked (pulumi sdk plugin/rpc.go
    # MarshalString); grpc-go cannot marshal the response (protobuf errInvalidUTF8, rpc_util.go
    # encode: codes.Internal). The command has run; the engine records nothing, so the next up
    # creates (or updates) again. The line that is not UTF-8 never reaches the engine's log.
    runs = tmp_path / "runs"
    urn = command.urn(COMMAND)
    bad = f"echo ran >> {runs}; echo fine; printf 'caf\\351\\n'"
    for _ in range(2):
        code, details = rpc_failure(lambda: command.create(urn, {"create": bad}))
        assert (code, details) == (
            grpc.StatusCode.INTERNAL,
            "grpc: error while marshaling: string field contains invalid UTF-8",
        )
    assert runs.read_text() == "ran\nran\n"
    engine[0].wait_for(urn, "fine")
    assert [e.message for e in engine[0].for_urn(urn)] == ["fine", "fine"]
    on_stderr = f"echo ran >> {runs}; printf '\\377' >&2"
    code, _ = rpc_failure(lambda: command.create(command.urn(COMMAND), {"create": on_stderr}))
    assert code == grpc.StatusCode.INTERNAL
    _, state = command.create(urn, {"create": "echo good"})
    code, _ = rpc_failure(
        lambda: command.update(urn, "id", state, {"create": "echo good", "update": bad}, state)
    )
    assert code == grpc.StatusCode.INTERNAL
    assert runs.read_text() == "ran\n" * 4
    # Delete returns no output: nothing to marshal, nothing fails.
    command.delete(urn, "id", {**state, "delete": bad})
    assert runs.read_text() == "ran\n" * 5


def test_command_dir_is_used_and_a_missing_one_fails(command: Plugin, tmp_path: Path) -> None:
    # base.go `dir`: "If `dir` does not exist, then `Command` will fail."
    _, outputs = command.create(command.urn(COMMAND), {"create": "pwd", "dir": str(tmp_path)})
    assert outputs["stdout"] == str(tmp_path)
    details = rpc_error(
        lambda: command.create(
            command.urn(COMMAND), {"create": "pwd", "dir": str(tmp_path / "gone")}
        )
    )
    assert details.startswith(f"chdir {tmp_path / 'gone'}: no such file or directory")


def test_command_stdin_and_interpreter(command: Plugin) -> None:
    # run: `in.Interpreter` replaces ["/bin/sh", "-c"]; `stdin` is the process's input.
    _, outputs = command.create(
        command.urn(COMMAND),
        {
            "create": "import sys; print(sys.stdin.read().upper())",
            "interpreter": ["python3", "-c"],
            "stdin": "quiet",
        },
    )
    assert outputs["stdout"] == "QUIET"


def test_command_only_triggers_replace(command: Plugin) -> None:
    # common/inputs.go: `triggers` is `replaceOnChanges` (the SDK adds replace_on_changes
    # ["triggers[*]"]); every other input updates in place (infer diff, CustomUpdate).
    urn = command.urn(COMMAND)
    olds: Props = {"create": "true", "environment": {"A": "1"}, "triggers": [1, "x"]}
    state = {**olds, "stdout": "", "stderr": ""}
    same = command.diff(urn, "id", state, dict(olds), olds)
    assert (same.changes, replaces(same)) == (DIFF_NONE, [])
    trigger = command.diff(urn, "id", state, {**olds, "triggers": [2, "x"]}, olds)
    assert (trigger.changes, replaces(trigger)) == (DIFF_SOME, ["triggers"])
    assert (
        dict(trigger.detailedDiff)["triggers[0]"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE
    )
    longer = command.diff(urn, "id", state, {**olds, "triggers": [1, "x", 3]}, olds)
    assert replaces(longer) == ["triggers"]
    env = command.diff(urn, "id", state, {**olds, "environment": {"A": "2"}}, olds)
    assert (env.changes, replaces(env), list(env.diffs)) == (DIFF_SOME, [], ["environment"])
    assert list(env.detailedDiff) == ["environment.A"]
    script = command.diff(urn, "id", state, {**olds, "create": "false", "update": "x"}, olds)
    assert (script.changes, replaces(script), sorted(script.diffs)) == (
        DIFF_SOME,
        [],
        ["create", "update"],
    )
    assert not trigger.deleteBeforeReplace


def test_command_update_runs_update_else_create_with_the_previous_output(
    command: Plugin,
) -> None:
    # commandController.go Update: `update` if set, else `create`; run adds the previous
    # stdout/stderr as PULUMI_COMMAND_STDOUT/_STDERR (addPreviousOutputInEnv unset: true).
    urn = command.urn(COMMAND)
    create = 'echo "created"; echo "e1" >&2'
    olds: Props = {"create": create}
    _, state = command.create(urn, olds)
    news: Props = {
        **olds,
        "update": 'echo "update after $PULUMI_COMMAND_STDOUT/$PULUMI_COMMAND_STDERR"',
    }
    updated = command.update(urn, "id", state, news, olds)
    assert updated["stdout"] == "update after created/e1" and updated["stderr"] == ""
    again: Props = {"create": 'echo "create again, last: $PULUMI_COMMAND_STDOUT"'}
    recreated = command.update(urn, "id", updated, again, news)
    assert recreated["stdout"] == "create again, last: update after created/e1"
    quiet: Props = {**again, "addPreviousOutputInEnv": False}
    alone = command.update(urn, "id", recreated, quiet, again)
    assert alone["stdout"] == "create again, last: "


def test_command_update_with_neither_script_keeps_the_output(command: Plugin) -> None:
    # Update: "If neither are specified, do nothing."
    state: Props = {"environment": {"A": "1"}, "stdout": "old", "stderr": "olderr"}
    news: Props = {"environment": {"A": "2"}}
    out = command.update(command.urn(COMMAND), "id", state, news, {"environment": {"A": "1"}})
    assert out == {**news, "stdout": "old", "stderr": "olderr"}


def test_command_update_preview_runs_nothing(command: Plugin) -> None:
    # Update in preview: nothing runs. infer/resource.go markComputed (not a create): stdout
    # and stderr are unknown when an input differs from the same-named property of the stored
    # state; an input the state lacks (`hasOldInput` false) does not count.
    urn = command.urn(COMMAND)
    marker = command.cwd / "update-preview-ran"
    state: Props = {"create": "true", "stdout": "x", "stderr": ""}
    changed: Props = {"create": f"touch {marker}"}
    out = command.update(urn, "id", state, changed, {"create": "true"}, preview=True)
    assert not marker.exists()
    assert out == {**changed, "stdout": UNKNOWN, "stderr": UNKNOWN}
    added: Props = {"create": "true", "update": f"touch {marker}"}
    kept = command.update(urn, "id", state, added, {"create": "true"}, preview=True)
    assert not marker.exists()
    assert kept == {**added, "stdout": "x", "stderr": ""}


def test_command_delete_runs_delete_with_the_stored_inputs(command: Plugin, tmp_path: Path) -> None:
    # commandController.go Delete: `delete` runs with the state's dir, environment and the
    # last stdout; with no `delete`, nothing runs.
    urn = command.urn(COMMAND)
    record = tmp_path / "deleted"
    stored: Props = {
        "create": "echo made",
        "delete": f'echo "$WHO $PULUMI_COMMAND_STDOUT $(pwd)" > {record}',
        "environment": {"WHO": "old-env"},
        "dir": str(tmp_path),
    }
    _, state = command.create(urn, stored)
    command.delete(urn, "id", state, stored)
    assert record.read_text() == f"old-env made {tmp_path}\n"
    record.unlink()
    command.delete(urn, "id", {"create": f"touch {record}", "stdout": "", "stderr": ""})
    assert not record.exists()


def test_command_outputs_are_secret_only_where_the_same_input_was(command: Plugin) -> None:
    # infer/resource.go ensureDefaultSecrets: an output is secret when the same-named input
    # is; stdout and stderr have none (a secret `create` does not make them secret).
    _, outputs = command.create(
        command.urn(COMMAND),
        {"create": Secret("echo $TOKEN"), "environment": {"TOKEN": Secret("s3")}},
    )
    assert outputs == {
        "create": Secret("echo $TOKEN"),
        "environment": {"TOKEN": Secret("s3")},
        "stdout": "s3",
        "stderr": "",
    }


def test_command_check_refuses_wrongly_typed_inputs(command: Plugin) -> None:
    # infer/resource.go Check: inputs decode into CommandInputs, failures per property.
    _, failures = command.check(
        command.urn(COMMAND), {"create": 3, "environment": {"A": 1}, "logging": "loud"}
    )
    assert sorted(f.property for f in failures) == ["create", "environment", "logging"]
    good: Props = {"create": "true", "triggers": [UNKNOWN]}
    assert command.check(command.urn(COMMAND), good) == (good, [])


# ------------------------------------------------------------------------------ random

RANDOM_ID = "random:index/randomId:RandomId"
RANDOM_STRING = "random:index/randomString:RandomString"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def test_random_id_forms_share_one_value_and_the_id_has_no_prefix(random_plugin: Plugin) -> None:
    # resource_id.go Create: id = RawURLEncoding; b64_url, b64_std, hex, dec with the prefix.
    id_, out = random_plugin.create(random_plugin.urn(RANDOM_ID), {"byteLength": 6, "prefix": "p-"})
    data = base64.urlsafe_b64decode(id_ + "=" * (-len(id_) % 4))
    assert len(data) == 6
    assert out == {
        "byteLength": 6,
        "prefix": "p-",
        "id": id_,
        "b64Url": "p-" + id_,
        "b64Std": "p-" + base64.b64encode(data).decode(),
        "hex": "p-" + data.hex(),
        "dec": "p-" + str(int.from_bytes(data, "big")),
    }


def test_random_id_preview_leaves_the_computed_forms_unknown(random_plugin: Plugin) -> None:
    # The bridge's preview Create returns the planned state: computed attributes unknown.
    news: Props = {"byteLength": 4, "keepers": {"generation": "1"}}
    _, out = random_plugin.create(random_plugin.urn(RANDOM_ID), news, preview=True)
    assert out == {**news, **dict.fromkeys(("id", "b64Url", "b64Std", "hex", "dec"), UNKNOWN)}


@pytest.mark.parametrize(
    ("old", "new", "replace"),
    [
        ({"a": "1"}, {"a": "1"}, None),
        ({"a": "1"}, {"a": "2"}, True),  # a value changed
        ({"a": "1", "b": "2"}, {"a": "1"}, True),  # a key went
        ({"a": "1"}, {"a": "1", "b": "2"}, True),  # a key was added with a value
        ({"a": "1"}, {"a": "1", "b": None}, False),  # a key added with null: no replacement
        (None, {"a": "1"}, True),
        (None, {"a": None}, False),
        ({"a": "1"}, None, True),
    ],
)
def test_random_keepers_replace_as_requires_replace_if_values_not_null(
    random_plugin: Plugin, old: Value, new: Value, replace: bool | None
) -> None:
    # internal/planmodifiers/map RequiresReplaceIfValuesNotNull on `keepers`; a change that
    # does not replace updates in place (Update copies the plan).
    urn = random_plugin.urn(RANDOM_ID)
    olds: Props = {"byteLength": 4, "keepers": old}
    id_, state = random_plugin.create(urn, olds)
    news: Props = {"byteLength": 4, "keepers": new}
    response = random_plugin.diff(urn, id_, state, news, olds)
    if replace is None:
        assert (response.changes, replaces(response)) == (DIFF_NONE, [])
    elif replace:
        assert replaces(response) == ["keepers"]
    else:
        assert response.changes in (DIFF_SOME, DIFF_NONE) and replaces(response) == []
        updated = random_plugin.update(urn, id_, state, news, olds)
        assert updated["hex"] == state["hex"]


@pytest.mark.parametrize("change", [{"byteLength": 5}, {"prefix": "x-"}])
def test_random_id_byte_length_and_prefix_replace(random_plugin: Plugin, change: Props) -> None:
    # resource_id.go: byte_length and prefix are RequiresReplace.
    urn = random_plugin.urn(RANDOM_ID)
    id_, state = random_plugin.create(urn, {"byteLength": 4})
    response = random_plugin.diff(urn, id_, state, {"byteLength": 4, **change}, {"byteLength": 4})
    assert replaces(response) == sorted(change)


def test_random_string_follows_its_character_classes_and_minimums(
    random_plugin: Plugin,
) -> None:
    # internal/random/string.go CreateString; stringSchemaV3 defaults (upper, lower, numeric,
    # special true; minimums 0); `number` follows `numeric`; the id is the result.
    urn = random_plugin.urn(RANDOM_STRING)
    id_, out = random_plugin.create(
        urn, {"length": 40, "special": False, "upper": False, "minNumeric": 10}
    )
    result = out["result"]
    assert isinstance(result, str) and id_ == result == out["id"]
    assert len(result) == 40 and set(result) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert sum(c.isdigit() for c in result) >= 10
    assert {k: out[k] for k in ("lower", "number", "numeric", "minUpper", "minSpecial")} == {
        "lower": True,
        "number": True,
        "numeric": True,
        "minUpper": 0,
        "minSpecial": 0,
    }
    _, only_special = random_plugin.create(
        random_plugin.urn(RANDOM_STRING),
        {"length": 8, "upper": False, "lower": False, "numeric": False, "overrideSpecial": "#"},
    )
    assert only_special["result"] == "########"


def test_random_string_check_refuses_what_its_validators_refuse(random_plugin: Plugin) -> None:
    # length: AtLeast(1), AtLeastSumOf(min_*); number/numeric: AtLeastOneOfTrue(special, upper,
    # lower); NumberNumericAttributePlanModifier: number and numeric set differently.
    urn = random_plugin.urn(RANDOM_STRING)
    _, short = random_plugin.check(urn, {"length": 3, "minUpper": 2, "minLower": 2})
    assert [f.property for f in short] == ["length"]
    _, none_true = random_plugin.check(
        urn, {"length": 3, "special": False, "upper": False, "lower": False, "numeric": False}
    )
    assert [f.property for f in none_true] == ["numeric"]
    _, both = random_plugin.check(urn, {"length": 3, "number": True, "numeric": False})
    assert [f.property for f in both] == ["number"]
    _, missing = random_plugin.check(urn, {})
    assert [f.property for f in missing] == ["length"]


def test_random_string_every_input_but_keepers_replaces(random_plugin: Plugin) -> None:
    # stringSchemaV3: RequiresReplace on every configurable attribute; override_special
    # replaces unless it goes from "" to null (RequiresReplaceUnlessEmptyStringToNull).
    urn = random_plugin.urn(RANDOM_STRING)
    olds: Props = {"length": 6, "special": False, "overrideSpecial": ""}
    id_, state = random_plugin.create(urn, olds)
    changes: list[Props] = [
        {"length": 7},
        {"special": True},
        {"upper": False},
        {"minLower": 1},
        {"overrideSpecial": "#"},
    ]
    for change in changes:
        assert replaces(random_plugin.diff(urn, id_, state, {**olds, **change}, olds)) == sorted(
            change
        ), change
    to_null = random_plugin.diff(urn, id_, state, {"length": 6, "special": False}, olds)
    assert replaces(to_null) == []


def test_random_password_result_and_bcrypt_hash_are_secret(random_plugin: Plugin) -> None:
    # resource_password.go: result and bcrypt_hash Sensitive (the SDK's
    # additionalSecretOutputs); id "none"; the hash is bcrypt of the result (generateHash).
    id_, out = random_plugin.create(
        random_plugin.urn(RANDOM_PASSWORD), {"length": 16, "special": False, "upper": False}
    )
    assert id_ == "none" == out["id"]
    result, hashed = out["result"], out["bcryptHash"]
    assert isinstance(result, Secret) and isinstance(hashed, Secret)
    password, digest = str(result.value), str(hashed.value)
    assert len(password) == 16 and set(password) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    cost = int(digest[4:6])
    assert pure_bcrypt(password.encode(), bcrypt_salt(digest[7:29]), cost) == digest
    _, string = random_plugin.create(random_plugin.urn(RANDOM_STRING), {"length": 4})
    assert isinstance(string["result"], str)


def test_pure_bcrypt_matches_the_openwall_vectors() -> None:
    # crypt_blowfish's wrapper.c test vectors (what the bcrypt fallback must agree with).
    for password, digest in [
        (b"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
        (b"", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"),
    ]:
        assert pure_bcrypt(password, bcrypt_salt(digest[7:29]), 5) == digest


# --------------------------------------------------------------------------------- tls

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
SECRET_KEY_OUTPUTS = ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8")


def _key(tls: Plugin, **news: Value) -> tuple[str, Props]:
    return tls.create(tls.urn(PRIVATE_KEY), dict(news))


def test_private_key_defaults_and_secret_outputs(tls: Plugin) -> None:
    # resource_private_key.go: rsa_bits default 2048, ecdsa_curve default P224; the three
    # private forms Sensitive; the id is hashForState of the DER public key.
    id_, out = _key(tls, algorithm="RSA")
    assert (out["rsaBits"], out["ecdsaCurve"]) == (2048, "P224")
    assert all(isinstance(out[k], Secret) for k in SECRET_KEY_OUTPUTS)
    key = serialization.load_pem_private_key(str(reveal(out["privateKeyPem"])).encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert str(reveal(out["privateKeyPem"])).startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert id_ == out["id"] == hash_for_state(der)
    wire = base64.b64decode(str(out["publicKeyOpenssh"]).split()[1])
    assert out["publicKeyFingerprintSha256"] == "SHA256:" + base64.b64encode(
        hashlib.sha256(wire).digest()
    ).decode().rstrip("=")
    assert str(out["publicKeyOpenssh"]).endswith("\n")


def test_private_key_ecdsa_curves_and_ed25519(tls: Plugin) -> None:
    # keyGenerators; SEC 1 "EC PRIVATE KEY" for ECDSA, PKCS#8 for Ed25519; x/crypto/ssh does
    # not do P-224, so its OpenSSH forms are empty.
    _, p224 = _key(tls, algorithm="ECDSA")
    key = serialization.load_pem_private_key(str(reveal(p224["privateKeyPem"])).encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1"
    assert reveal(p224["privateKeyOpenssh"]) == "" and p224["publicKeyOpenssh"] == ""
    _, p256 = _key(tls, algorithm="ECDSA", ecdsaCurve="P256")
    assert str(reveal(p256["privateKeyPem"])).startswith("-----BEGIN EC PRIVATE KEY-----")
    assert str(p256["publicKeyOpenssh"]).startswith("ecdsa-sha2-nistp256 ")
    _, edwards = _key(tls, algorithm="ED25519")
    edkey = serialization.load_pem_private_key(str(reveal(edwards["privateKeyPem"])).encode(), None)
    assert isinstance(edkey, ed25519.Ed25519PrivateKey)
    assert str(reveal(edwards["privateKeyOpenssh"])).startswith(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    )


def test_private_key_preview_and_every_change_replaces(tls: Plugin) -> None:
    # Schema: algorithm, rsa_bits, ecdsa_curve RequiresReplace; an explicit default is no
    # change (the plan holds the default); computed keys are unknown in a preview.
    urn = tls.urn(PRIVATE_KEY)
    _, preview = tls.create(urn, {"algorithm": "ECDSA"}, preview=True)
    assert preview["ecdsaCurve"] == "P224" and preview["publicKeyPem"] == UNKNOWN
    assert preview["privateKeyPem"] == Secret(UNKNOWN)
    id_, state = tls.create(urn, {"algorithm": "ECDSA"})
    olds: Props = {"algorithm": "ECDSA"}
    explicit = tls.diff(urn, id_, state, {"algorithm": "ECDSA", "ecdsaCurve": "P224"}, olds)
    assert (explicit.changes, replaces(explicit)) == (DIFF_NONE, [])
    for change in ({"algorithm": "RSA"}, {"ecdsaCurve": "P384"}, {"rsaBits": 4096}):
        assert replaces(tls.diff(urn, id_, state, {**olds, **change}, olds)) == sorted(change)
    _, failures = tls.check(urn, {"algorithm": "DSA", "ecdsaCurve": "P999"})
    assert sorted(f.property for f in failures) == ["algorithm", "ecdsaCurve"]


def _ca(tls: Plugin, **extra: Value) -> tuple[str, Props, Props]:
    _, key = _key(tls, algorithm="ECDSA", ecdsaCurve="P256")
    news: Props = {
        "privateKeyPem": key["privateKeyPem"],
        "subject": {"commonName": "test-ca", "organization": "stubernetes"},
        "isCaCertificate": True,
        "validityPeriodHours": 24,
        "allowedUses": ["cert_signing", "key_encipherment", "digital_signature"],
        **extra,
    }
    id_, out = tls.create(tls.urn(SELF_SIGNED), news)
    return id_, out, news


def _cert(pem: Value) -> x509.Certificate:
    return x509.load_pem_x509_certificate(str(reveal(pem)).encode())


def test_self_signed_ca_certificate(tls: Plugin) -> None:
    # resource_self_signed_cert.go and common_cert.go createCertificate: the subject, a
    # random serial (the id), validity now .. now + hours, key usages from allowed_uses, CA
    # basic constraints and a subject key id; the private key input stays secret.
    id_, out, _ = _ca(tls)
    cert = _cert(out["certPem"])
    assert id_ == out["id"] == str(cert.serial_number)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test-ca"
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.digital_signature
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    start = cert.not_valid_before_utc
    assert cert.not_valid_after_utc - start == datetime.timedelta(hours=24)
    assert out["keyAlgorithm"] == "ECDSA" and out["readyForRenewal"] is False
    assert isinstance(out["privateKeyPem"], Secret)
    assert {k: out[k] for k in ("earlyRenewalHours", "setSubjectKeyId", "setAuthorityKeyId")} == {
        "earlyRenewalHours": 0,
        "setSubjectKeyId": False,
        "setAuthorityKeyId": False,
    }
    assert "maxPathLength" not in out  # "null if not specified"


def test_check_marks_the_sensitive_private_key_input_secret(tls: Plugin) -> None:
    # pkg/pf/tfbridge/provider_check.go: MarkSchemaSecrets on the checked inputs.
    inputs, _ = tls.check(tls.urn(CERT_REQUEST), {"privateKeyPem": "-----BEGIN X-----"})
    assert inputs == {"privateKeyPem": Secret("-----BEGIN X-----")}


def test_cert_request_and_locally_signed_cert_chain_to_the_ca(tls: Plugin) -> None:
    # resource_cert_request.go: subject and SANs in the CSR, id hashForState of its DER;
    # resource_locally_signed_cert.go: subject and SANs from the request, issuer the CA's
    # subject, the authority key id the CA's subject key id (x509.CreateCertificate).
    _, ca_out, ca_news = _ca(tls)
    _, key = _key(tls, algorithm="ECDSA", ecdsaCurve="P256")
    request_id, request = tls.create(
        tls.urn(CERT_REQUEST),
        {
            "privateKeyPem": key["privateKeyPem"],
            "subject": {"commonName": "admin", "organization": "system:masters"},
            "dnsNames": ["api.example"],
            "ipAddresses": ["10.0.0.1"],
        },
    )
    csr_pem = str(request["certRequestPem"])
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    der = csr.public_bytes(serialization.Encoding.DER)
    assert request_id == hash_for_state(der) and request["keyAlgorithm"] == "ECDSA"
    _, signed = tls.create(
        tls.urn(LOCALLY_SIGNED),
        {
            "certRequestPem": csr_pem,
            "caPrivateKeyPem": ca_news["privateKeyPem"],
            "caCertPem": ca_out["certPem"],
            "validityPeriodHours": 12,
            "earlyRenewalHours": 1,
            "allowedUses": ["client_auth", "digital_signature", "key_encipherment"],
        },
    )
    ca, cert = _cert(ca_out["certPem"]), _cert(signed["certPem"])
    cert.verify_directly_issued_by(ca)
    assert cert.subject == csr.subject and cert.issuer == ca.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(signed["caPrivateKeyPem"], Secret) and signed["caKeyAlgorithm"] == "ECDSA"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def test_early_renewal_hours_updates_in_place_the_rest_replaces(tls: Plugin) -> None:
    # The certificate schemas: early_renewal_hours has no RequiresReplace (Update:
    # updatedUsingPlan), every other input has.
    id_, state, news = _ca(tls)
    urn = tls.urn(SELF_SIGNED)
    early = tls.diff(urn, id_, state, {**news, "earlyRenewalHours": 2}, news)
    assert (early.changes, replaces(early), list(early.diffs)) == (
        DIFF_SOME,
        [],
        ["earlyRenewalHours"],
    )
    updated = tls.update(urn, id_, state, {**news, "earlyRenewalHours": 2}, news)
    assert updated["earlyRenewalHours"] == 2 and updated["certPem"] == state["certPem"]
    changes: list[Props] = [
        {"validityPeriodHours": 48},
        {"allowedUses": ["cert_signing"]},
        {"subject": {"commonName": "other"}},
        {"isCaCertificate": False},
    ]
    for change in changes:
        assert replaces(tls.diff(urn, id_, state, {**news, **change}, news)) == sorted(change)


def test_a_certificate_due_for_renewal_is_replaced_and_read_reports_it(tls: Plugin) -> None:
    # common_cert.go modifyPlanIfCertificateReadyForRenewal: once now >= validity_end_time -
    # early_renewal_hours the plan replaces it (ready_for_renewal); Read
    # (modifyStateIfCertificateReadyForRenewal) stores ready_for_renewal = true.
    id_, state, news = _ca(tls, validityPeriodHours=0)
    urn = tls.urn(SELF_SIGNED)
    due = tls.diff(urn, id_, state, news, news)
    assert replaces(due) == ["readyForRenewal"]
    read_id, refreshed, _ = tls.read(urn, id_, state, news)
    assert (read_id, refreshed["readyForRenewal"]) == (id_, True)
    fresh_id, fresh, fresh_news = _ca(tls, validityPeriodHours=48, earlyRenewalHours=1)
    assert replaces(tls.diff(urn, fresh_id, fresh, fresh_news, fresh_news)) == []
    assert tls.read(urn, fresh_id, fresh, fresh_news)[1]["readyForRenewal"] is False


def _sdk_names(cls: type) -> set[str]:
    """The engine-side names of a generated SDK class's properties (`pulumi.getter(name=)`)."""
    return {
        str(getattr(member.fget, "_pulumi_name"))  # noqa: B009
        for member in vars(cls).values()
        if isinstance(member, property) and hasattr(member.fget, "_pulumi_name")
    }


def test_every_computed_output_the_python_sdk_declares_is_returned(
    plugins: Callable[[str], Plugin],
) -> None:
    # The generated classes (pulumi_random/*.py, pulumi_tls/*.py) read these outputs; each
    # computed one (an output that is not an input) must come back from Create.
    import pulumi_random
    import pulumi_tls

    tls = plugins("tls")
    random_plugin = plugins("random")
    _, ca_out, ca_news = _ca(tls)
    _, key = _key(tls, algorithm="ED25519")
    _, request = tls.create(tls.urn(CERT_REQUEST), {"privateKeyPem": key["privateKeyPem"]})
    signed_news: Props = {
        "certRequestPem": request["certRequestPem"],
        "caPrivateKeyPem": ca_news["privateKeyPem"],
        "caCertPem": ca_out["certPem"],
        "validityPeriodHours": 1,
        "allowedUses": ["server_auth"],
    }
    created: list[tuple[Any, Any, Props]] = [
        (pulumi_tls.PrivateKey, pulumi_tls.PrivateKeyArgs, key),
        (pulumi_tls.CertRequest, pulumi_tls.CertRequestArgs, request),
        (pulumi_tls.SelfSignedCert, pulumi_tls.SelfSignedCertArgs, ca_out),
        (
            pulumi_tls.LocallySignedCert,
            pulumi_tls.LocallySignedCertArgs,
            tls.create(tls.urn(LOCALLY_SIGNED), signed_news)[1],
        ),
        (
            pulumi_random.RandomId,
            pulumi_random.RandomIdArgs,
            random_plugin.create(random_plugin.urn(RANDOM_ID), {"byteLength": 2})[1],
        ),
        (
            pulumi_random.RandomString,
            pulumi_random.RandomStringArgs,
            random_plugin.create(random_plugin.urn(RANDOM_STRING), {"length": 2})[1],
        ),
        (
            pulumi_random.RandomPassword,
            pulumi_random.RandomPasswordArgs,
            random_plugin.create(random_plugin.urn(RANDOM_PASSWORD), {"length": 2})[1],
        ),
    ]
    for resource, args, outputs in created:
        computed = _sdk_names(resource) - _sdk_names(args)
        assert computed, resource
        assert computed <= set(outputs), (resource.__name__, computed - set(outputs))


# ----------------------------------------------------------------------------- matchbox

PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"


@dataclass
class MatchboxSetup:
    plugin: Plugin
    data: Path
    config: Props


@pytest.fixture(scope="module")
def matchbox(
    engine: tuple[FakeEngine, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MatchboxSetup]:
    import matchbox_grpc

    root = tmp_path_factory.mktemp("matchbox")
    tls_files = matchbox_grpc.make_tls_material(root / "tls")
    (root / "data").mkdir()
    (root / "assets").mkdir()
    server = matchbox_grpc.start_matchbox(
        root / "data", root / "assets", root / "logs", tls=tls_files
    )
    plugin = start_plugin("matchbox", engine[1], root)
    config: Props = {
        "endpoint": server.rpc_target,
        "ca": Secret(tls_files.ca_cert.read_text()),
        "clientCert": Secret(tls_files.client_cert.read_text()),
        "clientKey": Secret(tls_files.client_key.read_text()),
        "version": "0.3.0",
    }
    try:
        yield MatchboxSetup(plugin, root / "data", config)
    finally:
        plugin.stop()
        server.stop()


@pytest.mark.real
def test_matchbox_configure_dials_with_the_clients_pair_and_refuses_a_bad_ca(
    matchbox: MatchboxSetup,
) -> None:
    # matchbox.go: the CA must parse ("no PEM certificates were parsed"); provider.go
    # providerConfigure wraps the failure; a good configuration dials Matchbox at once.
    plugin = matchbox.plugin
    details = rpc_error(lambda: plugin.configure({**matchbox.config, "ca": "not a PEM"}))
    assert details == (
        f"failed to create Matchbox client or connect to {matchbox.config['endpoint']}:"
        " no PEM certificates were parsed"
    )
    # resources.go: `client_key` Secret; provider.go: the four settings Required.
    checked = plugin.stub.CheckConfig(
        provider_pb2.CheckRequest(
            urn="urn:pulumi:test::engine-plugins::pulumi:providers:matchbox::m",
            news=to_struct({"endpoint": "x:1", "clientKey": "k"}),
        )
    )
    assert from_struct(checked.inputs)["clientKey"] == Secret("k")
    assert sorted(f.property for f in checked.failures) == ["ca", "clientCert"]
    assert plugin.configure(matchbox.config).acceptSecrets


@pytest.mark.real
def test_matchbox_profile_and_group_put_get_and_delete(matchbox: MatchboxSetup) -> None:
    # resource_profile.go: ProfilePut (id = name) then IgnitionPut of `<name>.ign`; delete in
    # the reverse order; resource_group.go GroupPut/GroupDelete; Read through the Get calls,
    # gone (empty id) once Matchbox no longer has it.
    plugin = matchbox.plugin
    plugin.configure(matchbox.config)
    profile_urn = plugin.urn(PROFILE, "node-a")
    ignition = '{"ignition":{"version":"3.3.0"}}'
    profile: Props = {
        "name": "node-a",
        "kernel": "/assets/vmlinuz",
        "initrds": ["/assets/initrd.img"],
        "args": ["ip=dhcp"],
        "rawIgnition": Secret(ignition),
    }
    _, preview = plugin.create(profile_urn, profile, preview=True)
    assert preview["id"] == UNKNOWN and not (matchbox.data / "profiles").exists()
    profile_id, profile_state = plugin.create(profile_urn, profile)
    assert profile_id == "node-a" and profile_state == {**profile, "id": "node-a"}
    stored = json.loads((matchbox.data / "profiles" / "node-a.json").read_text())
    assert stored == {
        "id": "node-a",
        "ignition_id": "node-a.ign",
        "boot": {
            "kernel": "/assets/vmlinuz",
            "initrd": ["/assets/initrd.img"],
            "args": ["ip=dhcp"],
        },
    }
    assert (matchbox.data / "ignition" / "node-a.ign").read_text() == ignition
    group_urn = plugin.urn(GROUP, "node-a")
    group: Props = {
        "name": "node-a",
        "profile": "node-a",
        "selector": {"mac": "52:54:00:00:00:0a"},
        "metadata": {"machine": "a"},
    }
    group_id, group_state = plugin.create(group_urn, group)
    assert json.loads((matchbox.data / "groups" / "node-a.json").read_text()) == {
        "id": "node-a",
        "profile": "node-a",
        "selector": {"mac": "52:54:00:00:00:0a"},
        "metadata": {"machine": "a"},
    }
    read_id, read_state, _ = plugin.read(profile_urn, profile_id, profile_state, profile)
    assert (read_id, read_state) == (profile_id, profile_state)
    plugin.delete(group_urn, group_id, group_state)
    assert not (matchbox.data / "groups" / "node-a.json").exists()
    assert plugin.read(group_urn, group_id, group_state, group)[0] == ""
    plugin.delete(profile_urn, profile_id, profile_state)
    assert not (matchbox.data / "profiles" / "node-a.json").exists()
    assert not (matchbox.data / "ignition" / "node-a.ign").exists()


@pytest.mark.real
def test_matchbox_every_change_replaces_and_no_update_exists(matchbox: MatchboxSetup) -> None:
    # Every attribute ForceNew, no Update (resource_profile.go, resource_group.go); the bridge
    # sets no deleteBeforeReplace (pulumiverse resources.go); unset and empty are the same.
    plugin = matchbox.plugin
    urn = plugin.urn(PROFILE, "p")
    olds: Props = {"name": "p", "kernel": "/k", "args": ["a"], "rawIgnition": Secret("{}")}
    state = {**olds, "id": "p"}
    same = plugin.diff(urn, "p", state, {**olds, "initrds": []}, olds)
    assert (same.changes, replaces(same)) == (DIFF_NONE, [])
    changes: list[Props] = [
        {"kernel": "/k2"},
        {"args": ["b"]},
        {"rawIgnition": Secret("{ }")},
        {"name": "q"},
        {"initrds": ["/i"]},
    ]
    for change in changes:
        response = plugin.diff(urn, "p", state, {**olds, **change}, olds)
        assert replaces(response) == sorted(change) and not response.deleteBeforeReplace
    group: Props = {"name": "g", "profile": "p", "selector": {"mac": "m"}}
    moved = plugin.diff(
        plugin.urn(GROUP), "g", {**group, "id": "g"}, {**group, "selector": {"mac": "n"}}, group
    )
    assert replaces(moved) == ["selector"]
    details = rpc_error(lambda: plugin.update(urn, "p", state, {**olds, "kernel": "/k2"}, olds))
    assert "has no update" in details
    _, failures = plugin.check(urn, {"kernel": "/k", "genericConfig": "x"})
    assert sorted(f.property for f in failures) == ["genericConfig", "name"]


# --------------------------------------------------------------------- the real engine


def _cli_root() -> Path | None:
    from tool_cache import tool_bin

    binary = tool_bin("pulumi", "pulumi")
    return binary.parent.parent if binary is not None else None


@dataclass
class EngineRun:
    """What one engine operation showed: its change summary, warnings and diagnostics."""

    summary: dict[str, int]
    warnings: list[str]
    diagnostics: list[Any]
    seconds: float


@pytest.mark.engine
def test_the_real_engine_drives_the_stand_ins(tmp_path: Path) -> None:
    """Through the real Pulumi engine, an Automation API inline program with a RandomId, a
    tls PrivateKey and a local Command: up; an unchanged preview shows no change; a keepers
    and triggers change replaces both (create before delete: the old command's ``delete``
    runs after the new one's ``create``); an environment change updates the command in place
    (its ``update`` runs, with the previous stdout); destroy runs ``delete``."""
    root = _cli_root()
    if root is None:
        pytest.skip("the Pulumi CLI is not built: run ./scripts/tools pulumi")
    import pulumi
    import pulumi_command as command_sdk
    import pulumi_random as random_sdk
    import pulumi_tls as tls_sdk
    from pulumi import automation as auto

    runs_log = tmp_path / "runs.log"
    here = Path.cwd()
    project = tmp_path / "project"
    project.mkdir()
    settings = {"keeper": "1", "trigger": 1, "env": "one"}

    def program() -> None:
        anchor = random_sdk.RandomId(
            "anchor", byte_length=4, keepers={"k": str(settings["keeper"])}
        )
        key = tls_sdk.PrivateKey("key", algorithm="ECDSA", ecdsa_curve="P256")
        step = command_sdk.local.Command(
            "step",
            create=f'echo "create $STEP $(pwd)" >> {runs_log}; echo created; echo note >&2',
            update=f'echo "update $STEP $PULUMI_COMMAND_STDOUT" >> {runs_log}; echo updated',
            delete=f'echo "delete $STEP $PULUMI_COMMAND_STDOUT" >> {runs_log}',
            environment={"STEP": str(settings["env"])},
            triggers=[settings["trigger"]],
        )
        pulumi.export("hex", anchor.hex)
        pulumi.export("public_key", key.public_key_pem)
        pulumi.export("private_key", key.private_key_pem)
        pulumi.export("stdout", step.stdout)

    env = {
        "PULUMI_CONFIG_PASSPHRASE": "engine-plugins",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        # A home of its own: no installed plugin can stand in front of the ones on PATH.
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (tmp_path / "state").mkdir()
    stack = auto.create_or_select_stack(
        stack_name="engine-plugins",
        project_name="engine-plugins",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(project),
            pulumi_command=auto.PulumiCommand(root=str(root)),
            env_vars=env,
        ),
    )
    timings: dict[str, float] = {}
    warnings: list[str] = []

    def run(name: str, operation: Callable[..., Any]) -> EngineRun:
        events: list[Any] = []
        started = time.monotonic()
        result = operation(on_event=events.append)
        timings[name] = time.monotonic() - started
        diagnostics = [e.diagnostic_event for e in events if e.diagnostic_event is not None]
        summaries = [e.summary_event for e in events if e.summary_event is not None]
        changes = summaries[-1].resource_changes if summaries else {}
        if hasattr(result, "change_summary"):
            changes = dict(result.change_summary)
        warned = [d.message for d in diagnostics if d.severity == "warning"]
        warnings.extend(f"{name}: {w.strip()}" for w in warned)
        return EngineRun(dict(changes or {}), warned, diagnostics, timings[name])

    def ran() -> list[str]:
        return runs_log.read_text().splitlines() if runs_log.exists() else []

    try:
        first = run("up", stack.up)
        assert first.summary == {"create": 4}, first.summary
        outputs = stack.outputs()
        assert outputs["stdout"].value == "created" and not outputs["stdout"].secret
        assert outputs["private_key"].secret and not outputs["public_key"].secret
        assert str(outputs["public_key"].value).startswith("-----BEGIN PUBLIC KEY-----")
        old_hex = outputs["hex"].value
        # `dir` unset: the engine's directory, which for an inline program is the program's
        # `main`: the Automation API sets it to os.getcwd() (pulumi/automation/
        # _local_workspace.py), not the work_dir.
        assert ran() == [f"create one {here}"]
        # The command's output reached the engine as ephemeral info diagnostics, by URN.
        streamed = [
            d
            for d in first.diagnostics
            if d.urn and d.urn.endswith("::step") and d.severity == "info"
        ]
        assert {d.message.strip() for d in streamed} >= {"created", "note"}, streamed
        assert all(d.ephemeral for d in streamed)
        # The engine's only warnings: each stand-in taken from PATH (workspace/plugins.go).
        for name in ("random", "tls", "command"):
            assert any(f"using pulumi-resource-{name} from $PATH" in w for w in first.warnings)
        assert all("from $PATH" in w for w in first.warnings), first.warnings

        unchanged = run("preview", stack.preview)
        assert unchanged.summary == {"same": 4}, unchanged.summary
        assert ran() == [f"create one {here}"]

        settings.update(keeper="2", trigger=2)
        replaced = run("up-replace", stack.up)
        assert replaced.summary == {"replace": 2, "same": 2}, replaced.summary
        assert stack.outputs()["hex"].value != old_hex
        # Create before delete: the new command's create, then the old one's delete.
        assert ran()[1:] == [f"create one {here}", "delete one created"]

        settings.update(env="two")
        updated = run("up-update", stack.up)
        assert updated.summary == {"update": 1, "same": 3}, updated.summary
        assert ran()[3:] == ["update two created"]
        assert stack.outputs()["stdout"].value == "updated"

        destroyed = run("destroy", stack.destroy)
        assert destroyed.summary.get("delete") == 4, destroyed.summary
        assert ran()[4:] == ["delete two updated"]
    finally:
        print("engine timings (s):", {k: round(v, 1) for k, v in timings.items()})
        print("engine warnings:", *warnings, sep="\n  ")
        stack.workspace.remove_stack("engine-plugins", force=True)


@pytest.mark.engine
def test_the_real_engine_records_no_command_whose_output_is_not_utf8(tmp_path: Path) -> None:
    """Through the real engine: a Command whose output is not UTF-8 fails its up after its
    script ran (the stand-in fails as pulumi-command v1.2.1 does, commandOutputs.go run and
    gRPC's marshalling), the state keeps no such resource, and the next up runs it again; one
    whose line is over 64 KiB fails at once, where the real provider hangs."""
    root = _cli_root()
    if root is None:
        pytest.skip("the Pulumi CLI is not built: run ./scripts/tools pulumi")
    import pulumi_command as command_sdk
    from pulumi import automation as auto

    runs_log = tmp_path / "runs.log"
    script = {"create": f"echo ran >> {runs_log}; printf 'caf\\351\\n'"}

    def program() -> None:
        command_sdk.local.Command("step", create=script["create"])

    env = {
        "PULUMI_CONFIG_PASSPHRASE": "engine-plugins",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (tmp_path / "state").mkdir()
    (tmp_path / "project").mkdir()
    stack = auto.create_or_select_stack(
        stack_name="utf8",
        project_name="engine-plugins",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(tmp_path / "project"),
            pulumi_command=auto.PulumiCommand(root=str(root)),
            env_vars=env,
        ),
    )
    try:
        for attempt in (1, 2):
            with pytest.raises(auto.errors.CommandError) as caught:
                stack.up()
            assert "string field contains invalid UTF-8" in str(caught.value)
            assert runs_log.read_text() == "ran\n" * attempt
            resources = (stack.export_stack().deployment or {}).get("resources") or []
            assert not [r for r in resources if r["type"] == "command:local:Command"]
        script["create"] = "head -c 70000 /dev/zero | tr '\\0' x; echo; sleep 60"
        started = time.monotonic()
        with pytest.raises(auto.errors.CommandError) as caught:
            stack.up()
        assert "the real provider would hang here for ever" in str(caught.value)
        assert time.monotonic() - started < 50
    finally:
        stack.workspace.remove_stack("utf8", force=True)
