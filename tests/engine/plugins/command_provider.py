"""A stand-in for the ``command`` provider's ``command:local:Command``: it runs the scripts.

Upstream: pulumi/pulumi-command v1.2.1 (what ``pulumi-command==1.2.1`` asks the engine for),
``provider/pkg/provider/local/`` (``commandController.go`` the CRUD rules, ``commandOutputs.go``
``run``, ``base.go`` the inputs, ``logging.go``), ``provider/pkg/provider/common/inputs.go``
(``triggers``, ``create``, ``update``, ``delete``), ``provider/pkg/provider/util/util.go``
(``LogOutput``), built on pulumi/pulumi-go-provider v1.3.0 ``infer/resource.go`` (Check, Diff,
the preview and secret rules of every output). Each rule below names the lines it follows.

Where the real provider breaks on a command's output, this stand-in breaks too, loudly:

* a logged line of 64 KiB or more makes the real provider hang for ever (``LogOutput``'s
  ``bufio.Scanner`` stops, and nothing reads the pipe again); here the command is killed and
  the step fails at once, saying that the real provider would hang there;
* output that is not UTF-8 fails the real Create or Update after the command has run (gRPC
  cannot marshal the ``stdout``/``stderr`` strings), so the engine records nothing and the next
  ``up`` runs the command again; here too.

The ``local:run`` function (an invoke) follows ``local/runController.go`` Run.Invoke: the
inputs back with the command's ``stdout`` and ``stderr``, run by the same ``run`` as a
Command's create, with no previous output; a non-zero exit fails the invoke with run's error.

Not modelled: ``assetPaths`` and ``archivePaths`` (a Create or run that sets them fails, saying
so), custom timeouts and ``remote:*``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc

from engine.plugins.server import (
    UNKNOWN,
    Call,
    CheckFailure,
    DiffResult,
    Props,
    Provider,
    ProviderError,
    Resource,
    Value,
    as_replace,
    head,
    is_known,
    object_diff,
    reveal,
    serve,
)

TOKEN = "command:local:Command"
# pulumi-command v1.2.1 provider/pkg/provider/util/util.go.
STDOUT_VARIABLE = "PULUMI_COMMAND_STDOUT"
STDERR_VARIABLE = "PULUMI_COMMAND_STDERR"

# common/inputs.go ResourceInputs and local/base.go BaseInputs: the inputs, with their types.
STRING_INPUTS = ("create", "update", "delete", "stdin", "dir")
INPUTS = (
    "triggers",
    *STRING_INPUTS,
    "logging",
    "interpreter",
    "environment",
    "assetPaths",
    "archivePaths",
    "addPreviousOutputInEnv",
)
# local/logging.go: the values of ``logging``.
LOGGING_VALUES = ("stdout", "stderr", "stdoutAndStderr", "none")
# util.go LogOutput reads the logged output with a bufio.Scanner, whose buffer stops growing at
# bufio.MaxScanTokenSize (Go src/bufio/scan.go, 64 * 1024): once that buffer is full without a
# newline, Scan fails with ErrTooLong and LogOutput returns. The command's output still goes
# to the io.Pipe that nothing reads any more (commandOutputs.go run: `loggingWriter` in the
# io.MultiWriter of cmd.Stdout/cmd.Stderr), so the next byte written blocks os/exec's copying
# goroutine, and cmd.Wait, for ever. A line (with its "\r", without its "\n") of
# MAX_SCAN_TOKEN bytes or more fills the buffer.
MAX_SCAN_TOKEN = 64 * 1024
# How long the pipes of a killed command are still read, for its output, before giving up on
# a grandchild that keeps them open.
DRAIN_SECONDS = 5.0
# What the real plugin's gRPC server answers when a response's string is not UTF-8:
# google.golang.org/protobuf internal/impl/codec_field.go errInvalidUTF8 for a proto3 string
# (google.protobuf.Value.string_value), wrapped by grpc-go rpc_util.go encode as
# codes.Internal "grpc: error while marshaling: %v". pulumi/pulumi sdk/go/common/resource/plugin
# rpc.go MarshalString puts the Go string into the structpb.Value as it is, unchecked.
INVALID_UTF8 = "grpc: error while marshaling: string field contains invalid UTF-8"


def _type_failures(news: Props) -> list[CheckFailure]:
    """What pulumi-go-provider's decoding into CommandInputs refuses (infer/resource.go Check,
    ``decodeCheckingMapErrors``): a property of the wrong type. Unknown values pass."""
    failures: list[CheckFailure] = []

    def fail(key: str, wanted: str, value: Value) -> None:
        failures.append(CheckFailure(key, f"expected {wanted}, got {value!r}"))

    for key in INPUTS:
        value = reveal(news.get(key))
        if value is None or not is_known(value):
            continue
        if key in STRING_INPUTS and not isinstance(value, str):
            fail(key, "a string", value)
        elif key == "logging" and value not in LOGGING_VALUES:
            fail(key, f"one of {', '.join(LOGGING_VALUES)}", value)
        elif key in ("interpreter", "assetPaths", "archivePaths") and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            fail(key, "a list of strings", value)
        elif key == "environment" and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            fail(key, "a map of strings", value)
        elif key == "triggers" and not isinstance(value, list):
            fail(key, "a list", value)
        elif key == "addPreviousOutputInEnv" and not isinstance(value, bool):
            fail(key, "a boolean", value)
    return failures


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``): the form upstream's error message uses."""
    out = ['"']
    escapes = {
        '"': '\\"',
        "\\": "\\\\",
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
    }
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _exit_description(returncode: int) -> str:
    # Go's os.ProcessState.String: "exit status N", or "signal: <name>" for a killed process.
    if returncode >= 0:
        return f"exit status {returncode}"
    name = signal.strsignal(-returncode) or f"signal {-returncode}"
    return f"signal: {name.lower()}"


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str


