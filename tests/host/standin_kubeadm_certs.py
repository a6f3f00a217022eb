"""Stand-in kubeadm, its certificates: download-certs, `certs check-expiration`, `certs renew`.

A stand-in for what kubeadm does with the cluster's certificates on a machine. Modelled on
kubernetes v1.36.3:
- `kubeadm join`'s download-certs phase (control-plane-prepare) gets the kubeadm-certs Secret
  with the bootstrap token, decrypts every entry with the certificate key and writes the shared
  CA material under /etc/kubernetes/pki (cmd/kubeadm/app/cmd/phases/join/
  controlplaneprepare.go runControlPlanePrepareDownloadCertsPhaseLocal; cmd/kubeadm/app/phases/
  copycerts/copycerts.go DownloadCerts, getSecret, getDataFromSecret,
  certOrKeyNameToSecretName; the AES-GCM of cmd/kubeadm/app/util/crypto/crypto.go
  DecryptBytes, the nonce first). Its errors are kubeadm's, wrapped as it wraps them.
- `kubeadm certs check-expiration -o jsonpath=...` and `kubeadm certs renew NAME`: see the
  section below. COMPONENT_CERTS, the certificates each static pod loads, is what the
  runtime's static pods (standin_runtime.py) and the renewal tests group by.
"""

from __future__ import annotations

import os
import sys
import time

from standin_call import Call, exists, option, out, write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from standin_call import JSON

K8S = "/etc/kubernetes"
PKI = K8S + "/pki"
# What kubeadm reuses when it finds it, and a control-plane join requires.
SHARED_CA = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)


class KubeadmError(Exception):
    """A failure as kubeadm reports it: "error execution phase PHASE: MESSAGE"."""

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(f"error execution phase {phase}: {message}")


CERTS_SECRET = "kube-system/kubeadm-certs"
KUBEADM_CERTS_ROLE = "role/kube-system/kubeadm:kubeadm-certs"
NONCE_BYTES = 12


def download_certs(call: Call) -> None:
    """`kubeadm join` control-plane-prepare's download-certs phase (see the module's docstring)."""
    phase = "control-plane-prepare/download-certs"
    out(
        '[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the '
        '"kube-system" Namespace'
    )
    try:
        key = bytes.fromhex(call.facts["certificate_key"])
    except ValueError:
        raise KubeadmError(
            phase, "error downloading certs: error decoding certificate key: invalid byte"
        ) from None
    token_id = call.facts["token"].split(".")[0]
    if KUBEADM_CERTS_ROLE not in call.cluster["objects"]:
        # Without kubeadm's Role and RoleBinding (copycerts.go createRBAC) a bootstrap token
        # may not read the Secret.
        raise KubeadmError(
            phase,
            'error downloading certs: error downloading the secret: secrets "kubeadm-certs" is '
            f'forbidden: User "system:bootstrap:{token_id}" cannot get resource "secrets" in '
            'API group "" in the namespace "kube-system"',
        )
    secret = call.cluster.get("secrets", {}).get(CERTS_SECRET)
    if secret is None:
        raise KubeadmError(
            phase,
            'error downloading certs: error downloading the secret: Secret "kubeadm-certs" was '
            'not found in the "kube-system" Namespace. This Secret might have expired. Please, '
            "run `kubeadm init phase upload-certs --upload-certs` on a control plane to "
            "generate a new one",
        )
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) not in (16, 24, 32):
        raise KubeadmError(
            phase,
            "error downloading certs: error decoding secret data with provided key: "
            f"crypto/aes: invalid key size {len(key)}",
        )
    plain = {}
    for entry, value in secret["data"].items():
        sealed = base64.b64decode(value)
        if len(sealed) < NONCE_BYTES:
            raise KubeadmError(
                phase,
                "error downloading certs: error decoding secret data with provided key: "
                "size of data is less than the nonce",
            )
        try:
            plain[entry] = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
        except InvalidTag:
            raise KubeadmError(
                phase,
                "error downloading certs: error decoding secret data with provided key: "
                "cipher: message authentication failed",
            ) from None
    for name in SHARED_CA:
        data = plain.get(name.replace("/", "-"))
        if data is None:
            raise KubeadmError(
                phase,
                "error downloading certs: the Secret does not include the required certificate "
                f"or key - name: {name}, path: {PKI}/{name}",
            )
        # keyutil.WriteKey (0600) for a private key, certutil.WriteCert (0644) otherwise.
        write_file(f"{PKI}/{name}", data.decode(), 0o600 if name.endswith(".key") else 0o644)
    call.step("control-plane-prepare/download-certs")


