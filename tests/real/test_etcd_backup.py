"""etcd backups that restore, against the real control plane the other real tests start (the
example's only controller, kubeadm's files, real etcd and kube-apiserver: control_plane) and a
real S3 server that checks signatures (s3_server.py: moto's server mode).

The machine's own scripts run (ignition/files/backup/): etcd-backup takes a snapshot with
etcdctl, verifies it with etcdutl, encrypts it with GnuPG and uploads it with curl's SigV4;
etcd-restore fetches, decrypts, and restores it with etcdutl into the empty data directory of
a reinstalled controller before its etcd starts (etcd.io's "Disaster recovery": `etcdutl
snapshot restore` into a new data dir; kubeadm's static pod then starts etcd on it). The one
stand-in: the command that runs etcdctl/etcdutl, which on a machine is etcd's image through
containerd's ctr (etcd-tool) and here the same release built from etcd's Go modules.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_plane.cluster import ControlPlane, kubectl_binary, start_control_plane
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm
from gnupg_home import gnupg_home
from s3_server import BUCKET, S3Server, start_s3_server
from tool_cache import require_tool

from ignition.assets import FILES

pytestmark = pytest.mark.real

BACKUP = Path(str(FILES / "backup" / "etcd-backup"))
RESTORE = Path(str(FILES / "backup" / "etcd-restore"))
BEFORE_INIT = Path(str(FILES / "backup" / "restore-before-init"))
CONFIGMAPS = 20


@dataclass
class Backups:
    work: Path
    plane: ControlPlane
    s3: S3Server
    env_file: Path
    settings: dict[str, str]

    def run(self, script: Path, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        env_file = self.env_file
        if overrides:
            env_file = self.work / f"backup-{secrets.token_hex(4)}.env"
            _write_env(env_file, {**self.settings, **overrides})
        return subprocess.run(
            [str(script), *args],
            env={**os.environ, "BACKUP_ENV": str(env_file)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    @property
    def last_good(self) -> Path:
        return Path(self.settings["STATE_DIR"]) / "last-good.json"


def _write_env(path: Path, settings: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))


def _etcd_tool(work: Path, plane: ControlPlane) -> Path:
    """Stand-in for etcd-tool: the same etcdctl/etcdutl release, etcdctl in the control
    plane's network namespace (where the member listens on 127.0.0.1)."""
    script = work / "etcd-tool"
    etcdctl = " ".join(plane.wrap([str(require_tool("etcd", "etcdctl"))]))
    script.write_text(
        "#!/bin/sh\n"
        "tool=$1; shift\ncase $tool in\n"
        f'etcdctl) exec {etcdctl} "$@" ;;\n'
        f'etcdutl) exec {require_tool("etcdutl", "etcdutl")} "$@" ;;\n'
        "esac\nexit 2\n"
    )
    script.chmod(0o755)
    return script


def _kubectl(work: Path, plane: ControlPlane) -> Path:
    """kubectl in the control plane's network namespace, where the API endpoint answers."""
    script = work / "kubectl"
    script.write_text(f'#!/bin/sh\nexec {" ".join(plane.wrap([str(kubectl_binary())]))} "$@"\n')
    script.chmod(0o755)
    return script


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(for_built_kubeadm(example_values))


@pytest.fixture(scope="module")
def backups(output: ProgramOutput, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backups]:
    work = tmp_path_factory.mktemp("etcd-backup")
    s3 = start_s3_server(work / "logs")
    plane = start_control_plane(output, work / "first-install")
    try:
        pki = plane.root / "etc/kubernetes/pki/etcd"
        key = work / "backup.key"
        key.write_text(secrets.token_urlsafe(32))
        key.chmod(0o600)
        settings = {
            "CLUSTER": output.stack.cluster.name,
            "KEEP": "2",
            "KEY_FILE": str(key),
            "STATE_DIR": str(work / "state"),
            "ETCD_TOOL": str(_etcd_tool(work, plane)),
            "ETCD_ENDPOINT": "https://127.0.0.1:2379",
            "ETCD_CACERT": str(pki / "ca.crt"),
            "ETCD_CERT": str(pki / "healthcheck-client.crt"),
            "ETCD_KEY": str(pki / "healthcheck-client.key"),
            "S3_ENDPOINT": s3.endpoint,
            "S3_BUCKET": BUCKET,
            "S3_REGION": "us-east-1",
            "S3_PREFIX": "",
            "S3_CURL_CONFIG": str(s3.curl_config(work / "s3.curlrc")),
            "BACKUP_DIR": "",
            "KUBECONFIG_FILE": str(plane.admin_kubeconfig),
            "KUBECTL": str(_kubectl(work, plane)),
        }
        env_file = work / "backup.env"
        _write_env(env_file, settings)
        backups = Backups(work, plane, s3, env_file, settings)
        yield backups
        backups.plane.stop()
    finally:
        plane.stop()
        s3.stop()


