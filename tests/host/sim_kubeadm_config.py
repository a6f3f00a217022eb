"""What the stand-in kubeadm knows of the configuration files the REAL Ignition wrote.

The stand-ins run without PyYAML (standin_call.py), so at install the simulated machine reads
kubeadm's configs once, here, and keeps the facts kubeadm acts on in its state: each config's
kind and sha256 (the stand-in refuses a config that changed since), the bootstrap token, the
API endpoint and the CA pins of discovery, the certificate key of a control-plane join
(v1beta4 JoinControlPlane.certificateKey), nodeRegistration's name, node labels and
criSocket, the etcd patch's SELinux level, and from setup.env the release and the peers'
endpoints. Field names are kubeadm's v1beta4 API (kubernetes v1.36.3
cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go).
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import yaml

from ignition.material import ca_cert_hash

JSON = dict[str, Any]

KUBEADM_CONFIG = "/etc/stubernetes/kubeadm.yaml"
KUBEADM_JOIN_CONFIG = "/etc/stubernetes/kubeadm-join.yaml"
KUBEADM_PATCHES = "/etc/stubernetes/kubeadm-patches"
# kubeadm's constants.DefaultCRISocket on Linux (cmd/kubeadm/app/constants/constants_unix.go).
DEFAULT_CRI_SOCKET = "unix:///run/containerd/containerd.sock"


def _config_facts(root: Path, path: str) -> JSON:
    """What the stand-in kubeadm needs of one config file: its kind, digest and discovery."""
    raw = (root / path.lstrip("/")).read_bytes()
    documents = [d for d in yaml.safe_load_all(raw) if d]
    first = documents[0]
    facts: JSON = {"kind": first["kind"], "sha256": hashlib.sha256(raw).hexdigest()}
    if first["kind"] == "InitConfiguration":
        cluster = next(d for d in documents if d["kind"] == "ClusterConfiguration")
        # No token of the machine's own: kubeadm makes a random one (see the stand-in).
        tokens = [t["token"] for t in first.get("bootstrapTokens", []) if "token" in t]
        facts.update(
            token=tokens[0] if tokens else None,
            endpoint=cluster["controlPlaneEndpoint"],
            control_plane=True,
            endpoint_local=first.get("localAPIEndpoint", {}),
            pinned=None,
            certificate_key=None,
        )
    else:
        bootstrap = first["discovery"]["bootstrapToken"]
        facts.update(
            token=bootstrap["token"],
            endpoint=bootstrap["apiServerEndpoint"],
            control_plane="controlPlane" in first,
            endpoint_local=(first.get("controlPlane") or {}).get("localAPIEndpoint", {}),
            pinned=list(bootstrap["caCertHashes"]),
            # A controller that joins with kubeadm's certificate key (v1beta4
            # JoinControlPlane.certificateKey) downloads the CA material from kubeadm-certs.
            certificate_key=(first.get("controlPlane") or {}).get("certificateKey"),
        )
    facts["patches"] = (first.get("patches") or {}).get("directory")
    # Unset, kubeadm would detect the runtime by the sockets it finds (DefaultCRISocket first).
    facts["cri_socket"] = first["nodeRegistration"].get("criSocket", DEFAULT_CRI_SOCKET)
    return facts


def _setup_env(root: Path) -> dict[str, str]:
    env = {}
    for line in (root / "etc/stubernetes/setup.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = " ".join(shlex.split(value))
    return env


def kubeadm_facts(root: Path) -> JSON:
    """What the stand-ins need to know of kubeadm's configs (they run without PyYAML):
    kubeadm.yaml's facts at the top, and every config file's under `configs`."""
    configs = {
        path: _config_facts(root, path)
        for path in (KUBEADM_CONFIG, KUBEADM_JOIN_CONFIG)
        if (root / path.lstrip("/")).exists()
    }
    main = configs[KUBEADM_CONFIG]
    documents = [d for d in yaml.safe_load_all((root / KUBEADM_CONFIG.lstrip("/")).read_bytes())]
    registration = documents[0]["nodeRegistration"]
    labels: dict[str, str] = {}
    for arg in registration.get("kubeletExtraArgs", []):
        if arg["name"] == "node-labels":
            labels.update(pair.split("=", 1) for pair in arg["value"].split(","))
    ca_file = root / "etc/stubernetes/pki/ca.crt"
    own_ca_hash = ca_cert_hash(ca_file.read_text()) if ca_file.exists() else None
    for facts in configs.values():
        if facts["pinned"] is None:
            facts["pinned"] = [own_ca_hash]
    etcd_patch = root / KUBEADM_PATCHES.lstrip("/") / "etcd+strategic.yaml"
    etcd_level = None
    if main["patches"] == KUBEADM_PATCHES and etcd_patch.exists():
        patch = yaml.safe_load(etcd_patch.read_text())
        etcd_level = patch["spec"]["securityContext"]["seLinuxOptions"]["level"]
    env = _setup_env(root)
    return {
        "config_path": KUBEADM_CONFIG,
        "config_sha256": main["sha256"],
        "configs": configs,
        "kind": main["kind"],
        "node_name": registration["name"],
        "node_labels": labels,
        "token": main["token"],
        "endpoint": main["endpoint"],
        "ca_cert_hashes": main["pinned"],
        "ca_hash": own_ca_hash,
        "control_plane": main["control_plane"],
        "certificate_key": main["certificate_key"],
        "advertise_address": main["endpoint_local"].get("advertiseAddress", registration["name"]),
        "peer_endpoints": env.get("PEER_API_ENDPOINTS", "").split(),
        "cri_socket": main["cri_socket"],
        # ClusterConfiguration.kubernetesVersion: the release of the binaries Ignition fetched.
        "kubernetes_version": f"v{env['KUBERNETES_RELEASE']}",
        "etcd_selinux_level": etcd_level,
    }
