"""A Flatcar machine's reboot into a staged OS update (ignition/files/flatcar/
stubernetes-os-reboot): the real script, with the host's real systemd-id128 and curl, against a
FleetLock server.

The server is a stand-in: poseidon/fleetlock, which the stubernetes-core chart runs, is not served
by the Go module proxy (403 at 2026-12-07), and its image cannot run here. It models that
server's protocol handling alone, from its source (poseidon/fleetlock internal/server.go: routes
/v1/pre-reboot and /v1/steady-state, lock and unlock on one lease per group; internal/handlers.go:
POST and the header `fleet-lock-protocol: true` required; internal/reply.go: 405, 400, 423 for a
lease held by another); its draining of the node is not modelled. Its client ids are computed as
that server computes a Node's (internal/nodes.go ZincatiID: HMAC-SHA256 keyed with the machine id
over Zincati's application id, UUID v4 bits), so the test checks that the script's id, from
systemd-id128, is the one the server would match to this machine's Node.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ignition.assets import read_asset

ZINCATI_APP_ID = "de35106b6ec24688b63afddaa156679b"
MACHINE_ID = Path("/etc/machine-id")

pytestmark = pytest.mark.skipif(
    not MACHINE_ID.exists(), reason="needs this host's systemd machine id (/etc/machine-id)"
)


def zincati_id(machine_id: str) -> str:
    """poseidon/fleetlock internal/nodes.go appSpecificID."""
    mac = hmac.new(bytes.fromhex(machine_id), bytes.fromhex(ZINCATI_APP_ID), hashlib.sha256)
    digest = bytearray(mac.digest())
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest[:16]).hex()


@dataclass
class FleetLock:
    holders: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, header: str | None, body: bytes) -> int:
        if path not in ("/v1/pre-reboot", "/v1/steady-state"):
            return 404
        if method != "POST":
            return 405
        if header != "true":
            return 400
        try:
            params = json.loads(body)["client_params"]
            client, group = params["id"], params["group"]
        except (ValueError, KeyError, TypeError):
            return 400
        holder = self.holders.get(group, "")
        if path == "/v1/pre-reboot":
            if holder in ("", client):
                self.holders[group] = client
                return 200
            return 423
        if holder == client:
            self.holders[group] = ""
        return 200


@pytest.fixture
def fleetlock() -> Iterator[FleetLock]:
    lock = FleetLock()

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            code = lock.answer(
                self.command, self.path, self.headers.get("fleet-lock-protocol"), body
            )
            lock.requests.append((self.path, code, json.loads(body) if body else {}))
            self.send_response(code)
            self.end_headers()

        do_POST = do_GET = handle_any

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    lock.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield lock
    server.shutdown()
    thread.join()


@dataclass(frozen=True)
class Machine:
    script: Path
    env: dict[str, str]
    calls: Path


@pytest.fixture
def machine(tmp_path: Path, fleetlock: FleetLock) -> Machine:
    script = tmp_path / "stubernetes-os-reboot"
    script.write_text(read_asset("flatcar/stubernetes-os-reboot"))
    script.chmod(0o755)
    settings = tmp_path / "fleetlock.env"
    settings.write_text(
        f"FLEETLOCK_URL={fleetlock.url}\nFLEETLOCK_GROUP=default\nFLEETLOCK_RETRY_SECONDS=0.2\n"
    )
    # systemctl records what it was asked; everything else is the host's own.
    bin_dir, calls = tmp_path / "bin", tmp_path / "systemctl.calls"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "FLEETLOCK_ENV": str(settings), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return Machine(script, env, calls)


def run(machine: Machine, mode: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(machine.script), mode],
        env=machine.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def this_machines_id() -> str:
    return zincati_id(MACHINE_ID.read_text().strip())


def test_a_free_lock_is_taken_and_then_the_machine_reboots(
    machine: Machine, fleetlock: FleetLock
) -> None:
    done = run(machine, "reboot")
    assert done.returncode == 0, done.stderr
    assert machine.calls.read_text().splitlines() == ["reboot"]
    assert fleetlock.holders == {"default": this_machines_id()}
    [(path, code, body)] = fleetlock.requests
    assert (path, code) == ("/v1/pre-reboot", 200)
    assert body == {"client_params": {"id": this_machines_id(), "group": "default"}}


def test_a_lock_held_by_another_machine_is_waited_for(
    machine: Machine, fleetlock: FleetLock
) -> None:
    fleetlock.holders["default"] = "another-machine"
    process = subprocess.Popen(
        [str(machine.script), "reboot"],
        env=machine.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = 100
        while sum(1 for r in fleetlock.requests if r[1] == 423) < 3 and deadline:
            threading.Event().wait(0.1)
            deadline -= 1
        # Still waiting, not rebooted, while the other machine holds the lock.
        assert process.poll() is None
        assert not machine.calls.exists()
        fleetlock.holders["default"] = ""  # the other machine reported its steady state
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert machine.calls.read_text().splitlines() == ["reboot"]
    assert "no reboot lock yet" in stderr
    assert [r[1] for r in fleetlock.requests][-1] == 200


def test_steady_state_gives_the_lock_back(machine: Machine, fleetlock: FleetLock) -> None:
    fleetlock.holders["default"] = this_machines_id()
    done = run(machine, "steady-state")
    assert done.returncode == 0, done.stderr
    assert fleetlock.holders == {"default": ""}
    assert not machine.calls.exists()


def test_an_unreachable_server_fails_steady_state_for_its_unit_to_retry(
    machine: Machine,
) -> None:
    # Port 9 (discard): nothing listens there.
    Path(machine.env["FLEETLOCK_ENV"]).write_text(
        "FLEETLOCK_URL=http://127.0.0.1:9/\nFLEETLOCK_GROUP=default\nFLEETLOCK_RETRY_SECONDS=0.2\n"
    )
    done = run(machine, "steady-state")
    assert done.returncode != 0
    assert "the lock server answered 000" in done.stderr


def test_the_stand_in_refuses_as_fleetlock_does(fleetlock: FleetLock) -> None:
    body = json.dumps({"client_params": {"id": "x", "group": "default"}}).encode()
    assert fleetlock.answer("GET", "/v1/pre-reboot", "true", body) == 405
    assert fleetlock.answer("POST", "/v1/pre-reboot", None, body) == 400
    assert fleetlock.answer("POST", "/v1/pre-reboot", "true", b"{}") == 400
    assert fleetlock.answer("POST", "/v1/pre-reboot", "true", body) == 200
    other = json.dumps({"client_params": {"id": "y", "group": "default"}}).encode()
    assert fleetlock.answer("POST", "/v1/pre-reboot", "true", other) == 423
    # Unlocking by another confirms steady state and leaves the holder (server.go unlock).
    assert fleetlock.answer("POST", "/v1/steady-state", "true", other) == 200
    assert fleetlock.holders["default"] == "x"