# ------------------------------------------------------------------------------ kubeadm certs
#
# Modelled on kubernetes v1.36.3: `cmd/kubeadm/app/cmd/certs.go` (check-expiration builds an
# output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo, fetchCertificateExpirationInfo, and
# prints it with the printer `-o` names; `renew <name>` is renewCert) and
# `cmd/kubeadm/app/phases/certs/renewal/manager.go` (the certificates, sorted by name; a
# certificate is externally managed when its CA's key is absent, certs.go UsingExternalCA).
# A certificate's expiry is the machine state's `certificates[name]` (epoch seconds) when a test
# set one, else one year after its file was written (constants.CertificateValidityPeriod);
# a renewal makes it one year from now.

CERTIFICATE_VALIDITY_SECONDS = 365 * 24 * 3600
# name -> (file, CA base name, long name), from certsphase (certlist.go) and the manager's
# kubeconfig list.
KUBEADM_CERTS = {
    "admin.conf": (
        f"{K8S}/admin.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
    ),
    "apiserver": (f"{PKI}/apiserver.crt", "ca", "certificate for serving the Kubernetes API"),
    "apiserver-etcd-client": (
        f"{PKI}/apiserver-etcd-client.crt",
        "etcd/ca",
        "certificate the apiserver uses to access etcd",
    ),
    "apiserver-kubelet-client": (
        f"{PKI}/apiserver-kubelet-client.crt",
        "ca",
        "certificate for the API server to connect to kubelet",
    ),
    "controller-manager.conf": (
        f"{K8S}/controller-manager.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the controller manager to use",
    ),
    "etcd-healthcheck-client": (
        f"{PKI}/etcd/healthcheck-client.crt",
        "etcd/ca",
        "certificate for liveness probes to healthcheck etcd",
    ),
    "etcd-peer": (
        f"{PKI}/etcd/peer.crt",
        "etcd/ca",
        "certificate for etcd nodes to communicate with each other",
    ),
    "etcd-server": (f"{PKI}/etcd/server.crt", "etcd/ca", "certificate for serving etcd"),
    "front-proxy-client": (
        f"{PKI}/front-proxy-client.crt",
        "front-proxy-ca",
        "certificate for the front proxy client",
    ),
    "scheduler.conf": (
        f"{K8S}/scheduler.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the scheduler manager to use",
    ),
    "super-admin.conf": (
        f"{K8S}/super-admin.conf",
        "ca",
        "certificate embedded in the kubeconfig file for the super-admin",
    ),
}
# The static pods' certificates, as `kubeadm upgrade` renews them for each component
# (cmd/kubeadm/app/phases/upgrade/staticpods.go renewCertsByComponent): what a container
# loaded when it started.
COMPONENT_CERTS = {
    "etcd": ("etcd-server", "etcd-peer", "etcd-healthcheck-client"),
    "kube-apiserver": (
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-client",
        "apiserver-etcd-client",
    ),
    "kube-controller-manager": ("controller-manager.conf",),
    "kube-scheduler": ("scheduler.conf",),
}
CA_NAMES = {"ca": "ca", "etcd/ca": "etcd-ca", "front-proxy-ca": "front-proxy-ca"}


def certificate_expiry(call: Call, name: str) -> float:
    expiry = call.machine.get("certificates", {}).get(name)
    if expiry is not None:
        return float(expiry)
    return os.stat(KUBEADM_CERTS[name][0]).st_mtime + CERTIFICATE_VALIDITY_SECONDS


def certificate_entry(name: str, expiry: float | None, external: bool, ca_name: str) -> JSON:
    """One certificate of CertificateExpirationInfo (apis/output/v1alpha3 types.go) as JSON
    has it: a missing one (expiry None) has a null date and no caName (omitempty)."""
    if expiry is None:
        return {
            "name": name,
            "expirationDate": None,
            "residualTime": 0,
            "externallyManaged": False,
            "missing": True,
        }
    return {
        "name": name,
        "expirationDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry)),
        "residualTime": int(expiry - time.time()),
        "externallyManaged": external,
        "caName": ca_name,
        "missing": False,
    }


def expiration_info(call: Call) -> JSON:
    """The CertificateExpirationInfo object that check-expiration prints."""
    certificates = []
    for name in sorted(KUBEADM_CERTS):
        path, ca, _long = KUBEADM_CERTS[name]
        present = exists(path)
        certificates.append(
            certificate_entry(
                name,
                certificate_expiry(call, name) if present else None,
                not exists(f"{PKI}/{ca}.key"),
                CA_NAMES[ca],
            )
        )
    return {
        "kind": "CertificateExpirationInfo",
        "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "certificates": certificates,
    }


