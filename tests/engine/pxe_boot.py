"""A machine's ``pxeCommand`` in the lab: ``python3 tests/engine/pxe_boot.py $name $mac``.

What a smart plug or a BMC does for a real machine: it makes the machine network-boot once,
and returns. The lab (tests/engine/lab.py, at the Unix socket ``$STUBERNETES_LAB_SOCKET``)
fetches the machine's iPXE script and Ignition from Matchbox's HTTP API by MAC at once and
installs the machine in the background. Each line the lab answers is printed, so it reaches
``pulumi up``'s output through the network-boot step; a refused boot exits 1.

Standard library only: the install step runs it with whatever ``python3`` the operator has.
"""

from __future__ import annotations

import json
import os
import socket
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: pxe_boot.py NAME MAC", file=sys.stderr)
        return 2
    name, mac = argv
    path = os.environ.get("STUBERNETES_LAB_SOCKET")
    if not path:
        print(f"{name}: STUBERNETES_LAB_SOCKET is not set: no lab to boot in", file=sys.stderr)
        return 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(120)
        connection.connect(path)
        request = {"op": "boot", "machine": name, "mac": mac}
        connection.sendall(json.dumps(request).encode() + b"\n")
        with connection.makefile("rb") as answers:
            for raw in answers:
                message = json.loads(raw)
                if "line" in message:
                    print(message["line"], flush=True)
                    continue
                if not message.get("ok"):
                    print(
                        f"{name}: the network boot failed: {message.get('error')}", file=sys.stderr
                    )
                    return 1
                return 0
    print(f"{name}: the lab did not answer", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