@dataclass(frozen=True)
class RawRan:
    """What a command printed, as bytes: Go keeps them so in a string
    (`strings.TrimSuffix(stdoutbuf.String(), "\\n")`), whatever they are."""

    stdout: bytes
    stderr: bytes

    def as_outputs(self) -> Ran:
        """The outputs a Create or Update returns. Not UTF-8: the response cannot be
        marshalled, and the real plugin's call fails with INVALID_UTF8 after the command ran."""
        try:
            return Ran(self.stdout.decode("utf-8"), self.stderr.decode("utf-8"))
        except UnicodeDecodeError as error:
            stream = "stdout" if _invalid(self.stdout) else "stderr"
            print(
                f"command output on {stream} is not UTF-8 ({error}): the real provider fails"
                " here after the command ran, and the engine records nothing",
                file=sys.stderr,
                flush=True,
            )
            raise ProviderError(INVALID_UTF8, grpc.StatusCode.INTERNAL) from error


def _invalid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (by /proc/<pid>/stat's ppid), nearest first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it. The tree is frozen first (SIGSTOP, until a
    scan finds no process not yet stopped), so that nothing forks past the scan and escapes."""
    stopped: list[int] = [pid]
    _signal(pid, signal.SIGSTOP)
    while True:
        new = [child for child in _descendants(pid) if child not in stopped]
        if not new:
            break
        for child in new:
            _signal(child, signal.SIGSTOP)
        stopped.extend(new)
    for member in stopped:
        _signal(member, signal.SIGKILL)


class _Scanner:
    """The one bufio.Scanner of util.go LogOutput: both logged streams go into the same
    io.Pipe, so once it stops, further output on either blocks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopped_by: bytes | None = None  # the start of the line that stopped it
        self.stopped_on = ""
        self.hang: str | None = None  # why the real provider would now hang


