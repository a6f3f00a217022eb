"""`stubernetes:backups`: etcd snapshots on a schedule, encrypted, kept off the machine, and
the snapshot a reinstalled only controller restores (the scripts: ignition/files/backup/;
the machine's side: ignition/etcd_backup.py).

A snapshot holds every object of the cluster, Secrets and the Helm releases' state among
them (Helm 3 keeps each release in a Secret of its namespace); not what lives outside etcd,
such as persistent volumes' data.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from stackconfig.strict_model import StrictModel, WholeNumber

# "30m", "6h", "1d": a systemd time span of one unit (systemd.time(7)), at least 5 minutes:
# a snapshot of a home cluster takes seconds, but each is a full copy.
INTERVAL = re.compile(r"^([1-9][0-9]{0,4})(m|h|d)$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 300
# An S3 bucket name (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
# 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A snapshot's name as etcd-backup writes it (backup-lib.sh snapshot_name).
SNAPSHOT_NAME = re.compile(r"^[a-z0-9-]+-etcd-[0-9]{8}T[0-9]{6}Z-r[0-9]+\.db\.gpg$")


def interval_seconds(value: str) -> int:
    found = INTERVAL.match(value)
    if not found:
        raise ValueError(f"expected a number and a unit, m, h or d (e.g. '6h'), got {value!r}")
    return int(found[1]) * UNIT_SECONDS[found[2]]


def _check_interval(value: str) -> str:
    if interval_seconds(value) < MIN_INTERVAL_SECONDS:
        raise ValueError(f"{value!r} is shorter than 5 minutes")
    return value


def _check_bucket(value: str) -> str:
    if not BUCKET.match(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and "
            "'-', starting and ending with a letter or digit)"
        )
    return value


def _check_snapshot(value: str) -> str:
    if not SNAPSHOT_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a snapshot's name, such as lab-etcd-20261206T162133Z-r266.db.gpg"
        )
    return value


def _check_path(value: str) -> str:
    if not value.startswith("/var/") or "/../" in f"{value}/" or re.search(r"\s", value):
        raise ValueError(f"{value!r}: give an absolute path under /var/ (the machine's /etc "
                         "and /usr are not for data)")  # fmt: skip
    return value


class S3Bucket(StrictModel):
    """An S3-compatible bucket: AWS, Backblaze B2, MinIO, Garage, a NAS's S3 service."""

    endpoint: str = Field(pattern=r"^https?://[^/\s?#]+$")
    """Its URL without a path, e.g. https://s3.eu-central-1.amazonaws.com or
    http://nas.lab.home.arpa:9000; objects are addressed path-style (endpoint/bucket/key)."""
    bucket: Annotated[str, AfterValidator(_check_bucket)]
    """The bucket, which must exist."""
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,40}$")
    """The region the signatures name (MinIO and Garage accept their configured one)."""
    prefix: str = Field(default="", pattern=r"^([A-Za-z0-9._-]+/)*$")
    """A folder inside the bucket, ending in '/', or none."""
    access_key_id: str = Field(min_length=1, pattern=r"^[^\s\"]+$")
    """The access key's id."""
    secret_access_key: str = Field(min_length=1, pattern=r"^[^\s\"]+$")
    """The access key's secret; a secure value (`pulumi config set --secret --path
    backups.s3.secretAccessKey`)."""


class Backups(StrictModel):
    """etcd snapshots, taken by the etcd leader among the controllers."""

    interval: Annotated[str, AfterValidator(_check_interval)] = "6h"
    """How often: a number and a unit, m, h or d (`30m`, `6h`, `1d`), at least 5 minutes."""
    keep: Annotated[WholeNumber, Field(ge=1, le=1000)] = 14
    """How many snapshots the destination keeps (the newest)."""
    s3: S3Bucket | None = None
    """The bucket the snapshots go to; without it, `path` on the controller that takes them."""
    path: Annotated[str, AfterValidator(_check_path)] = "/var/lib/stubernetes/etcd-backups"
    """The directory on the machine used when there is no bucket."""
    restore: Annotated[str, AfterValidator(_check_snapshot)] | None = None
    """The snapshot a reinstalled only controller restores; none: the newest."""

    @property
    def interval_seconds(self) -> int:
        return interval_seconds(self.interval)
