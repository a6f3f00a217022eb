"""Stacks for whole-program tests: the example, and larger ones built from it."""

from __future__ import annotations

import copy
from typing import Any


def sized_stack(base: dict[str, Any], controllers: int, workers: int) -> dict[str, Any]:
    """The example's settings with `controllers` + `workers` machines, all statically addressed."""
    values = copy.deepcopy(base)
    machines: dict[str, Any] = {}
    for index in range(controllers + workers):
        role = "controller" if index < controllers else "worker"
        name = f"c{index + 1}" if index < controllers else f"w{index - controllers + 1}"
        machines[name] = {
            "mac": f"52:54:00:b0:{index // 256:02x}:{index % 256:02x}",
            "role": role,
            "installDisk": "/dev/sda",
            # Hosts 10.0.0.2 onwards of one /16: room for any machine count the tests use.
            "address": f"10.0.{(index + 2) // 256}.{(index + 2) % 256}/16",
            "gateway": "10.0.0.1",
            "dns": ["10.0.0.1"],
        }
    values["machines"] = machines
    # The pool on the same /16, past every machine the tests use.
    values["cluster"]["loadBalancerPool"] = "10.0.255.200-10.0.255.250"
    values["cluster"].pop("dhcpRange", None)
    # One controller: its own address. Several: a name over all of them, since an endpoint at
    # one controller's address cannot survive that controller's reinstall.
    values["cluster"]["apiEndpoint"] = (
        "10.0.0.2:6443" if controllers == 1 else f"api.{values['cluster']['domain']}:6443"
    )
    return values
