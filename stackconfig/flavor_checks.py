"""Checks of a whole stack against its `os.flavor`: what the flavor's boot sets itself."""

from __future__ import annotations

from stackconfig.model import StackConfig
from stackconfig.problems import Problem, machine_where

# What a Flatcar install profile sets itself (ignition/flatcar_install.py), and the older name
# of its Ignition URL, which Flatcar's Ignition also reads (flatcar/flatcar-website
# migrating-from-coreos.md: "we also do this via the analogous flatcar.config.url option").
FLATCAR_PXE_SET_ARGS = ("initrd", "flatcar.first_boot", "ignition.config.url", "flatcar.config.url")


def flavor_problems(stack: StackConfig) -> list[Problem]:
    """The machines' fields that clash with what the flavor's boot sets itself."""
    if not stack.os.is_flatcar:
        return []
    problems = []
    for machine in stack.machines:
        for index, arg in enumerate(machine.installer_kernel_args):
            key = arg.partition("=")[0]
            if key in FLATCAR_PXE_SET_ARGS:
                problems.append(
                    Problem(
                        machine_where(machine.name),
                        f"installerKernelArgs[{index}]",
                        f"{arg!r}: the Flatcar install profile sets {key} itself (from the OS "
                        "and Matchbox)",
                    )
                )
    return problems
