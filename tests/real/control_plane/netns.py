"""A private network namespace whose loopback device carries the machines' addresses.

kubeadm never takes a loopback advertise address: it replaces a 127/8 (or unspecified)
address with the address of the host's default route (kubernetes
`cmd/kubeadm/app/util/config/common.go` ChooseAPIServerBindAddress ->
k8s.io/apimachinery `pkg/util/net/interface.go` ResolveBindAddress), and inside its chroot,
without /proc/net/route, it fails ("unable to select an IP from lo network interface"). So the
control plane runs in a network namespace of its own (util-linux `unshare --net`, entered with
`nsenter --net`): its only device is its loopback, which carries the stack's own addresses
(the init controller's, the API endpoint's). Every address and port kubeadm writes then works
unchanged, every port is free by construction, and nothing is reachable from outside or
touches the host's network. The namespace lives as long as its holder process.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from real_process import RealProcess


@dataclass
class NetworkNamespace:
    holder: RealProcess

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.process.pid}/ns/net"

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (the mount namespace stays the host's)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def run(self, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.wrap(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def port_open(self, host: str, port: int) -> bool:
        probe = f"exec 3<>/dev/tcp/{host}/{port}"
        return self.run(["bash", "-c", probe], timeout=10).returncode == 0

    def stop(self) -> None:
        self.holder.stop()


def start_network_namespace(addresses: Iterable[str], logs: Path) -> NetworkNamespace:
    """A new network namespace, its loopback up with each address (/32) added to it."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "netns-holder.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["unshare", "--net", "sleep", "infinity"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    holder = RealProcess("netns-holder", process, log)
    host = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + 10
    # Until unshare(2) has run, the holder is still in the host's namespace.
    while os.readlink(f"/proc/{process.pid}/ns/net") == host:
        if not holder.alive() or time.monotonic() > deadline:
            holder.stop()
            raise RuntimeError(f"no network namespace of its own\n{holder.log_tail()}")
        time.sleep(0.05)
    namespace = NetworkNamespace(holder)
    try:
        commands = [["ip", "link", "set", "lo", "up"]]
        commands += [
            ["ip", "address", "add", f"{a}/32", "dev", "lo"] for a in sorted(set(addresses))
        ]
        for command in commands:
            done = namespace.run(command)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)}: {done.stderr}")
    except BaseException:
        namespace.stop()
        raise
    return namespace
