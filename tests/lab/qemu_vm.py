"""Boot one virtual machine through firmware PXE -> iPXE -> a Matchbox HTTP endpoint.

Each machine is a ``qemu-system-x86_64 -accel tcg`` guest (SeaBIOS, the virtio-net iPXE
option ROM from Debian's ``ipxe-qemu``) with one ``virtio-net-pci`` NIC on QEMU's user
network. QEMU's built-in DHCP server hands out ``bootfile=<url of /boot.ipxe>``; iPXE
fetches it over HTTP and the chain continues at Matchbox. The guest reaches the host's
loopback as 10.0.2.2.

SeaBIOS prints option-ROM output (iPXE) on the serial port when QEMU runs with
``-machine graphics=off``, so the serial log holds iPXE's messages as well as the
guest's. ``-no-reboot`` plus SeaBIOS' ``reboot-timeout`` make a machine that has
nothing to boot exit on its own instead of retrying forever.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST_FROM_GUEST = "10.0.2.2"
# The guest's RAM. Its root is the initramfs unpacked into a tmpfs (the kernel makes rootfs a
# tmpfs when no root= is given, init/do_mounts.c), which may fill half the RAM (tmpfs' default
# size, Documentation/filesystems/tmpfs.rst); /sysroot lies in it. It holds the lab's initramfs
# (some 70 MB unpacked) and the node binaries Ignition writes to /sysroot (kubeadm, kubectl and
# the kubelet as scripts/tools builds them, stripped as Kubernetes' release builds are, and the
# CNI plugins' archive: some 204 MB). 1.5 GiB leaves room for both and for Ignition; QEMU
# allocates it as the guest touches it.
GUEST_MEMORY_MB = 1536
# The guest's CPU model: QEMU's baseline x86-64 (no AVX), not `max`. Under TCG every guest
# instruction is translated, and the guests spend most of their time hashing (Ignition checks the
# sha256 of some 204 MB of node binaries as it downloads them, the tree digest hashes them
# again). Offered AVX2 and BMI2, Go's sha256 takes its AVX2 code (Go 1.26
# crypto/internal/fips140/sha256/sha256block_amd64.go useAVX2), and other code its AVX paths;
# TCG runs the scalar code they take without them faster. On this project's 2-core machine, with
# other tests beside it, a machine's boot took 66-69 s with qemu64 against 95-107 s with max
# (two runs each, alternating).
CPU_MODEL = "qemu64"
REPORT_PREFIX = "@@LAB "
_ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")

# Where Debian's qemu-system-x86 looks for the virtio-net iPXE ROM (it links to the
# copy shipped by ipxe-qemu).
IPXE_ROM_CANDIDATES = (
    "/usr/lib/ipxe/qemu/efi-virtio.rom",
    "/usr/share/qemu/efi-virtio.rom",
)


def qemu_binary() -> str | None:
    return shutil.which("qemu-system-x86_64")


def ipxe_rom() -> str | None:
    for path in IPXE_ROM_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


@dataclass
class Machine:
    name: str
    mac: str
    uuid: str
    serial: str = ""
    hostname: str = ""  # what QEMU's DHCP server tells the client (option 12)
    domain: str = ""  # DHCP option 15


@dataclass
class BootResult:
    machine: Machine
    exit_code: int | None  # None: killed at the deadline
    timed_out: bool
    seconds: float
    serial_log: Path
    command: list[str]
    report: dict[str, list[str]] = field(default_factory=dict)

    @property
    def console(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except OSError:
            return ""

    def first(self, key: str) -> str | None:
        values = self.report.get(key)
        return values[0] if values else None

    def describe(self, tail: int = 200) -> str:
        lines = _ANSI.sub("", self.console).splitlines()
        shown = "\n".join(lines[-tail:])
        return (
            f"machine {self.machine.name} ({self.machine.mac}): exit={self.exit_code} "
            f"timed_out={self.timed_out} after {self.seconds:.1f}s\n"
            f"command: {' '.join(self.command)}\n"
            f"--- serial log {self.serial_log} (last {tail} lines) ---\n{shown}\n--- end ---"
        )


def parse_report(console: str) -> dict[str, list[str]]:
    """Collect the guest's ``@@LAB <key> <value>`` lines: key -> values in order."""
    report: dict[str, list[str]] = {}
    for raw in console.splitlines():
        line = raw.rstrip("\r")
        idx = line.find(REPORT_PREFIX)
        if idx < 0:
            continue
        body = line[idx + len(REPORT_PREFIX) :]
        key, _, value = body.partition(" ")
        report.setdefault(key, []).append(value)
    return report


def machine_args(uuid: str, memory_mb: int, cpus: int = 1) -> list[str]:
    """QEMU and the machine every lab guest is: a PC under TCG with the baseline CPU model, no
    display, its SMBIOS UUID (iPXE's ${uuid}); the caller adds its disks, NICs, serial port
    and boot order."""
    qemu = qemu_binary()
    if qemu is None:
        raise RuntimeError("qemu-system-x86_64 not found (Debian package qemu-system-x86)")
    return [
        qemu,
        "-accel",
        "tcg",
        "-machine",
        "pc,graphics=off",
        "-cpu",
        CPU_MODEL,
        "-smp",
        str(cpus),
        "-m",
        str(memory_mb),
        "-uuid",
        uuid,
        "-display",
        "none",
        "-vga",
        "none",
    ]


def qemu_command(
    machine: Machine, boot_url: str, serial_log: Path, memory_mb: int = GUEST_MEMORY_MB
) -> list[str]:
    nic = [
        "user",
        "model=virtio-net-pci",
        f"mac={machine.mac}",
        f"bootfile={boot_url}",
    ]
    if machine.hostname:
        nic.append(f"hostname={machine.hostname}")
    if machine.domain:
        nic.append(f"domainname={machine.domain}")
    cmd = [
        *machine_args(machine.uuid, memory_mb),
        "-monitor",
        "none",
        "-serial",
        f"file:{serial_log}",
        "-nic",
        ",".join(nic),
        "-boot",
        "order=n,reboot-timeout=1000",
        "-no-reboot",
    ]
    if machine.serial:
        cmd += ["-smbios", f"type=1,serial={machine.serial}"]
    return cmd


def boot(
    machine: Machine,
    boot_url: str,
    workdir: Path,
    timeout: float = 90.0,
    memory_mb: int = GUEST_MEMORY_MB,
) -> BootResult:
    """Run one machine until it powers off (QEMU exits) or ``timeout`` seconds pass."""
    workdir.mkdir(parents=True, exist_ok=True)
    serial_log = workdir / f"{machine.name}.serial.log"
    serial_log.unlink(missing_ok=True)
    cmd = qemu_command(machine, boot_url, serial_log, memory_mb)
    start = time.monotonic()
    with open(workdir / f"{machine.name}.qemu.log", "wb") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog)
        timed_out = False
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
            code = None
    elapsed = time.monotonic() - start
    result = BootResult(machine, code, timed_out, elapsed, serial_log, cmd)
    result.report = parse_report(result.console)
    return result
