"""`stubernetes matchbox-certs`: a CA, Matchbox's gRPC server certificate and the program's
client certificate, checked by a mutual-TLS handshake in Python on loopback (and, marked
`real`, by the real Matchbox's gRPC API)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stubernetes.cli import main

SERVERS = ("localhost", "127.0.0.1", "matchbox.lab.home.arpa")


def make(out: Path, capsys: pytest.CaptureFixture[str], *servers: str) -> str:
    args = ["matchbox-certs", "--out", str(out)]
    for server in servers:
        args += ["--server", server]
    assert main(args) == 0
    return capsys.readouterr().out


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_a_ca_and_two_certificates_with_private_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    make(out, capsys, *SERVERS)
    assert sorted(p.name for p in out.iterdir()) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "server.crt",
        "server.key",
    ]
    for key in ("ca.key", "server.key", "client.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600, key
    ca = certificate(out / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = certificate(out / "server.crt")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "matchbox.lab.home.arpa"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client = certificate(out / "client.crt")
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in (server, client):
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)


def test_prints_the_matchbox_flags_and_the_config_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    printed = make(out, capsys, "matchbox.lab.home.arpa", "192.168.10.5").splitlines()
    assert (
        "  matchbox -address=0.0.0.0:8080 -rpc-address=0.0.0.0:8081 -ca-file=/etc/matchbox/ca.crt"
        " -cert-file=/etc/matchbox/server.crt -key-file=/etc/matchbox/server.key"
    ) in printed
    for key, name in (
        ("caCert", "ca.crt"),
        ("clientCert", "client.crt"),
        ("clientKey", "client.key"),
    ):
        assert f"  pulumi config set --secret --path matchbox.{key} < {out / name}" in printed
    assert "  pulumi config set --path matchbox.rpcEndpoint matchbox.lab.home.arpa:8081" in printed


def test_refuses_to_replace_existing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    make(out, capsys, "localhost")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["matchbox-certs", "--out", str(out), "--server", "localhost"]) == 2
    assert "not replacing a CA or its keys" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bad_server_names_are_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matchbox-certs", "--out", str(tmp_path / "c"), "--server", "no spaces"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: --server 'no spaces': not a DNS name or an IP address"]
    assert not (tmp_path / "c").exists()


@contextmanager
def tls_server(out: Path) -> Iterator[tuple[int, list[str]]]:
    """A TLS server on loopback with Matchbox's configuration: its certificate, and client
    certificates required and verified against the CA (matchbox/tlsutil: ClientAuth
    RequireAndVerifyClientCert). Yields its port and the outcome of each connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(out / "server.crt", out / "server.key")
    context.load_verify_locations(out / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    outcomes: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    der = tls.getpeercert(binary_form=True)
                    assert der is not None
                    peer = x509.load_der_x509_certificate(der)
                    (name,) = peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                    outcomes.append(f"client {name.value!s}")
                    tls.sendall(b"hello\n")
            except (ssl.SSLError, OSError) as error:
                outcomes.append(f"refused: {error}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], outcomes
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=10)


def client_context(out: Path, with_certificate: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(out / "ca.crt"))
    if with_certificate:
        context.load_cert_chain(out / "client.crt", out / "client.key")
    return context


def handshake(port: int, context: ssl.SSLContext, server_name: str) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.recv(16)


def test_mutual_tls_handshake_on_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    make(out, capsys, "localhost", "127.0.0.1")
    with tls_server(out) as (port, outcomes):
        # By DNS name and by IP address, as rpcEndpoint may name the server either way.
        assert handshake(port, client_context(out), "localhost") == b"hello\n"
        assert handshake(port, client_context(out), "127.0.0.1") == b"hello\n"
        # A name the server certificate does not carry: the client refuses the server.
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, client_context(out), "matchbox.elsewhere.example")
        # No client certificate: the server refuses the client.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(port, client_context(out, with_certificate=False), "localhost")
    assert outcomes[:2] == ["client stubernetes", "client stubernetes"]
    assert all(o.startswith("refused") for o in outcomes[2:]) and len(outcomes) == 4


def test_certificates_of_another_ca_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    make(ours, capsys, "localhost")
    make(theirs, capsys, "localhost")
    with tls_server(ours) as (port, outcomes):
        stranger = ssl.create_default_context(cafile=str(ours / "ca.crt"))
        stranger.load_cert_chain(theirs / "client.crt", theirs / "client.key")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(port, stranger, "localhost")
    assert len(outcomes) == 1 and outcomes[0].startswith("refused")


@pytest.mark.real
def test_the_real_matchbox_grpc_api_accepts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Matchbox v0.11.0 started with the printed flags' files serves its gRPC API to the
    client certificate (the real counterpart built by scripts/tools)."""
    from matchbox_grpc import MatchboxClient, TLSFiles, generate_stubs, start_matchbox

    out = tmp_path / "certs"
    make(out, capsys, "127.0.0.1")
    tls = TLSFiles(
        out / "ca.crt",
        out / "server.crt",
        out / "server.key",
        out / "client.crt",
        out / "client.key",
    )
    data = tmp_path / "data"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True)
    (tmp_path / "assets").mkdir()
    stubs = generate_stubs(tmp_path / "stubs")
    server = start_matchbox(data, tmp_path / "assets", tmp_path, tls=tls, name="matchbox-certs")
    try:
        with MatchboxClient(server.rpc_target, tls, stubs) as client:
            client.wait_ready()
            assert client.profile_list() == []
    finally:
        server.stop()
