"""etcd backups on every controller, and the restore of a reinstalled only controller (files in
`ignition/files/backup/`; the stack's side is `stackconfig.backups`).

Every controller gets the scripts, their settings, the encryption key and a timer; only the
etcd leader's run takes a snapshot. The only controller, reinstalled (generation above 1), or
the init controller reinstalled in a stack that names a snapshot (`backups.restore`: every
controller lost), also gets `restore-before-init`, which the setup's kubeadm phase runs right
before `kubeadm init`: etcd's disaster recovery (etcd.io, "Disaster recovery": `etcdutl
snapshot restore` into a new data directory), with kubeadm's preflight check of an empty
/var/lib/etcd skipped (kubernetes `cmd/kubeadm/app/preflight/checks.go` InitNodeChecks:
DirAvailableCheck on the etcd data dir, "DirAvailable--var-lib-etcd").

The encryption key: derived (HKDF-SHA256) from the cluster CA's private key, which the program
holds as a Pulumi secret and which a restore needs anyway; so the key is the program's, is
the same on every controller and across reinstalls, and reveals nothing of the CA key.
"""

from __future__ import annotations

import shlex
from string import Template
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ignition.assets import read_asset
from ignition.entries import MODE_0600, MODE_0755, file_entry, unit_entry
from ignition.material import ClusterMaterial
from stackconfig.model import Machine, StackConfig

BACKUP_LIB = "/usr/local/lib/stubernetes/backup"
BACKUP_ENV = "/etc/stubernetes/backup.env"
BACKUP_KEY = "/etc/stubernetes/backup.key"
S3_CURL_CONFIG = "/etc/stubernetes/backup-s3.curlrc"
RESTORE_HOOK = f"{BACKUP_LIB}/restore-before-init"
BACKUP_SERVICE = "stubernetes-etcd-backup.service"
BACKUP_TIMER = "stubernetes-etcd-backup.timer"
SCRIPTS = ("etcd-backup", "etcd-restore", "etcd-tool")
# etcd's own image, which carries etcdctl and etcdutl (etcd-io/etcd Dockerfile), at the etcd
# release the stack's kubeadm runs (kubernetes `cmd/kubeadm/app/constants/constants.go`
# SupportedEtcdVersion: 3.6.8-0 in kubeadm v1.36.3 and v1.36.4, 3.7.0-0 in kubeadm v1.37.2,
# whose map stops at 36 and falls back to its newest for 37, EtcdSupportedVersion);
# registry.k8s.io/etcd has no etcdutl. On a running controller, etcd-tool takes the release of
# the etcd its manifest names instead (an upgrade in place changes it, not backup.env).
ETCD_TOOL_REPOSITORY = "gcr.io/etcd-development/etcd"
ETCD_TOOL_RELEASES = {35: "v3.6.8", 36: "v3.6.8", 37: "v3.7.0"}


def etcd_tool_image(stack: StackConfig) -> str:
    minor = int(stack.cluster.kubernetes_release.split(".")[1])
    return f"{ETCD_TOOL_REPOSITORY}:{ETCD_TOOL_RELEASES[minor]}"


# The flag that lets `kubeadm init` start on a restored data directory.
RESTORED_PREFLIGHT = "--ignore-preflight-errors=DirAvailable--var-lib-etcd"


def backup_key(material: ClusterMaterial) -> str:
    """The snapshots' passphrase: 64 hex digits derived from the cluster CA's key."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"stubernetes etcd backup v1"
    ).derive(material.ca.key_pem.encode())
    return derived.hex()


def restores(stack: StackConfig, machine: Machine) -> bool:
    """Whether this machine restores a snapshot before `kubeadm init`: the only controller,
    reinstalled, in a stack with backups; or the init controller, reinstalled, in a stack that
    names the snapshot (every controller lost: it founds the cluster again from the snapshot,
    and the others, reinstalled too, join it)."""
    return (
        stack.backups is not None
        and stack.bootstraps_cluster(machine)
        and machine.generation > 1
        and (len(stack.controllers) == 1 or stack.restores_snapshot)
    )


def backup_env(stack: StackConfig, machine: Machine) -> str:
    backups = stack.backups
    assert backups is not None
    s3 = backups.s3
    peer_url = f"https://{machine.address.ip}:2380" if machine.address is not None else ""
    values = {
        "cluster": stack.cluster.name,
        "keep": str(backups.keep),
        "etcd_image": etcd_tool_image(stack),
        "s3_endpoint": s3.endpoint if s3 else "",
        "s3_bucket": s3.bucket if s3 else "",
        "s3_region": s3.region if s3 else "",
        "s3_prefix": s3.prefix if s3 else "",
        "backup_dir": backups.path,
        "member": machine.name,
        "peer_url": peer_url,
        "restore": backups.restore or "",
        "allow_empty": "1" if stack.cluster.allow_cluster_rebuild else "0",
    }
    quoted = {key: shlex.quote(value) for key, value in values.items()}
    return Template(read_asset("backup/backup.env")).substitute(quoted)


def backup_files(
    stack: StackConfig, machine: Machine, material: ClusterMaterial
) -> list[dict[str, Any]]:
    backups = stack.backups
    if backups is None or not machine.is_controller:
        return []
    files = [
        file_entry(f"{BACKUP_LIB}/{name}", read_asset(f"backup/{name}"), MODE_0755)
        for name in SCRIPTS
    ]
    files += [
        file_entry(f"{BACKUP_LIB}/backup-lib.sh", read_asset("backup/backup-lib.sh")),
        file_entry(BACKUP_ENV, backup_env(stack, machine), MODE_0600),
        file_entry(BACKUP_KEY, backup_key(material), MODE_0600),
    ]
    if backups.s3 is not None:
        credentials = f"{backups.s3.access_key_id}:{backups.s3.secret_access_key}"
        files.append(file_entry(S3_CURL_CONFIG, f'user = "{credentials}"\n', MODE_0600))
    if restores(stack, machine):
        files.append(file_entry(RESTORE_HOOK, read_asset("backup/restore-before-init"), MODE_0755))
    return files


def backup_units(stack: StackConfig, machine: Machine) -> list[dict[str, Any]]:
    if stack.backups is None or not machine.is_controller:
        return []
    # The stack's span is one systemd time span as written: m, h and d are minutes, hours and
    # days there too (systemd.time(7)).
    timer = Template(read_asset(f"backup/{BACKUP_TIMER}")).substitute(
        interval=stack.backups.interval
    )
    # The service has no [Install]: the timer starts it; only the timer is enabled.
    service = {"name": BACKUP_SERVICE, "contents": read_asset(f"backup/{BACKUP_SERVICE}")}
    return [service, unit_entry(BACKUP_TIMER, timer)]


def add_etcd_backup(
    config: dict[str, Any], stack: StackConfig, machine: Machine, material: ClusterMaterial
) -> None:
    """Add a controller's backup files and units to its Ignition config (files stay sorted by
    path, as `machine_ignition` sorts them)."""
    files = backup_files(stack, machine, material)
    if not files:
        return
    storage = config["storage"]
    storage["files"] = sorted([*storage["files"], *files], key=lambda f: f["path"])
    config["systemd"]["units"] = [*config["systemd"]["units"], *backup_units(stack, machine)]
