"""Every machine carries its side of an upgrade (ignition/upgrade.py): the script, its one-shot
service and the timer that starts it; only the timer is enabled (its service has no [Install],
systemd.unit(5)), and the service waits for the setup's stamp."""

from __future__ import annotations

from typing import Any

import pytest

from ignition import ClusterMaterial
from ignition.assets import read_asset
from ignition.entries import MODE_0755, file_entry
from ignition.node import machine_ignition
from ignition.upgrade import UPGRADE_BIN, UPGRADE_SERVICE, UPGRADE_TIMER
from stackconfig import StackConfig


@pytest.mark.parametrize("name", ["c1", "w1"])
def test_every_machine_has_the_upgrade_service(
    example_stack: StackConfig, material: ClusterMaterial, name: str
) -> None:
    config: dict[str, Any] = machine_ignition(
        example_stack, example_stack.machine(name), material, "abcdef.0123456789abcdef"
    )
    files = {f["path"]: f for f in config["storage"]["files"]}
    assert files[UPGRADE_BIN] == file_entry(
        UPGRADE_BIN, read_asset("upgrade/stubernetes-upgrade"), MODE_0755
    )
    units = {u["name"]: u for u in config["systemd"]["units"]}
    assert units[UPGRADE_TIMER]["enabled"] is True
    assert "enabled" not in units[UPGRADE_SERVICE]
    service = units[UPGRADE_SERVICE]["contents"]
    assert "ConditionPathExists=/var/lib/stubernetes/done" in service
    assert f"ExecStart={UPGRADE_BIN}" in service
