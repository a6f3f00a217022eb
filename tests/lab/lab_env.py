"""Helpers of the virtual bare-metal lab shared by conftest.py and the tests.

Kept out of conftest.py so tests can import them by name (pytest may load several
modules called ``conftest``).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from matchbox_grpc import Matchbox

from . import build_lab, qemu_vm
from .matchbox_log import MatchboxLog
from .served_binaries import ServedBinary

# Every real Matchbox a lab test runs, so that a failing test shows the end of their logs
# (conftest.py pytest_runtest_makereport).
RUNNING_MATCHBOXES: list[Matchbox] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip, unless running in CI (``CI`` set, e.g. ``CI=true``): there a missing lab
    prerequisite is a failure, so the lab cannot silently stop running."""
    if in_ci():
        pytest.fail(f"lab cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class LabMachine:
    name: str  # group id
    mac: str  # normalised, lowercase colons
    uuid: str
    profile: dict[str, Any]
    ignition_file: Path
    expected_hostname: str | None

    @property
    def mac_hexhyp(self) -> str:
        return self.mac.replace(":", "-")

    def vm(self) -> qemu_vm.Machine:
        return qemu_vm.Machine(
            name=self.name,
            mac=self.mac,
            uuid=self.uuid,
            serial=f"SN-{self.name}",
            hostname=self.name,
            domain="lab.internal",
        )


def _hostname_from_ignition(doc: dict[str, Any]) -> str | None:
    for f in (doc.get("storage") or {}).get("files") or []:
        if f.get("path") == "/etc/hostname":
            src = (f.get("contents") or {}).get("source", "")
            if src.startswith("data:"):
                meta, _, payload = src[5:].partition(",")
                raw = (
                    base64.b64decode(payload)
                    if meta.endswith(";base64")
                    else urllib.parse.unquote_to_bytes(payload)
                )
                if (f.get("contents") or {}).get("compression") == "gzip":
                    raw = gzip.decompress(raw)
                return raw.decode().splitlines()[0] if raw else ""
    return None


_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")


def normal_mac(value: str) -> str:
    """A six-octet MAC with ``:`` or ``-`` separators in lower-case colon form, as Matchbox
    stores a group's ``mac`` selector (Go's net.ParseMAC and HardwareAddr.String,
    poseidon/matchbox ``matchbox/storage/storagepb/group.go`` Normalize)."""
    lowered = value.lower()
    if not _MAC.fullmatch(lowered):
        raise ValueError(f"the lab boots machines with six-octet MACs only, not {value!r}")
    return lowered.replace("-", ":")


def machines_in(data_dir: Path) -> list[LabMachine]:
    """One machine per group with a ``mac`` selector, in group-id order."""
    machines = []
    for path in sorted((data_dir / "groups").glob("*.json")):
        group = json.loads(path.read_text())
        selector = group.get("selector") or {}
        mac = next((v for k, v in selector.items() if k.lower() == "mac"), None)
        if mac is None:
            continue
        group_id = str(group["id"])
        profile = json.loads((data_dir / "profiles" / f"{group['profile']}.json").read_text())
        ign = data_dir / "ignition" / str(profile.get("ignition_id", ""))
        hostname = _hostname_from_ignition(json.loads(ign.read_text())) if ign.is_file() else None
        machines.append(
            LabMachine(
                name=group_id,
                mac=normal_mac(mac),
                uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"stubernetes-lab:{group_id}")),
                profile=profile,
                ignition_file=ign,
                expected_hostname=hostname,
            )
        )
    return machines


def _asset_rel(ref: str, matchbox_url: str) -> str:
    for prefix in (f"{matchbox_url}/assets/", "/assets/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    raise AssertionError(
        f"the lab serves kernel/initrd/rootfs from Matchbox /assets/ only, got {ref!r}"
    )


