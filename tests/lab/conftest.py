"""Fixtures for the virtual bare-metal lab (tests/lab, marker ``lab``).

The seam is :func:`lab_data_dir`: by default it runs ``stubernetes render`` on the example
stack, and the real Matchbox (v0.11.0, built by ``scripts/tools``) serves its ``DIR/matchbox``
as its ``-data-path``; with ``STUBERNETES_LAB_DATA=hand`` it writes a Matchbox data directory
of the same layout by hand.
Everything else (which machines to boot, which hostname each must end up with, which
assets to put where) is derived from the data directory itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from matchbox_grpc import start_matchbox
from node_downloads import kubernetes_release
from real_process import free_port

from . import build_lab, qemu_vm, served_binaries
from .lab_env import (
    RUNNING_MATCHBOXES,
    BootTimes,
    Lab,
    describe_boot,
    machines_in,
    skip_or_fail,
    stage_assets,
)
from .matchbox_log import MatchboxLog

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ the data seam

LAB_CLUSTER = "lab"
# Seconds a boot may take before the lab kills it. A machine downloads some 204 MB of node
# binaries through the emulated CPU (TCG): 47-83 s a boot on this project's 2-core machine,
# depending on what else runs (README.md); the timeout leaves room for a much busier one.
DEFAULT_BOOT_TIMEOUT = 240
FCOS_VERSION = "40.20240416.3.1"  # only names asset paths; no Fedora CoreOS is fetched
HAND_BUILT_MACHINES = (
    # name, MAC, role
    ("c1", "52:54:00:a1:00:01", "controller"),
    ("w1", "52:54:00:a1:00:02", "worker"),
)
LAB_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqn6pxSOWNgDqgpWyGr2xj6Ch6dGj0lFJ0VeOZnj7wY"
    " lab@stubernetes"
)


def lab_data_dir(
    dest: Path, matchbox_url: str, binaries: tuple[served_binaries.ServedBinary, ...]
) -> Path:
    """THE SEAM: write the Matchbox data directory the lab serves; return it.

    ``matchbox_url`` is the base URL the *guest* reaches the real Matchbox at
    (``http://10.0.2.2:<port>``); profile args must point there. ``binaries`` are the node
    binaries the lab serves under ``/assets/`` (served_binaries.py): every machine's Ignition
    fetches each from there with its sha256.

    By default the lab serves the project's own render of ``stacks/Pulumi.example.yaml``
    (:func:`rendered_data_dir`); ``STUBERNETES_LAB_DATA=hand`` serves a hand-built data
    dir of the same layout instead (:func:`hand_built_data_dir`), which also exercises a
    Flatcar-style boot.

    The lab needs from the data: one group per machine selecting on ``mac``; profiles
    whose kernel and initrd are Matchbox ``/assets/...`` paths or URLs (the lab puts its
    Debian kernel and initramfs there) and whose args carry ``console=ttyS0`` and the
    Ignition URL (``coreos.inst.ignition_url=`` or ``ignition.config.url=``); raw
    Ignition (``*.ign``) that Matchbox's parser accepts (spec 3.0-3.4: it re-serves it as
    3.4.0, which the guest's Ignition v2.24.0 applies), needing no network beyond the
    Matchbox URL and no ``disks``/``filesystems``; ``/etc/hostname``
    written from a ``data:`` URL (that is how the test knows which hostname each machine
    must end up with); no remote source other than the served binaries.
    """
    if os.environ.get("STUBERNETES_LAB_DATA", "render") == "hand":
        return hand_built_data_dir(dest, matchbox_url, binaries)
    return rendered_data_dir(dest, matchbox_url, binaries)


def rendered_data_dir(
    dest: Path, matchbox_url: str, binaries: tuple[served_binaries.ServedBinary, ...]
) -> Path:
    """``stubernetes render`` of the example stack, adjusted for the lab.

    The stack file is copied with the changes a real lab operator serving binaries of their own
    build would also make: Matchbox's HTTP endpoint is the fixture's; the install is cached
    (kernel, initramfs and rootfs, and the node binaries, from Matchbox ``/assets/``); the
    Kubernetes release is the one the served binaries are, and ``binarySha256`` their digests;
    and every machine's installer (its PXE boot) gets ``console=ttyS0``
    (``installerKernelArgs``; ``kernelArgs`` are the installed system's).
    """
    stack = yaml.safe_load((REPO / "stacks" / "Pulumi.example.yaml").read_text())
    config = stack["config"]
    config["stubernetes:matchbox"]["httpEndpoint"] = matchbox_url
    config["stubernetes:os"]["cachedInstall"] = True
    cluster = config["stubernetes:cluster"]
    cluster["kubernetesVersion"] = kubernetes_release()
    cluster["binarySha256"] = served_binaries.stack_digests(binaries)
    for machine in config["stubernetes:machines"].values():
        machine["installerKernelArgs"] = [*machine.get("installerKernelArgs", []), "console=ttyS0"]
    stack_file = dest / "stack" / "Pulumi.lab.yaml"
    stack_file.parent.mkdir(parents=True)
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    out = dest / "render"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "stubernetes.cli",
            "render",
            "--stack-file",
            str(stack_file),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"stubernetes render failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return out / "matchbox"


def hand_built_data_dir(
    dest: Path, matchbox_url: str, binaries: tuple[served_binaries.ServedBinary, ...]
) -> Path:
    """Two machines (c1, w1) in the layout ``stubernetes render`` writes, each fetching the
    served binaries as the rendered nodes do."""
    data = dest / "matchbox"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    assets = f"{matchbox_url}/assets/fedora-coreos"
    for name, mac, role in HAND_BUILT_MACHINES:
        ident = f"{LAB_CLUSTER}-{name}"
        profile = {
            "id": ident,
            "name": ident,
            "boot": {
                "kernel": f"/assets/fedora-coreos/fedora-coreos-{FCOS_VERSION}-live-kernel.x86_64",
                "initrd": [
                    f"--name main /assets/fedora-coreos/"
                    f"fedora-coreos-{FCOS_VERSION}-live-initramfs.x86_64.img"
                ],
                "args": [
                    "initrd=main",
                    f"coreos.live.rootfs_url={assets}/"
                    f"fedora-coreos-{FCOS_VERSION}-live-rootfs.x86_64.img",
                    "coreos.inst.install_dev=/dev/sda",
                    f"coreos.inst.ignition_url={matchbox_url}/ignition"
                    "?uuid=${uuid}&mac=${mac:hexhyp}",
                    "console=ttyS0",
                ],
            },
            "ignition_id": f"{ident}.ign",
        }
        group = {
            "id": ident,
            "name": ident,
            "profile": ident,
            "selector": {"mac": mac},
            "metadata": {"cluster": LAB_CLUSTER, "machine": name},
        }
        (data / "profiles" / f"{ident}.json").write_text(json.dumps(profile, indent=2))
        (data / "groups" / f"{ident}.json").write_text(json.dumps(group, indent=2))
        (data / "ignition" / f"{ident}.ign").write_text(
            json.dumps(_hand_built_ignition(name, role, matchbox_url, binaries), indent=2)
        )
    return data


def _hand_built_ignition(
    hostname: str,
    role: str,
    matchbox_url: str,
    binaries: tuple[served_binaries.ServedBinary, ...],
) -> dict[str, Any]:
    motd = f"stubernetes lab machine {hostname} ({role})\n".encode()
    unit = (
        "[Unit]\nDescription=stubernetes lab marker\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/bin/true\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    return {
        "ignition": {"version": "3.3.0"},
        "passwd": {
            # groupadd for the new group, useradd for core, usermod for root (exists)
            "groups": [{"name": "stubernetes", "gid": 2000}],
            "users": [
                {
                    "name": "core",
                    "groups": ["wheel", "sudo", "stubernetes"],
                    "sshAuthorizedKeys": [LAB_SSH_KEY],
                    "passwordHash": "$y$j9T$stubernetes.lab$not.a.real.hash.0123456789abcdef",
                },
                {"name": "root", "sshAuthorizedKeys": [LAB_SSH_KEY]},
            ],
        },
        "storage": {
            "directories": [{"path": "/etc/stubernetes", "mode": 493}],
            "files": [
                {
                    "path": "/etc/hostname",
                    "mode": 420,
                    "overwrite": True,
                    "contents": {"source": f"data:,{urllib.parse.quote(hostname + chr(10))}"},
                },
                {
                    "path": "/etc/stubernetes/role",
                    "mode": 384,
                    "user": {"name": "core"},
                    "group": {"name": "wheel"},
                    "contents": {"source": f"data:,{role}%0A"},
                },
                {
                    "path": "/etc/motd.d/stubernetes.motd",
                    "mode": 420,
                    "contents": {
                        "compression": "gzip",
                        "source": "data:;base64,"
                        + base64.b64encode(gzip.compress(motd, mtime=0)).decode(),
                        "verification": {"hash": "sha512-" + hashlib.sha512(motd).hexdigest()},
                    },
                },
                *(
                    {
                        "path": f"/opt/stubernetes-lab/{b.asset.rpartition('/')[2]}",
                        "mode": 493,
                        "contents": {
                            "source": b.url(matchbox_url),
                            "verification": {"hash": f"sha256-{b.sha256}"},
                        },
                    }
                    for b in binaries
                ),
            ],
            "links": [{"path": "/etc/localtime", "target": "../usr/share/zoneinfo/UTC"}],
        },
        "systemd": {
            "units": [{"name": "stubernetes-lab.service", "enabled": True, "contents": unit}]
        },
    }


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def lab_tools() -> None:
    if qemu_vm.qemu_binary() is None:
        skip_or_fail("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    if qemu_vm.ipxe_rom() is None:
        skip_or_fail("iPXE ROM efi-virtio.rom not found (apt-get install ipxe-qemu)")


@pytest.fixture(scope="session")
def lab_build(lab_tools: None, boot_times: BootTimes) -> build_lab.LabBuild:
    # boot_times first, so the lab total includes the build
    return build_lab.build(log=lambda m: print(m, flush=True))


_BOOT_TIMES: list[BootTimes] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in RUNNING_MATCHBOXES:
            report.sections.append((f"{server.process.name} log", server.log_tail(80)))
    return report


@pytest.fixture(scope="session")
def boot_times(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootTimes]:
    times = BootTimes(tmp_path_factory.getbasetemp() / "lab-boot-times.json")
    _BOOT_TIMES.append(times)
    yield times
    times.write()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if location[0].startswith("tests/lab/"):
        for times in _BOOT_TIMES:
            times.finished = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for times in _BOOT_TIMES:
        times.write()
        terminalreporter.section("virtual bare-metal lab")
        for e in times.entries:
            terminalreporter.write_line(f"boot {describe_boot(e)}")
        if times.node:
            reached = ", ".join(f"{k} {v:.0f}s" for k, v in times.node.items())
            terminalreporter.write_line(f"real node: {reached}")
        terminalreporter.write_line(
            f"lab total (build, boots, checks): {times.lab_seconds:.1f}s; written to {times.path}"
        )


@pytest.fixture(scope="session")
def lab(
    lab_build: build_lab.LabBuild, boot_times: BootTimes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    assets_dir = root / "assets"
    assets_dir.mkdir()
    served = root / "render"
    served.mkdir()
    # The data must name Matchbox's port: choose the port, write the data, then start the
    # real Matchbox on it (127.0.0.1, which QEMU's user network shows the guests as 10.0.2.2).
    port = free_port()
    matchbox_url = f"http://{qemu_vm.HOST_FROM_GUEST}:{port}"
    binaries = served_binaries.served_binaries(root / "built")
    data_dir = lab_data_dir(served, matchbox_url, binaries)
    placeholders = stage_assets(data_dir, assets_dir, lab_build, matchbox_url)
    served_binaries.place(binaries, assets_dir)
    machines = machines_in(data_dir)
    assert machines, f"no group with a mac selector in {data_dir}"
    server = start_matchbox(data_dir, assets_dir, root, http_port=port, name="matchbox-lab")
    RUNNING_MATCHBOXES.append(server)
    try:
        yield Lab(
            lab_build,
            server,
            MatchboxLog(server.process.log),
            data_dir,
            assets_dir,
            matchbox_url,
            machines,
            placeholders,
            binaries,
            root / "vms",
            boot_times,
            float(os.environ.get("STUBERNETES_LAB_BOOT_TIMEOUT", str(DEFAULT_BOOT_TIMEOUT))),
        )
    finally:
        server.stop()
        RUNNING_MATCHBOXES.remove(server)
