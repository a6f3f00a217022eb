"""Every controller lost at once, and the cluster back from a snapshot: three controllers on
one LAN (vip_lan.py: etcd members, API servers, keepalived holding the API endpoint's VIP).

The machine's scripts run (ignition/files/backup/): etcd-backup on every controller, of which
only the etcd leader takes a snapshot; then every controller's etcd data is gone. The first
is rebuilt from the snapshot (restore-before-init, as its kubeadm phase runs it before `kubeadm
init`), the others join it as new members, as `kubeadm join --control-plane` adds one (kubernetes
`cmd/kubeadm/app/util/etcd/etcd.go` AddMember, then the member starts with
--initial-cluster-state=existing; etcd.io "Runtime reconfiguration": member add, then start).
What was written through the VIP before is read through the VIP after, from any controller.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tool_cache import require_tool
from vip_lan import NAMES, Lan, peer_url, start_lan

from ignition.assets import FILES

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="Debian's keepalived"),
]

BACKUP = Path(str(FILES / "backup" / "etcd-backup"))
BEFORE_INIT = Path(str(FILES / "backup" / "restore-before-init"))
OBJECTS = 10


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    started = start_lan(Path(tmp_path_factory.mktemp("restore-lan")))
    try:
        started.wait_for("one controller holds the VIP", lambda: len(started.holders()) == 1, 30)
        yield started
    finally:
        started.stop()


def _settings(lan: Lan, name: str) -> Path:
    """backup.env for controller `name`: its member over plain HTTP (vip_lan's etcd), the
    snapshots in a directory, etcdctl and etcdutl run in its network namespace."""
    tool = lan.work / f"etcd-tool-{name}"
    netns = lan.controller(name).namespace.path
    tool.write_text(
        "#!/bin/sh\ntool=$1; shift\n"
        f'[ "$tool" = etcdctl ] && exec nsenter --net={netns} -- '
        f'{require_tool("etcd", "etcdctl")} "$@"\n'
        f'[ "$tool" = etcdutl ] && exec {require_tool("etcdutl", "etcdutl")} "$@"\nexit 2\n'
    )
    tool.chmod(0o755)
    key = lan.work / "backup.key"
    if not key.exists():
        key.write_text(secrets.token_hex(32))
    settings = {
        "CLUSTER": "lan",
        "KEEP": "3",
        "KEY_FILE": key,
        "STATE_DIR": lan.work / name / "backup-state",
        "ETCD_TOOL": tool,
        "ETCD_ENDPOINT": "http://127.0.0.1:2379",
        "BACKUP_DIR": lan.work / "snapshots",
        "ETCD_MEMBER": name,
        "ETCD_PEER_URL": peer_url(name),
        "ETCD_DATA_DIR": lan.data_dir(name),
    }
    path = lan.work / f"backup-{name}.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def _run(script: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script)],
        env={**os.environ, "BACKUP_ENV": str(env_file)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _member_added(lan: Lan, first: str, name: str) -> bool:
    """`etcdctl member add` on `first`; False while etcd refuses it as unhealthy (to retry)."""
    try:
        lan.etcdctl(first, "member", "add", name, f"--peer-urls={peer_url(name)}")
    except AssertionError as refused:
        if "unhealthy cluster" in str(refused):
            time.sleep(0.5)
            return False
        raise
    return True


def _config_maps(lan: Lan) -> dict[str, str]:
    listed = json.loads(lan.kubectl("get", "configmaps", "-n", "default", "-o", "json"))
    return {
        item["metadata"]["name"]: item["data"]["value"]
        for item in listed["items"]
        if item["metadata"]["name"].startswith("kept-")
    }


def test_only_the_leader_takes_the_snapshot(lan: Lan) -> None:
    written = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"kept-{i}", "namespace": "default"},
         "data": {"value": f"value-{i}"}}
        for i in range(OBJECTS)
    ]  # fmt: skip
    lan.kubectl("apply", "-f", "-", input_text=json.dumps({"kind": "List", "apiVersion": "v1",
                                                          "items": written}))  # fmt: skip
    runs = {name: _run(BACKUP, _settings(lan, name)) for name in NAMES}
    assert all(run.returncode == 0 for run in runs.values()), runs
    took = [name for name, run in runs.items() if "not the etcd leader" not in run.stderr]
    assert len(took) == 1, {n: r.stderr for n, r in runs.items()}
    assert len(list((lan.work / "snapshots").iterdir())) == 1


def test_every_controller_lost_and_rebuilt_from_the_snapshot(lan: Lan) -> None:
    before = _config_maps(lan)
    assert len(before) == OBJECTS
    lan.lose_every_controller()
    assert lan.holders() == []
    first, *others = NAMES
    # The first controller: the snapshot restored into its empty data directory, then its
    # etcd (a one-member cluster of the snapshot's data), its API server and keepalived.
    restored = _run(BEFORE_INIT, _settings(lan, first))
    assert restored.returncode == 0, restored.stderr
    lan.start_etcd(first, [first], "new")
    lan.start_control_plane(first)
    lan.wait_for("the VIP on the rebuilt controller", lambda: lan.holders() == [first], 30)
    assert _config_maps(lan) == before
    # The others join it, one at a time, as new members with empty data directories.
    members = [first]
    for name in others:
        # etcd refuses a member add ("etcdserver: unhealthy cluster") until the member added
        # before has been connected for its health interval (etcd server/etcdserver/server.go
        # mayAddMember, with --strict-reconfig-check); kubeadm's join retries it likewise, every
        # EtcdAPICallRetryInterval until its EtcdAPICall timeout (kubernetes
        # cmd/kubeadm/app/util/etcd/etcd.go addMember).
        lan.wait_for(
            f"etcd accepting {name} as a member",
            lambda name=name: _member_added(lan, first, name),  # type: ignore[misc]
            60,
        )
        members.append(name)
        lan.start_etcd(name, members, "existing")
        lan.start_control_plane(name)
    listed = lan.etcdctl(first, "member", "list", "--write-out=json")
    assert sorted(m["name"] for m in json.loads(listed)["members"]) == sorted(NAMES)
    # The data is every controller's: with the rebuilt one's API server gone, the VIP moves
    # to a joined controller, which answers with what was written before the loss.
    lan.kill_apiserver(first)
    lan.wait_for("the VIP on a joined controller", lambda: lan.holders() in ([n] for n in others)
                 and lan.client_readyz(), 30)  # fmt: skip
    assert _config_maps(lan) == before