class Runner:
    """Runs commands as ``commandOutputs.go`` ``run`` does, streaming each output line to the
    engine; remembers the running processes so ``Cancel`` can stop them."""

    def __init__(self) -> None:
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        # pulumi-go-provider cancels the request contexts; exec.CommandContext then kills the
        # process.
        with self._lock:
            running = list(self._running)
        for process in running:
            if process.poll() is None:
                process.kill()

    def run(self, call: Call, command: str, inputs: Props, previous: Ran) -> RawRan:
        """``commandOutputs.go`` run(ctx, command, in BaseInputs, out *BaseOutputs, logging)."""
        plain = {key: reveal(value) for key, value in inputs.items()}
        if plain.get("assetPaths") is not None or plain.get("archivePaths") is not None:
            raise ProviderError(
                "assetPaths and archivePaths are not modelled by the command stand-in"
            )
        # `in.Interpreter` when set and not empty, else ["/bin/sh", "-c"]; the command last.
        interpreter = plain.get("interpreter")
        argv = (
            [str(a) for a in interpreter]
            if isinstance(interpreter, list) and interpreter
            else ["/bin/sh", "-c"]
        )
        argv.append(command)
        # `cmd.Dir = *in.Dir`, else os.Getwd(): the plugin's directory, which is the engine's.
        directory = plain.get("dir")
        cwd = directory if isinstance(directory, str) and directory else os.getcwd()
        # `cmd.Env = os.Environ()` plus `environment`, plus the previous run's output when
        # `addPreviousOutputInEnv` is unset or true and that output is not empty; os/exec keeps
        # the last of duplicate names, as a dict update does. os.Environ() is the plugin's
        # environment, the engine's as it started the plugin: nothing of this stand-in's own
        # (tests/engine/bin/pulumi-resource-command sets no variable).
        env = dict(os.environ)
        environment = plain.get("environment")
        if isinstance(environment, dict):
            env.update({str(k): str(v) for k, v in environment.items()})
        if plain.get("addPreviousOutputInEnv") in (None, True):
            if previous.stdout:
                env[STDOUT_VARIABLE] = previous.stdout
            if previous.stderr:
                env[STDERR_VARIABLE] = previous.stderr
        stdin = plain.get("stdin")
        stdin_bytes = stdin.encode() if isinstance(stdin, str) and stdin else None
        # local/logging.go ShouldLogStdout/ShouldLogStderr: unset logs both.
        logging = plain.get("logging")
        log_stdout = logging in (None, "stdout", "stdoutAndStderr")
        log_stderr = logging in (None, "stderr", "stdoutAndStderr")

        stdout = bytearray()
        stderr = bytearray()
        combined = bytearray()  # `stdouterrbuf`: both streams, for the error message only
        lock = threading.Lock()
        scanner = _Scanner()

        def start() -> subprocess.Popen[bytes]:
            # exec.Command looks the program up in the plugin's PATH; cmd.Start then chdirs.
            program = argv[0]
            if "/" not in program and shutil.which(program) is None:
                raise ProviderError(
                    f"exec: {go_quote(program)}: executable file not found in"
                    f" $PATH: running {go_quote(command)}:\n"
                )
            if not os.path.isdir(cwd):
                raise ProviderError(
                    f"chdir {cwd}: no such file or directory: running {go_quote(command)}:\n"
                )
            try:
                return subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            except OSError as error:
                raise ProviderError(
                    f"fork/exec {program}: {error.strerror}: running {go_quote(command)}:\n"
                ) from error

        process = start()

        def stop_for_good(reason: str) -> None:
            # Where the real provider would hang: stop the command (and whatever it started,
            # which may hold the pipes) and fail the step now.
            with scanner.lock:
                if scanner.hang is not None:
                    return
                scanner.hang = reason
            _kill_tree(process.pid)

        def emit(line: bytes) -> None:
            message = line.removesuffix(b"\r")
            try:
                text = message.decode("utf-8")
            except UnicodeDecodeError:
                # The host's LogStatus cannot marshal it either; pulumi-go-provider logging.go
                # hostSink then logs it to the plugin's own log (slog) instead.
                print(
                    f"[{call.urn}] {message.decode('utf-8', errors='replace')}"
                    " (engine log failed: not UTF-8)",
                    file=sys.stderr,
                    flush=True,
                )
                return
            call.status(text)

        def pump(stream: IO[bytes], name: str, capture: bytearray, logged: bool) -> None:
            # util.go LogOutput: a bufio.Scanner over the logged streams; each line (without
            # its "\n" and a "\r" before it, bufio.ScanLines) goes to the engine as an *info
            # status* message (`l.InfoStatus(msg)`, ephemeral), with the resource's URN, while
            # the command runs. Read as it comes (read1), so that the first byte the real
            # scanner would never take is seen when it is written.
            pending = bytearray()
            while scanner.hang is None:
                data = stream.read1(MAX_SCAN_TOKEN)  # type: ignore[attr-defined]
                if not data:
                    # ScanLines at EOF: what is left is the last line.
                    if pending and scanner.stopped_by is None:
                        emit(bytes(pending))
                    break
                with lock:
                    capture.extend(data)
                    combined.extend(data)
                if not logged:
                    continue
                if scanner.stopped_by is not None:
                    stop_for_good(
                        f"a line of {MAX_SCAN_TOKEN} bytes or more on {scanner.stopped_on}"
                        f" (it begins {bytes(scanner.stopped_by[:40])!r}), and more output"
                        f" after it on {name}"
                    )
                    break
                pending.extend(data)
                while True:
                    # A line and its newline fit in the scanner's buffer, or the line fills it.
                    end = pending.find(b"\n", 0, MAX_SCAN_TOKEN)
                    if end >= 0:
                        emit(bytes(pending[:end]))
                        del pending[: end + 1]
                        continue
                    if len(pending) >= MAX_SCAN_TOKEN:
                        with scanner.lock:
                            scanner.stopped_by = bytes(pending[:MAX_SCAN_TOKEN])
                            scanner.stopped_on = name
                        if len(pending) > MAX_SCAN_TOKEN:
                            stop_for_good(
                                f"a line of {MAX_SCAN_TOKEN} bytes or more on {name} (it begins"
                                f" {bytes(pending[:40])!r}), and more output after it"
                            )
                    break
                if scanner.stopped_by is not None:
                    pending.clear()
            stream.close()

        with self._lock:
            self._running.add(process)
        try:
            assert process.stdout is not None and process.stderr is not None
            pumps = [
                threading.Thread(
                    target=pump, args=(process.stdout, "stdout", stdout, log_stdout), daemon=True
                ),
                threading.Thread(
                    target=pump, args=(process.stderr, "stderr", stderr, log_stderr), daemon=True
                ),
            ]
            for thread in pumps:
                thread.start()
            if stdin_bytes is not None:
                assert process.stdin is not None
                try:
                    process.stdin.write(stdin_bytes)
                except BrokenPipeError:
                    pass
                finally:
                    process.stdin.close()
            returncode = process.wait()
            for thread in pumps:
                thread.join(DRAIN_SECONDS if scanner.hang is not None else None)
        finally:
            with self._lock:
                self._running.discard(process)
        if scanner.hang is not None:
            raise ProviderError(
                f"the real provider would hang here for ever: {scanner.hang}. pulumi-command"
                " v1.2.1 logs a command's output through a bufio.Scanner (provider/pkg/"
                f"provider/util/util.go LogOutput), which stops at a line of {MAX_SCAN_TOKEN}"
                " bytes (bufio.MaxScanTokenSize); nothing reads the output after that, and the"
                " command never finishes. This stand-in killed the command instead: running"
                f" {go_quote(command)}"
            )
        if returncode != 0:
            # `fmt.Errorf("%w: running %q:\n%s", err, command, stdouterrbuf.String())`
            raise ProviderError(
                f"{_exit_description(returncode)}: running {go_quote(command)}:\n"
                + combined.decode("utf-8", errors="replace")
            )
        # `strings.TrimSuffix(stdoutbuf.String(), "\n")`: one trailing newline goes.
        return RawRan(bytes(stdout).removesuffix(b"\n"), bytes(stderr).removesuffix(b"\n"))