def _write_objects(plane: ControlPlane) -> None:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"kept-{i}", "namespace": "default"},
            "data": {"value": f"value-{i}"},
        }
        for i in range(CONFIGMAPS)
    ]
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kept-secret", "namespace": "default"},
            "stringData": {"password": "plain-text-marker-7f3a"},
        }
    )
    plane.apply(objects)


def test_a_snapshot_is_taken_verified_encrypted_and_uploaded(backups: Backups) -> None:
    _write_objects(backups.plane)
    began = time.monotonic()
    done = backups.run(BACKUP)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    last = json.loads(backups.last_good.read_text())
    (key,) = backups.s3.keys()
    assert key == last["name"]
    assert key.startswith(f"{backups.settings['CLUSTER']}-etcd-") and key.endswith(".db.gpg")
    assert last["revision"] > 0 and last["keys"] > CONFIGMAPS
    stored = backups.s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert len(stored) == last["size"]
    # Encrypted: neither the Secret's value nor etcd's keys appear in what left the machine.
    assert b"plain-text-marker-7f3a" not in stored and b"/registry/" not in stored
    assert last["dbSize"] > 0
    # Recorded in the cluster too.
    recorded = backups.plane.kubectl(
        "get", "configmap", "stubernetes-etcd-backup", "-n", "kube-system",
        "-o", "jsonpath={.data.last-good\\.json}",
    ).stdout  # fmt: skip
    assert json.loads(recorded) == last
    print(f"snapshot {key}: {last['dbSize']} bytes ({last['size']} encrypted), revision "
          f"{last['revision']}, "
          f"{last['keys']} keys, taken and uploaded in {took:.1f} s")  # fmt: skip


def test_a_wrong_s3_key_is_refused_and_nothing_is_recorded(backups: Backups) -> None:
    before = backups.last_good.read_text()
    wrong = backups.s3.curl_config(backups.work / "wrong.curlrc", secret_key="not-the-secret")
    done = backups.run(BACKUP, S3_CURL_CONFIG=str(wrong))
    assert done.returncode != 0
    assert "403" in done.stderr and "could not copy" in done.stderr, done.stderr
    assert backups.last_good.read_text() == before


def test_the_newest_keep_snapshots_stay(backups: Backups) -> None:
    for _ in range(2):
        time.sleep(1.1)  # names carry the second they were taken
        done = backups.run(BACKUP)
        assert done.returncode == 0, done.stderr
    keys = backups.s3.keys()
    assert len(keys) == 2
    assert json.loads(backups.last_good.read_text())["name"] == keys[-1]


def _restore(backups: Backups, data_dir: Path, *name: str, **overrides: str) -> Any:
    """etcd-restore with the member name and peer URL kubeadm gives the controller's etcd."""
    etcd = backups.plane.pods["etcd"]
    member, peer_url = etcd.flag("name"), etcd.flag("initial-advertise-peer-urls")
    assert member and peer_url
    return backups.run(RESTORE, str(data_dir), member, peer_url, *name, **overrides)


def _before_init(backups: Backups, data_dir: Path, **overrides: str) -> Any:
    etcd = backups.plane.pods["etcd"]
    return backups.run(
        BEFORE_INIT,
        ETCD_MEMBER=etcd.flag("name") or "",
        ETCD_PEER_URL=etcd.flag("initial-advertise-peer-urls") or "",
        ETCD_DATA_DIR=str(data_dir),
        **overrides,
    )


def test_with_no_snapshot_the_reinstall_stops_unless_an_empty_cluster_is_allowed(
    backups: Backups,
) -> None:
    empty = backups.work / "no-snapshots"
    empty.mkdir()
    data_dir = backups.work / "no-snapshot-etcd"
    done = _before_init(backups, data_dir, S3_ENDPOINT="", BACKUP_DIR=str(empty))
    assert done.returncode == 1 and "no snapshot at" in done.stderr, done.stderr
    allowed = _before_init(
        backups, data_dir, S3_ENDPOINT="", BACKUP_DIR=str(empty), ALLOW_EMPTY_CLUSTER="1"
    )
    assert allowed.returncode == 0 and "founding an empty cluster" in allowed.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "corrupted-before-encryption"])
