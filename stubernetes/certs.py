"""`stubernetes matchbox-certs`: a CA, a server certificate for Matchbox's gRPC API and a client
certificate for the program, as Matchbox's own `scripts/tls/cert-gen` makes them (its
`openssl.conf`: the CA with `CA:true, pathlen:0` and `keyCertSign, cRLSign`; the server
certificate with `serverAuth` and the server's names as subject alternative names; the client
certificate with `clientAuth`), with ECDSA P-256 keys instead of RSA.

Matchbox's gRPC server asks for and verifies a client certificate signed by its `-ca-file`;
the program's provider verifies Matchbox's certificate against `matchbox.caCert` and the host
of `matchbox.rpcEndpoint`, which must be one of the server names.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")
# Matchbox's defaults for -ca-file, -cert-file and -key-file (poseidon/matchbox
# cmd/matchbox/main.go).
MATCHBOX_ETC = "/etc/matchbox"
RPC_PORT = 8081


@dataclass(frozen=True)
class Written:
    directory: Path
    servers: tuple[str, ...]
    not_after: datetime.datetime


def server_name(value: str) -> x509.GeneralName:
    """A subject alternative name: an IP address as such, anything else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if not value or not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label[0] != "-"
        for label in labels
    ):
        raise ValueError(f"--server {value!r}: not a DNS name or an IP address")
    return x509.DNSName(value.rstrip(".").lower())


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _signed(
    builder: x509.CertificateBuilder,
    key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    return (
        builder.public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(
    directory: Path, servers: Sequence[str], days: int, now: datetime.datetime | None = None
) -> Written:
    """Write the six files into `directory` (created; none of them may exist yet)."""
    names = [server_name(s) for s in servers]
    if not names:
        raise ValueError("--server: name at least one DNS name or IP address of Matchbox")
    if days < 1:
        raise ValueError(f"--days must be at least 1, got {days}")
    existing = [f for f in FILES if (directory / f).exists()]
    if existing:
        raise FileExistsError(
            f"{directory} already holds {', '.join(existing)}: not replacing a CA or its keys "
            "(choose another --out, or remove them first)"
        )
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=days)

    def builder(subject: x509.Name, issuer: x509.Name) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .not_valid_before(start)
            .not_valid_after(end)
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("stubernetes matchbox CA")
    ca = _signed(
        builder(ca_name, ca_name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign_certs=True), critical=True),
        ca_key,
        ca_key,
    )
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(common_name: str, usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
        return (
            builder(_name(common_name), ca_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(authority, critical=False)
        )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _signed(
        leaf(str(servers[0]), ExtendedKeyUsageOID.SERVER_AUTH).add_extension(
            x509.SubjectAlternativeName(names), critical=False
        ),
        server_key,
        ca_key,
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _signed(leaf("stubernetes", ExtendedKeyUsageOID.CLIENT_AUTH), client_key, ca_key)

    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
        "server.crt": server.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem_key(server_key),
        "client.crt": client.public_bytes(serialization.Encoding.PEM),
        "client.key": _pem_key(client_key),
    }
    for name, data in contents.items():
        mode = 0o600 if name.endswith(".key") else 0o644
        # Created with its final mode: a key is never readable by others, not even briefly.
        descriptor = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    return Written(directory, tuple(servers), end)


def instructions(written: Written) -> str:
    d = written.directory
    q = {name: shlex.quote(str(d / name)) for name in FILES}
    # rpcEndpoint is host:port with a host without colons: an IPv6 name cannot be one.
    endpoints = [f"{s}:{RPC_PORT}" for s in written.servers if ":" not in s]
    etc = MATCHBOX_ETC
    return "\n".join(
        [
            f"wrote {', '.join(str(d / f) for f in FILES)}",
            f"server certificate for {', '.join(written.servers)}; all three valid until "
            f"{written.not_after:%Y-%m-%d}",
            "",
            "On the Matchbox host (the paths are Matchbox's defaults for these flags):",
            f"  sudo install -d -m 0755 {etc}",
            f"  sudo install -m 0644 {q['ca.crt']} {q['server.crt']} {etc}/",
            f"  sudo install -m 0600 -o matchbox -g matchbox {q['server.key']} {etc}/"
            "    # owned by the user Matchbox runs as",
            f"  matchbox -address=0.0.0.0:8080 -rpc-address=0.0.0.0:{RPC_PORT} "
            f"-ca-file={etc}/ca.crt -cert-file={etc}/server.crt -key-file={etc}/server.key",
            "",
            "For the program, in your stack (each value read from standard input):",
            f"  pulumi config set --secret --path matchbox.caCert < {q['ca.crt']}",
            f"  pulumi config set --secret --path matchbox.clientCert < {q['client.crt']}",
            f"  pulumi config set --secret --path matchbox.clientKey < {q['client.key']}",
            *(
                [f"  pulumi config set --path matchbox.rpcEndpoint {shlex.quote(endpoints[0])}"]
                + (
                    [f"  (rpcEndpoint may name any of: {', '.join(endpoints)})"]
                    if len(endpoints) > 1
                    else []
                )
                if endpoints
                else []
            ),
            "",
            f"Keep {q['ca.key']} offline: neither Matchbox nor the program needs it; it only "
            "signs new certificates.",
        ]
    )
