"""Cluster key material that Ignition carries to the machines.

The Pulumi layer passes generated secrets; tests and the offline render pass stand-in material
derived from a seed (`standin_material`), which is real, self-consistent key material so that a
rendered config can be checked end to end, but must never be deployed.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class CertificateAuthority:
    cert_pem: str
    key_pem: str


@dataclass(frozen=True)
class ClusterMaterial:
    """What kubeadm reuses when it finds it in /etc/kubernetes/pki before init or join."""

    ca: CertificateAuthority
    front_proxy_ca: CertificateAuthority
    etcd_ca: CertificateAuthority
    service_account_key_pem: str
    service_account_pub_pem: str

    @property
    def ca_cert_hash(self) -> str:
        return ca_cert_hash(self.ca.cert_pem)

    def kubeadm_files(self) -> dict[str, str]:
        """The material by the file names kubeadm looks for under /etc/kubernetes/pki."""
        return {
            "ca.crt": self.ca.cert_pem,
            "ca.key": self.ca.key_pem,
            "sa.key": self.service_account_key_pem,
            "sa.pub": self.service_account_pub_pem,
            "front-proxy-ca.crt": self.front_proxy_ca.cert_pem,
            "front-proxy-ca.key": self.front_proxy_ca.key_pem,
            "etcd/ca.crt": self.etcd_ca.cert_pem,
            "etcd/ca.key": self.etcd_ca.key_pem,
        }


def ca_cert_hash(cert_pem: str) -> str:
    """kubeadm's discovery hash: sha256 of the CA certificate's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def is_bootstrap_token(token: str) -> bool:
    head, sep, tail = token.partition(".")
    return (
        bool(sep)
        and len(head) == 6
        and len(tail) == 16
        and all(c in TOKEN_ALPHABET for c in head + tail)
    )


# --- stand-in material, derived from a seed -------------------------------------------------

_EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def derived_key(seed: str, label: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"stubernetes-standin/{seed}/{label}".encode()).digest()
    # Reduce into [1, n-1] of P-256; sha256 output is already below the order with huge odds.
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(int.from_bytes(digest) % (order - 1) + 1, ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _standin_ca(seed: str, common_name: str) -> CertificateAuthority:
    key = derived_key(seed, common_name)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    serial = int.from_bytes(hashlib.sha256(f"{seed}/{common_name}".encode()).digest()[:16]) >> 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_EPOCH)
        .not_valid_after(_EPOCH + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # Deterministic ECDSA (RFC 6979) keeps the same seed rendering byte-identical output.
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return CertificateAuthority(
        cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key)
    )


def standin_cluster_material(seed: str) -> ClusterMaterial:
    sa_key = derived_key(seed, "service-accounts")
    return ClusterMaterial(
        ca=_standin_ca(seed, "kubernetes"),
        front_proxy_ca=_standin_ca(seed, "front-proxy-ca"),
        etcd_ca=_standin_ca(seed, "etcd-ca"),
        service_account_key_pem=key_pem(sa_key),
        service_account_pub_pem=sa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    )


def standin_bootstrap_token(seed: str, machine: str) -> str:
    digest = hashlib.sha256(f"stubernetes-standin/{seed}/token/{machine}".encode()).digest()
    chars = "".join(TOKEN_ALPHABET[b % len(TOKEN_ALPHABET)] for b in digest[:22])
    return f"{chars[:6]}.{chars[6:22]}"


def standin_certificate_secret(seed: str, machine: str) -> str:
    """Stand-in for a controller install's random secret, from which its certificate key is
    derived (ignition.kubeadm_certs.certificate_key)."""
    label = f"stubernetes-standin/{seed}/certificate-key/{machine}"
    return hashlib.sha256(label.encode()).hexdigest()
