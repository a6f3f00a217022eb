"""The admin kubeconfig, from the cluster CA and an admin client certificate."""

from __future__ import annotations

import base64

import yaml


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode("ascii")


def admin_kubeconfig(
    cluster_name: str,
    api_endpoint: str,
    ca_cert_pem: str,
    cert_pem: str,
    key_pem: str,
    user: str | None = None,
) -> str:
    user = user or f"{cluster_name}-admin"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": f"https://{api_endpoint}",
                    "certificate-authority-data": _b64(ca_cert_pem),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": user,
    }
    return yaml.safe_dump(config, sort_keys=False)
