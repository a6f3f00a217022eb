"""One real node guest: a QEMU machine with a persistent disk, on the node LAN's tap device.

Unlike the install boots of `qemu_vm.boot` (user network, powers off after Ignition), the node
runs until the test stops it: its firmware boots from the network at every start (`-boot
order=n`), as a rack machine set to PXE first does, so every boot, the first and each reboot,
goes SeaBIOS -> iPXE -> DHCP -> the real Matchbox -> the lab kernel and initramfs; the
initramfs finds the disk (tests/lab/guest/init, node mode) and hands it to the disk's systemd.
A reboot is QEMU's `system_reset` over QMP (qemu.org docs, "QEMU QMP Reference Manual"): the
machine's reset line, as a power cut and power-on would be, not a clean shutdown; the disk keeps
what reached it (the guest's page cache is lost, as it is at a power cut).

The serial port is a file the host reads: the initramfs' `@@LAB` lines, then the journal that
the disk's journald forwards to ttyS0 (tests/lab/node_rootfs.py).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import qemu_vm

# The node's RAM: systemd, NetworkManager, containerd and the kubelet, and /tmp.
NODE_MEMORY_MB = 2048
# Two vCPUs: TCG runs one host thread per vCPU (multi-threaded TCG, QEMU docs "Multi-threaded
# TCG"), and the kubelet and containerd start many goroutines.
NODE_CPUS = 2
NODE_DISK_SIZE = "8G"


@dataclass
class NodeVm:
    name: str
    mac: str
    disk: Path
    serial_log: Path
    qmp_socket: Path
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    resets: list[float] = field(default_factory=list)
    started: float = 0.0

    def console(self) -> str:
        try:
            return qemu_vm._ANSI.sub("", self.serial_log.read_text(errors="replace"))
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the serial log from character `after` on, waiting up
        to `timeout` seconds; fails with the log's end when it does not come."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = compiled.search(self.console(), after)
            if found:
                return found
            if not self.alive():
                raise AssertionError(f"{self.name} exited waiting for {pattern!r}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: no {pattern!r} within {timeout:.0f}s\n{self.tail()}"
                )
            time.sleep(0.5)

    def tail(self, lines: int = 120) -> str:
        shown = "\n".join(self.console().splitlines()[-lines:])
        return f"--- {self.serial_log} (last {lines} lines) ---\n{shown}\n--- end ---"

    def qmp(self, command: str) -> dict[str, object]:
        """One QMP command: the greeting, capabilities negotiation, then `command`."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_socket))
            reader = sock.makefile("r")
            json.loads(reader.readline())  # the greeting
            for execute in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": execute}).encode() + b"\n")
                while True:
                    answer = json.loads(reader.readline())
                    if "return" in answer or "error" in answer:
                        break  # events ("event": ...) may come before the answer
                if "error" in answer:
                    raise RuntimeError(f"QMP {execute}: {answer['error']}")
            result: dict[str, object] = answer
            return result

    def reset(self) -> None:
        """The machine's reset line (a power cut and power-on)."""
        self.resets.append(time.monotonic())
        self.qmp("system_reset")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.qmp("quit")
            self.process.wait(timeout=20)
        except (OSError, RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
            self.process.kill()
            self.process.wait()


def create_disk(base_image: Path, disk: Path) -> None:
    """A copy-on-write disk over the cached root file system image, so that the cache stays
    pristine and each test's node starts from a never-booted disk."""
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            str(base_image),
            str(disk),
            NODE_DISK_SIZE,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def node_command(
    name: str, mac: str, uuid: str, tap: str, disk: Path, serial_log: Path, qmp: Path
) -> list[str]:
    qemu = qemu_vm.qemu_binary()
    if qemu is None:
        raise RuntimeError("qemu-system-x86_64 not found (Debian package qemu-system-x86)")
    return [
        qemu,
        "-accel",
        "tcg",
        "-machine",
        "pc,graphics=off",
        "-cpu",
        qemu_vm.CPU_MODEL,
        "-smp",
        str(NODE_CPUS),
        "-m",
        str(NODE_MEMORY_MB),
        "-uuid",
        uuid,
        "-display",
        "none",
        "-vga",
        "none",
        "-monitor",
        "none",
        "-qmp",
        f"unix:{qmp},server=on,wait=off",
        "-serial",
        f"file:{serial_log}",
        "-netdev",
        f"tap,id=lan,ifname={tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=lan,mac={mac}",
        "-drive",
        f"file={disk},if=virtio,format=qcow2",
        "-boot",
        "order=n",
    ]


def start_node(
    name: str,
    mac: str,
    uuid: str,
    tap: str,
    base_image: Path,
    workdir: Path,
    wrap: Sequence[str],
) -> NodeVm:
    """Start the node (QEMU inside the LAN's namespace: `wrap` is the `nsenter` prefix)."""
    workdir.mkdir(parents=True, exist_ok=True)
    disk = workdir / f"{name}.qcow2"
    create_disk(base_image, disk)
    serial_log = workdir / f"{name}.serial.log"
    qmp = workdir / f"{name}.qmp"
    command = [*wrap, *node_command(name, mac, uuid, tap, disk, serial_log, qmp)]
    vm = NodeVm(name, mac, disk, serial_log, qmp, command)
    log = (workdir / f"{name}.qemu.log").open("wb")
    vm.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    vm.started = time.monotonic()
    deadline = time.monotonic() + 20
    while not qmp.exists():
        if vm.process.poll() is not None or time.monotonic() > deadline:
            vm.stop()
            raise RuntimeError(f"QEMU did not start: {(workdir / f'{name}.qemu.log').read_text()}")
        time.sleep(0.1)
    return vm
