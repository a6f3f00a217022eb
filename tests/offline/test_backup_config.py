"""etcd backups in the stack and on the controllers: `stubernetes:backups` (stackconfig/
backups.py) and the files, units and restore hook a controller gets (ignition/etcd_backup.py).
Bad stacks: bad-stacks/backups/. The scripts run for real in tests/real/test_etcd_backup.py."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from control_plane.program_output import ignition_files

from ignition.etcd_backup import (
    BACKUP_ENV,
    BACKUP_KEY,
    BACKUP_LIB,
    BACKUP_TIMER,
    RESTORE_HOOK,
    S3_CURL_CONFIG,
    backup_env,
    backup_key,
    backup_units,
    restores,
)
from ignition.kubeadm import kubeadm_command
from ignition.material import ClusterMaterial
from stackconfig import parse_stack_config
from stackconfig.stackfile import read_stack_values
from stubernetes.cli import main

BACKUP_STACK = Path(__file__).resolve().parent / "backup-stack.yaml"


def _values() -> dict[str, Any]:
    values, _ = read_stack_values(BACKUP_STACK)
    return values


def _env(text: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.decode().splitlines() if "=" in line and
                not line.startswith("#"))  # fmt: skip


def test_the_controller_gets_the_scripts_settings_key_and_timer(tmp_path: Path) -> None:
    assert main(["render", "--stack-file", str(BACKUP_STACK), "--out", str(tmp_path)]) == 0
    ignition = tmp_path / "matchbox/ignition"
    configs = {p.stem: json.loads(p.read_bytes()) for p in ignition.iterdir()}
    files = ignition_files(configs["lab-c1"])
    for script in ("etcd-backup", "etcd-restore", "etcd-tool", "backup-lib.sh"):
        assert f"{BACKUP_LIB}/{script}" in files
    env = _env(files[BACKUP_ENV].contents)
    assert env["S3_ENDPOINT"] == "http://nas.lab.home.arpa:9000"
    assert env["S3_BUCKET"] == "etcd-backups" and env["KEEP"] == "14"
    assert env["ETCD_MEMBER"] == "c1" and env["ETCD_PEER_URL"] == "https://192.168.10.11:2380"
    assert re.fullmatch(r"[0-9a-f]{64}", files[BACKUP_KEY].contents.decode())
    # The S3 credentials only in a file of mode 0600, the form curl's --config reads.
    entries = {f["path"]: f for f in configs["lab-c1"]["storage"]["files"]}
    assert entries[S3_CURL_CONFIG]["mode"] == 0o600 and entries[BACKUP_KEY]["mode"] == 0o600
    assert files[S3_CURL_CONFIG].contents.decode().startswith('user = "stubernetes-backup:')
    units = {u["name"]: u for u in configs["lab-c1"]["systemd"]["units"]}
    assert units[BACKUP_TIMER]["enabled"] is True
    assert "OnUnitActiveSec=6h" in units[BACKUP_TIMER]["contents"]
    # A first install restores nothing; workers back nothing up.
    assert RESTORE_HOOK not in files
    assert not any(p.startswith(BACKUP_LIB) for p in ignition_files(configs["lab-w1"]))


def test_the_key_is_the_programs_and_the_same_on_every_controller(
    material: ClusterMaterial,
) -> None:
    key = backup_key(material)
    assert key == backup_key(copy.deepcopy(material))
    assert material.ca.key_pem not in key and len(key) == 64


def test_the_reinstalled_only_controller_restores_before_init() -> None:
    values = _values()
    values["machines"]["c1"]["generation"] = 2
    stack = parse_stack_config(values)
    c1 = stack.machine("c1")
    assert restores(stack, c1)
    # It founds the cluster again with `kubeadm init` (on the restored data) even once the
    # cluster has answered an update, without allowClusterRebuild.
    assert kubeadm_command(stack, c1, cluster_exists=True) == "init"
    assert not restores(stack, stack.machine("w1"))


def test_without_backups_a_rebuild_still_needs_allow_cluster_rebuild() -> None:
    values = _values()
    del values["backups"]
    values["cluster"]["allowClusterRebuild"] = True
    values["machines"]["c1"]["generation"] = 2
    stack = parse_stack_config(values)
    assert not restores(stack, stack.machine("c1"))
    assert backup_units(stack, stack.machine("c1")) == []


def test_every_controller_lost_the_init_controller_restores_the_named_snapshot() -> None:
    """Three controllers lost at once: the stack names the snapshot and bumps every
    controller's generation. The init controller founds the cluster again from the snapshot
    (even once the cluster has answered an update); the other two join it."""
    values = _values()
    machines = values["machines"]
    for index, name in enumerate(("c2", "c3"), start=12):
        machines[name] = {
            **copy.deepcopy(machines["c1"]),
            "mac": f"52:54:00:a1:00:{index}",
            "address": f"192.168.10.{index}/24",
        }
    for name in ("c1", "c2", "c3"):
        machines[name]["generation"] = 2
    values["vip"] = {"address": "192.168.10.10", "interface": "eno1", "routerId": 51}
    values["cluster"]["apiEndpoint"] = "192.168.10.10:6443"
    values["backups"]["restore"] = "lab-etcd-20261206T162133Z-r266.db.gpg"
    stack = parse_stack_config(values)
    c1, c2, c3 = (stack.machine(n) for n in ("c1", "c2", "c3"))
    assert restores(stack, c1) and not restores(stack, c2) and not restores(stack, c3)
    assert kubeadm_command(stack, c1, cluster_exists=True) == "init"
    assert kubeadm_command(stack, c2, cluster_exists=True) == "join"
    # Without a named snapshot the reinstalled init controller joins its peers, as before.
    del values["backups"]["restore"]
    stack = parse_stack_config(values)
    assert not restores(stack, stack.machine("c1"))
    assert kubeadm_command(stack, stack.machine("c1"), cluster_exists=True) == "join"


@pytest.mark.parametrize(
    ("version", "image"),
    [
        ("1.35.8", "gcr.io/etcd-development/etcd:v3.6.8"),
        ("1.36.4", "gcr.io/etcd-development/etcd:v3.6.8"),
        # kubeadm v1.37.2 cmd/kubeadm/app/constants/constants.go SupportedEtcdVersion: 3.7.0-0.
        ("1.37.2", "gcr.io/etcd-development/etcd:v3.7.0"),
    ],
)
def test_the_tool_image_is_etcds_release_that_the_stacks_kubeadm_runs(
    version: str, image: str
) -> None:
    values = _values()
    values["cluster"]["kubernetesVersion"] = version
    if version.startswith("1.37"):
        values["cluster"]["binarySha256"] = {
            n: "ab" * 32 for n in ("kubeadm", "kubectl", "kubelet")
        }
    stack = parse_stack_config(values)
    env = _env(backup_env(stack, stack.machine("c1")).encode())
    assert env["ETCD_IMAGE"] == image