def _previous(state: Mapping[str, Value]) -> Ran:
    out, err = reveal(state.get("stdout")), reveal(state.get("stderr"))
    return Ran(out if isinstance(out, str) else "", err if isinstance(err, str) else "")


def _inputs_of(props: Mapping[str, Value]) -> Props:
    return {key: props[key] for key in INPUTS if props.get(key) is not None}


def _script(props: Mapping[str, Value], key: str) -> str | None:
    value = reveal(props.get(key))
    return value if isinstance(value, str) else None


class Command(Resource):
    token = TOKEN

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        # infer/resource.go Check: the inputs decode into CommandInputs, and defaults are
        # applied; CommandInputs declares no default (`addPreviousOutputInEnv` "defaults to
        # true" only in how run reads it), so the inputs come back as they came.
        return dict(news), _type_failures(news)

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        # infer/resource.go diff: the engine's `version` and `__`-prefixed inputs are dropped;
        # the old inputs are the engine's (`SupportsOldInputs`), else the inputs' fields of
        # the state; the detailed diff is theirs against the new inputs.
        news = {k: v for k, v in news.items() if k != "version" and not k.startswith("__")}
        before = old_inputs if old_inputs else _inputs_of(olds)
        detailed = object_diff(before, news)
        for path, kind in list(detailed.items()):
            # Derived Diff: `forceReplace(k)` is the schema's `replaceOnChanges`, which only
            # `triggers` has (common/inputs.go, `provider:"replaceOnChanges"`); the Python SDK
            # adds `replace_on_changes=["triggers[*]"]` to every Command
            # (pulumi_command/local/command.py), which the engine applies to the detailed
            # diff: together a change anywhere in `triggers` replaces. Everything else is an
            # in-place update (the resource implements CustomUpdate).
            if head(path) == "triggers":
                detailed[path] = as_replace(kind)
        return DiffResult(detailed)

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        # commandController.go Create: the id is `resource.NewUniqueHex(name, 8, 0)`, the
        # name and 8 random hex digits.
        id_ = call.name + os.urandom(4).hex()
        state: Props = {**news, "stdout": "", "stderr": ""}
        if preview:
            # "If in preview, don't run the command." The outputs that mirror an input keep
            # its value; the others are unknown (infer/resource.go markComputed, `isCreate`).
            return id_, {**news, "stdout": UNKNOWN, "stderr": UNKNOWN}
        create = _script(news, "create")
        if create is None:
            return id_, state
        # A failing create returns the error and no resource: nothing is recorded.
        # Output that is not UTF-8: the error comes after the command ran, and no resource.
        ran = self.runner.run(call, create, news, Ran("", "")).as_outputs()
        return id_, {**news, "stdout": ran.stdout, "stderr": ran.stderr}

    def update(
        self, call: Call, id_: str, olds: Props, news: Props, old_inputs: Props, preview: bool
    ) -> Props:
        # commandController.go Update: `state := CommandOutputs{CommandInputs: news,
        # BaseOutputs: olds.BaseOutputs}`.
        previous = _previous(olds)
        state: Props = {**news, "stdout": previous.stdout, "stderr": previous.stderr}
        if preview:
            # Nothing runs. infer/resource.go markComputed (not a create): an output that is
            # not a mirrored input is unknown when an input is unknown, or differs from the
            # same-named property of the old state (`oldInputs` here is `req.State`).
            if any(
                not is_known(news.get(k)) or (k in olds and news.get(k) != olds.get(k))
                for k in INPUTS
            ):
                state["stdout"] = state["stderr"] = UNKNOWN
            return state
        # "Use Create command if Update is unspecified"; neither: nothing runs, the old
        # stdout and stderr stay.
        command = _script(news, "update") or _script(news, "create")
        if command is None:
            return state
        # Output that is not UTF-8: the error comes after the command ran, and the engine
        # keeps the old state (the next up updates again).
        ran = self.runner.run(call, command, news, previous).as_outputs()
        return {**news, "stdout": ran.stdout, "stderr": ran.stderr}

    def delete(self, call: Call, id_: str, olds: Props, old_inputs: Props) -> None:
        # commandController.go Delete: `delete` unset, nothing runs; else it runs with the
        # stored state's inputs (dir, environment, interpreter, stdin, logging) and its
        # stdout/stderr as the previous output.
        command = _script(olds, "delete")
        if command is None:
            return
        # A DeleteResponse carries no output: output that is not UTF-8 cannot fail it.
        self.runner.run(call, command, olds, _previous(olds))


RUN_TOKEN = "command:local:run"


class CommandProvider(Provider):
    def __init__(self) -> None:
        self.runner = Runner()
        super().__init__("command", "1.2.1", [Command(self.runner)])

    def invoke(self, call: Call, token: str, args: Props) -> Props:
        if token != RUN_TOKEN:
            return super().invoke(call, token, args)
        # runController.go: `r := RunOutputs{RunInputs: input}`; run(ctx, input.Command,
        # r.RunInputs.BaseInputs, &r.BaseOutputs, input.Logging).
        command = reveal(args.get("command"))
        if not isinstance(command, str):
            raise ProviderError("command: the function's required input is missing")
        ran = self.runner.run(call, command, args, Ran("", "")).as_outputs()
        return {**args, "stdout": ran.stdout, "stderr": ran.stderr}

    def cancel(self) -> None:
        self.runner.cancel()


if __name__ == "__main__":
    serve(CommandProvider())