def stage_assets(
    data_dir: Path, assets_dir: Path, lab: build_lab.LabBuild, matchbox_url: str
) -> dict[str, bytes]:
    """Put the lab kernel/initramfs where the profiles look for them.

    Returns the placeholder contents written for ``coreos.live.rootfs_url`` assets
    (asset path -> bytes) so tests can check the guest fetched them.
    """
    placeholders: dict[str, bytes] = {}

    def place(rel: str, source: Path | None, content: bytes | None = None) -> None:
        target = assets_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        if source is not None:
            target.symlink_to(source)
        else:
            target.write_bytes(content or b"")

    for path in sorted((data_dir / "profiles").glob("*.json")):
        boot = json.loads(path.read_text()).get("boot") or {}
        place(_asset_rel(str(boot["kernel"]), matchbox_url), lab.kernel)
        for initrd in boot.get("initrd") or []:
            ref = [t for t in str(initrd).split() if not t.startswith("--")][-1]
            place(_asset_rel(ref, matchbox_url), lab.initramfs)
        for arg in boot.get("args") or []:
            if arg.startswith("coreos.live.rootfs_url="):
                rel = _asset_rel(arg.split("=", 1)[1], matchbox_url)
                content = f"stubernetes lab placeholder for {rel}\n".encode()
                place(rel, None, content)
                placeholders[rel] = content
    return placeholders


# The guest's phases, each ending at one of its `@@LAB uptime` stamps (guest/init): the
# kernel's start (and init's), DHCP, Ignition's fetch and files stages (the downloads), the
# tree digest.
GUEST_PHASES = (
    ("kernel", "begin"),
    ("network", "network"),
    ("ignition", "ignition"),
    ("digest", "digest"),
)


def guest_phases(result: qemu_vm.BootResult) -> dict[str, float]:
    """Seconds the guest spent until its init began, in DHCP, in Ignition (fetch and files
    stages: the downloads) and on the tree digest, from its uptime stamps."""
    stamps: dict[str, float] = {}
    for value in result.report.get("uptime", []):
        name, _, seconds = value.partition(" ")
        stamps[name] = float(seconds)
    phases = {}
    previous = 0.0
    for phase, stamp in GUEST_PHASES:
        if stamp not in stamps:
            break
        phases[phase] = round(stamps[stamp] - previous, 2)
        previous = stamps[stamp]
    return phases


def describe_boot(entry: dict[str, Any]) -> str:
    guest = " ".join(f"{k}={v:.1f}s" for k, v in entry["guest"].items())
    return (
        f"{entry['machine']:<16} {entry['mac']}  {entry['seconds']:6.1f}s  "
        f"exit={entry['exit_code']} timed_out={entry['timed_out']}"
        + (f"  (guest: {guest})" if guest else "")
    )


@dataclass
class BootTimes:
    path: Path
    started: float = field(default_factory=time.monotonic)
    # When the last lab test ended: other tests may run after the lab in the same session.
    finished: float | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    # The real node guest's milestones (tests/lab/test_lab_node.py): seconds since its first
    # power-on, or since a power cut, by what was reached.
    node: dict[str, float] = field(default_factory=dict)

    @property
    def lab_seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def add(self, result: qemu_vm.BootResult) -> None:
        entry = {
            "machine": result.machine.name,
            "mac": result.machine.mac,
            "seconds": round(result.seconds, 2),
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "guest": guest_phases(result),
        }
        self.entries.append(entry)
        print(f"lab boot {describe_boot(entry)}", flush=True)
        self.write()

    def write(self) -> None:
        self.path.write_text(
            json.dumps(
                {
                    "boots": self.entries,
                    "node": {k: round(v, 1) for k, v in self.node.items()},
                    "lab_seconds": round(self.lab_seconds, 2),
                },
                indent=2,
            )
        )


@dataclass
class Lab:
    build: build_lab.LabBuild
    server: Matchbox  # the real one, on 127.0.0.1 (the guests reach it as 10.0.2.2)
    log: MatchboxLog
    data_dir: Path
    assets_dir: Path
    matchbox_url: str  # as the guest sees it
    machines: list[LabMachine]
    rootfs_placeholders: dict[str, bytes]
    binaries: tuple[ServedBinary, ...]  # the node binaries Matchbox serves under /assets/
    workdir: Path
    boot_times: BootTimes
    boot_timeout: float

    @property
    def boot_url(self) -> str:
        return f"{self.matchbox_url}/boot.ipxe"
