"""One real node guest: a QEMU machine with a persistent disk, on the node LAN's tap device.

Unlike the install boots of `qemu_vm.boot` (user network, powers off after Ignition), the node
runs until the test stops it: its firmware boots from the network at every start (`-boot
order=n`), as a rack machine set to PXE first does, so every boot, the first and each reboot,
goes SeaBIOS -> iPXE -> DHCP -> the real Matchbox -> the lab kernel and initramfs; the
initramfs finds the disk (tests/lab/guest/init, node mode) and hands it to the disk's systemd.

A power cut is the QEMU process killed (SIGKILL), and power-on a new QEMU process on the same
disk: what the guest had not flushed is lost, as on a machine whose power fails, since QEMU
writes to the image file what the guest writes and makes it durable when the guest flushes
(a write-back cache, `cache=writeback`, QEMU's default: qemu.org docs, "QEMU block drivers"
and `-drive cache=`). QMP's `system_reset` was tried first: after a reset while the kubelet ran,
the kernel of the next boot hung early with soft lockups on both vCPUs under TCG, so the lab
turns the power off and on instead of pressing reset.

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
    power_cuts: list[float] = field(default_factory=list)

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

    def power_on(self) -> None:
        """Start the machine (again): a new QEMU process on the same disk; the serial log goes
        on in the same file."""
        assert not self.alive(), f"{self.name} is running"
        if self.qmp_socket.exists():
            self.qmp_socket.unlink()
        with self.serial_log.with_suffix(".qemu.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while not self.qmp_socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"QEMU did not start: {self.command}")
            time.sleep(0.1)

    def power_cut(self) -> None:
        """The power fails: QEMU is killed, nothing in the guest gets a word."""
        assert self.process is not None
        self.power_cuts.append(time.monotonic())
        self.process.kill()
        self.process.wait()

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
    mac: str, uuid: str, tap: str, disk: Path, serial_log: Path, qmp: Path
) -> list[str]:
    return [
        *qemu_vm.machine_args(uuid, NODE_MEMORY_MB, NODE_CPUS),
        "-monitor",
        "none",
        "-qmp",
        f"unix:{qmp},server=on,wait=off",
        "-chardev",
        f"file,id=serial0,path={serial_log},append=on",
        "-serial",
        "chardev:serial0",
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
    command = [*wrap, *node_command(mac, uuid, tap, disk, serial_log, qmp)]
    vm = NodeVm(name, mac, disk, serial_log, qmp, command)
    vm.power_on()
    return vm