def test_a_damaged_snapshot_is_refused(backups: Backups, damage: str) -> None:
    newest = backups.s3.keys()[-1]
    local = backups.work / f"damaged-{damage}"
    local.mkdir()
    blob = backups.s3.client().get_object(Bucket=BUCKET, Key=newest)["Body"].read()
    if damage == "flipped-byte":
        middle = len(blob) // 2
        blob = blob[:middle] + bytes([blob[middle] ^ 0x01]) + blob[middle + 1 :]
    elif damage == "truncated":
        blob = blob[: len(blob) - 4096]
    else:
        # A snapshot whose database changed after etcd hashed it, encrypted with the right
        # key: GnuPG accepts it, etcdutl's sha256 check must not.
        with gnupg_home(local):
            plain = local / "plain.db"
            gpg = ["gpg", "--batch", "--quiet", "--homedir", str(local), "--pinentry-mode",
                   "loopback", "--passphrase-file", backups.settings["KEY_FILE"]]  # fmt: skip
            subprocess.run(
                [*gpg, "--decrypt", "--output", str(plain)],
                input=blob, check=True, capture_output=True,
            )  # fmt: skip
            data = bytearray(plain.read_bytes())
            data[8192] ^= 0x01
            plain.write_bytes(bytes(data))
            subprocess.run(
                [*gpg, "--symmetric", "--cipher-algo", "AES256", "--output", str(local / "enc"),
                 str(plain)],
                check=True, capture_output=True,
            )  # fmt: skip
            blob = (local / "enc").read_bytes()
    (local / newest).write_bytes(blob)
    data_dir = local / "etcd"
    done = _restore(backups, data_dir, newest, S3_ENDPOINT="", BACKUP_DIR=str(local))
    assert done.returncode == 1
    expected = "etcdutl refused" if damage.startswith("corrupted") else "does not decrypt"
    assert expected in done.stderr, done.stderr
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_restore_refuses_a_data_directory_in_use(backups: Backups) -> None:
    used = backups.work / "used-etcd"
    (used / "member").mkdir(parents=True)
    done = _restore(backups, used)
    assert done.returncode == 1 and "is not empty" in done.stderr
    assert [p.name for p in used.iterdir()] == ["member"]


def test_reinstalling_the_only_controller_restores_the_newest_snapshot(
    backups: Backups, output: ProgramOutput
) -> None:
    """The controller is reinstalled: a fresh root from the same program output (the
    program's own CA and service-account keys), its etcd data directory empty, the newest
    snapshot restored into it before etcd starts; what was written through the API is back."""
    old = backups.plane
    newest = backups.s3.keys()[-1]
    old.stop()
    shutil.rmtree(old.root / "var/lib/etcd")
    restored: list[str] = []

    def restore(root: Path) -> None:
        # What the setup's kubeadm phase runs right before `kubeadm init`.
        data_dir = root / "var/lib/etcd"
        assert not data_dir.exists() or not any(data_dir.iterdir())
        done = _before_init(backups, data_dir)
        assert done.returncode == 0, done.stderr
        restored.append(done.stderr.strip())

    began = time.monotonic()
    plane = start_control_plane(output, backups.work / "reinstall", prepare=restore)
    backups.plane = plane
    print(f"{restored[0]}; API server ready {time.monotonic() - began:.1f} s after the reinstall")
    assert newest in restored[0]
    names = plane.kubectl("get", "configmaps", "-n", "default", "-o", "name").stdout.split()
    assert {f"configmap/kept-{i}" for i in range(CONFIGMAPS)} <= set(names)
    secret = plane.kubectl(
        "get", "secret", "kept-secret", "-n", "default", "-o", "jsonpath={.data.password}"
    ).stdout
    assert secret == "cGxhaW4tdGV4dC1tYXJrZXItN2YzYQ=="  # base64 of the value written
    assert (plane.root / "etc/kubernetes/pki/ca.crt").read_bytes() == (
        old.root / "etc/kubernetes/pki/ca.crt"
    ).read_bytes()