def jsonpath_value(value: object) -> str:
    """How client-go's jsonpath prints a JSON value: strings bare, booleans and null as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise KubeadmError("check-expiration", f"stand-in: no model for printing {value!r}")


def jsonpath(template: str, data: JSON) -> str:
    """The part of client-go's jsonpath (k8s.io/client-go/util/jsonpath) that a template of
    `{range .LIST[*]}`, `{.FIELD}`, `{"literal"}` and `{end}` uses; anything else is refused."""
    tokens: list[tuple[str, str]] = []
    rest = template
    while rest:
        start = rest.find("{")
        if start != 0:
            text = rest if start < 0 else rest[:start]
            tokens.append(("text", text))
            rest = rest[len(text) :]
            continue
        end = rest.find("}")
        if end < 0:
            raise KubeadmError("check-expiration", f"unclosed action in {template!r}")
        tokens.append(("expr", rest[1:end]))
        rest = rest[end + 1 :]
    tree, position = jsonpath_tree(tokens, 0)
    if position != len(tokens):
        raise KubeadmError("check-expiration", "not in range, nothing to end")
    output: list[str] = []
    jsonpath_eval(tree, data, output)
    return "".join(output)


def jsonpath_tree(tokens: list[tuple[str, str]], position: int) -> tuple[list[Any], int]:
    """The nodes up to the `{end}` that closes the range they are in (or the template's end)."""
    nodes: list[Any] = []
    while position < len(tokens):
        kind, value = tokens[position]
        position += 1
        if (kind, value) == ("expr", "end"):
            return nodes, position - 1
        if kind == "expr" and value.startswith("range "):
            body, position = jsonpath_tree(tokens, position)
            if position >= len(tokens):
                raise KubeadmError("check-expiration", "unclosed range")
            position += 1
            nodes.append(("range", value, body))
        else:
            nodes.append((kind, value, []))
    return nodes, position


def jsonpath_eval(nodes: list[Any], item: JSON, output: list[str]) -> None:
    for kind, value, body in nodes:
        if kind == "text":
            output.append(value)
        elif value.startswith('"') and value.endswith('"'):
            output.append(value[1:-1].replace("\\t", "\t").replace("\\n", "\n"))
        elif kind == "range" and value.startswith("range .") and value.endswith("[*]"):
            items = item.get(value[len("range .") : -3])
            if not isinstance(items, list):
                raise KubeadmError("check-expiration", f"{value} is not found")
            for element in items:
                jsonpath_eval(body, element, output)
        elif value.startswith(".") and value[1:].isalnum():
            if value[1:] not in item:
                raise KubeadmError("check-expiration", f"{value[1:]} is not found")
            output.append(jsonpath_value(item[value[1:]]))
        else:
            raise KubeadmError("check-expiration", f"stand-in: no model for {{{value}}}")


def kubeadm_certs(call: Call) -> None:
    words = [a for a in call.args if not a.startswith("-")]
    output = option(call.args, "-o") or option(call.args, "--output")
    if words == ["certs", "check-expiration"] or (
        words[:2] == ["certs", "check-expiration"] and words[2:] == [output]
    ):
        if output is None or not output.startswith("jsonpath="):
            # The default table, and json/yaml, are not modelled: the script reads jsonpath.
            raise KubeadmError("check-expiration", f"stand-in: unmodeled output {output!r}")
        sys.stdout.write(jsonpath(output[len("jsonpath=") :], expiration_info(call)))
        sys.stdout.flush()
        call.step("check-expiration", last=True)
        return
    if words[:2] == ["certs", "renew"] and len(words) == 3 and len(call.args) == 3:
        name = words[2]
        if name not in KUBEADM_CERTS:
            raise KubeadmError("renew", f'unknown command "{name}" for "kubeadm certs renew"')
        path, ca, long_name = KUBEADM_CERTS[name]
        # Before renewCert: "Reading configuration from the cluster" (getInternalCfg).
        out(
            '[renew] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
            '"kube-system"...',
            "[renew] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' "
            "to re-upload it.",
            "",
        )
        if not exists(path):
            out(f"MISSING! {long_name}")
            return
        if not exists(f"{PKI}/{ca}.key"):
            out(f"Detected external {ca}, {long_name} can't be renewed")
            return
        expiry = time.time() + CERTIFICATE_VALIDITY_SECONDS
        call.machine.setdefault("certificates", {})[name] = expiry
        with open(path, "a") as file:
            file.write(f"# stand-in: renewed, expires {expiry:.0f}\n")
        call.step("renew", last=True)
        out(f"{long_name} renewed")
        return
    raise KubeadmError("certs", f"stand-in: unmodeled {call.args}")
