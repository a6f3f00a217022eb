"""Stand-in outputs for pulumi_tls resources under mocks: real, deterministic key material.

Keys are derived from the render seed and the resource's name; signatures are deterministic
(RFC 6979), validity starts at a fixed date, so one seed always renders the same bytes, and the
rendered configs are self-consistent (a join config's CA hash matches the CA a controller holds).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ignition.material import derived_key, key_pem

EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def _private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), "stand-ins are ECDSA only"
    return key


def _name(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attributes = []
    if subject.get("organization"):
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    if subject.get("commonName"):
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    return x509.Name(attributes)


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:16]) >> 1


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    label: str,
    hours: float,
    epoch: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(_serial(label))
        .not_valid_before(epoch)
        .not_valid_after(epoch + datetime.timedelta(hours=hours))
    )


def private_key(seed: str, name: str) -> dict[str, str]:
    key = derived_key(seed, f"tls/{name}")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"privateKeyPem": key_pem(key), "publicKeyPem": public.decode()}


def self_signed_cert(
    name: str, inputs: dict[str, Any], epoch: datetime.datetime = EPOCH
) -> dict[str, str]:
    key = _private_key(inputs["privateKeyPem"])
    subject = _name(inputs.get("subject"))
    builder = _builder(
        subject, subject, key.public_key(), name, inputs["validityPeriodHours"], epoch
    )
    if inputs.get("isCaCertificate"):
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    cert = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return {"certPem": _pem(cert)}


def cert_request(inputs: dict[str, Any]) -> dict[str, str]:
    key = _private_key(inputs["privateKeyPem"])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(inputs.get("subject")))
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return {"certRequestPem": request.public_bytes(serialization.Encoding.PEM).decode()}


def locally_signed_cert(
    name: str, inputs: dict[str, Any], epoch: datetime.datetime = EPOCH
) -> dict[str, str]:
    request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _private_key(inputs["caPrivateKeyPem"])
    builder = _builder(
        request.subject,
        ca_cert.subject,
        request.public_key(),
        name,
        inputs["validityPeriodHours"],
        epoch,
    )
    if "client_auth" in inputs.get("allowedUses", []):
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    return {"certPem": _pem(cert)}
