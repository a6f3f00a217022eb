"""A real S3 server on loopback: moto's server mode (PyPI moto[server]), with request signing
checked.

moto accepts any signature by default. With INITIAL_NO_AUTH_ACTION_COUNT=N it authenticates
every request after the first N (moto `settings.py`; `iam/access_control.py` recomputes each
request's AWS Signature Version 4 with botocore's S3SigV4Auth and answers 403
SignatureDoesNotMatch, or InvalidAccessKeyId for a key it does not know), and authorizes it
against the user's IAM policies. The first three requests, unsigned, make the user, its
policy and its access key; everything after is signed with that key.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from real_process import RealProcess, free_port, port_open, start

UNSIGNED_SETUP_REQUESTS = 3
REGION = "us-east-1"
BUCKET = "etcd-backups"
USER = "backup"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass
class S3Server:
    process: RealProcess
    endpoint: str
    access_key: str
    secret_key: str

    def client(self, secret_key: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=BUCKET)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def curl_config(self, path: Path, secret_key: str | None = None) -> Path:
        """A curl config file with the credentials, as a machine holds them (0600)."""
        path.write_text(f'user = "{self.access_key}:{secret_key or self.secret_key}"\n')
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        self.process.stop()


def start_s3_server(logs: Path) -> S3Server:
    port = free_port()
    process = start(
        "moto-s3",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        logs,
        lambda: port_open(port),
        timeout_seconds=60,
        env={"INITIAL_NO_AUTH_ACTION_COUNT": str(UNSIGNED_SETUP_REQUESTS)},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName=USER)
        iam.put_user_policy(UserName=USER, PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        server = S3Server(process, endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        server.client().create_bucket(Bucket=BUCKET)
    except BaseException:
        process.stop()
        raise
    return server
