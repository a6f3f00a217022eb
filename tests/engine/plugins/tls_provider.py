"""A stand-in for the ``tls`` provider: PrivateKey, CertRequest, SelfSignedCert and
LocallySignedCert, with real keys and certificates (Python ``cryptography``).

Upstream: pulumi/pulumi-tls 5.6.2 (what ``pulumi-tls==5.6.2`` asks the engine for) bridges
hashicorp/terraform-provider-tls, a Plugin Framework provider; the rules are its
``internal/provider/`` ``resource_private_key.go``, ``resource_cert_request.go``,
``resource_self_signed_cert.go``, ``resource_locally_signed_cert.go``, ``common_key.go``,
``common_cert.go`` and ``common.go`` (read at d72d90e, the newest commit fetched; pulumi-tls
pins a May 2026 pseudo-version of it), planned and diffed the way the bridge does it
(``server.Schema``). pulumi-tls's ``provider/resources.go`` adds no default and no
``DeleteBeforeReplace``: a replacement is create-before-delete. Delete does nothing upstream.

Not modelled: the write-only ``*Wo`` inputs (Check refuses them), ``max_path_length`` on a
certificate that is not a CA (``cryptography`` refuses it), and the exact ASN.1 string types
Go chooses for subject names.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from engine.plugins.server import (
    UNKNOWN,
    WARNING,
    Attr,
    Call,
    CheckFailure,
    DiffResult,
    Props,
    Provider,
    ProviderError,
    Resource,
    Schema,
    Value,
    is_known,
    reveal,
    serve,
)

PrivateKeyType: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
)
PublicKeyType: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# types.go: the algorithms and curves, and the PEM preambles of the private keys.
ALGORITHMS = ("RSA", "ECDSA", "ED25519")
CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}
PRIVATE_KEY_PREAMBLES = ("RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY")

# common_cert.go keyUsages and extendedKeyUsages.
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "cert_signing",
    "crl_signing",
    "encipher_only",
    "decipher_only",
)
EXTENDED_KEY_USAGES: dict[str, ObjectIdentifier] = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}
SUPPORTED_USES = sorted((*KEY_USAGES, *EXTENDED_KEY_USAGES))

# common.go requireReplaceIfStateContainsPEMString's pattern.
PEM_PATTERN = re.compile(r"-----BEGIN [A-Za-z ]+-----\n(.|\s)+\n-----END [A-Za-z ]+-----\n?")


def replace_if_state_is_pem(prior: Value, planned: Value) -> bool:
    """common.go requireReplaceIfStateContainsPEMString: a changed value replaces when the
    stored one is a PEM string."""
    stored = reveal(prior)
    return isinstance(stored, str) and PEM_PATTERN.fullmatch(stored) is not None


# ------------------------------------------------------------------------------- helpers

_GO_SPACE = re.compile(
    rb"^(?:[\t\n\v\f\r ]|\xc2\x85|\xc2\xa0|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]"
    rb"|\xe2\x81\x9f|\xe3\x80\x80)+|(?:[\t\n\v\f\r ]|\xc2\x85|\xc2\xa0|\xe1\x9a\x80"
    rb"|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80)+$"
)


def hash_for_state(value: bytes) -> str:
    """common.go hashForState: the hex SHA-1 of the value after Go's strings.TrimSpace
    (ASCII and Unicode white space at either end), "" for an empty value."""
    if not value:
        return ""
    return hashlib.sha1(_GO_SPACE.sub(b"", value)).hexdigest()


def go_time(moment: datetime.datetime) -> str:
    """Go's ``time.Time.MarshalText`` (RFC 3339 with nanoseconds, trailing zeros dropped; "Z"
    for UTC) of a local time, as ``time.Now()`` gives it."""
    moment = moment.astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_go_time(text: str) -> datetime.datetime:
    """``time.Parse(time.RFC3339, ...)``."""
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise ProviderError(f"Failed to parse data from string: {text}")
    fraction = (match.group(2) or "")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.datetime.fromisoformat(match.group(1) + fraction + zone)


def now() -> datetime.datetime:
    """common.go overridableTimeFunc (a test may replace it)."""
    return datetime.datetime.now().astimezone()


def pem_block(kind: str, der: bytes) -> str:
    """Go's ``pem.EncodeToMemory``: base64 in lines of 64."""
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {kind}-----\n"
        + "".join(f"{line}\n" for line in lines)
        + (f"-----END {kind}-----\n")
    )


def _pem_type(pem: str) -> tuple[str, bytes]:
    match = re.search(r"-----BEGIN ([^-]+)-----\n(.*?)\n?-----END \1-----", pem, re.S)
    if match is None:
        raise ProviderError(f"failed to decode PEM block: decoded bytes 0, undecoded {len(pem)}")
    return match.group(1), base64.b64decode("".join(match.group(2).split()))


def parse_private_key_pem(pem: str) -> tuple[PrivateKeyType, str]:
    """common_key.go parsePrivateKeyPEM: the PEM preamble picks the parser; the key's type
    gives the algorithm."""
    kind, der = _pem_type(pem)
    if kind not in PRIVATE_KEY_PREAMBLES:
        raise ProviderError(f"unable to determine parser for PEM preamble: {kind}")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as error:
        raise ProviderError(
            f"failed to parse private key given PEM preamble '{kind}': {error}"
        ) from error
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ECDSA"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key, "ED25519"
    raise ProviderError(f"unsupported private key type: {type(key).__name__}")


def _signing_hash(key: PrivateKeyType) -> hashes.HashAlgorithm | None:
    # Go crypto/x509 signingParamsForKey: SHA-256 for RSA and P-224/P-256, SHA-384 for
    # P-384, SHA-512 for P-521, none (PureEd25519) for Ed25519.
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size, hashes.SHA256())
    return hashes.SHA256()


def subject_key_id(public: PublicKeyType) -> bytes:
    """common_cert.go generateSubjectKeyID: SHA-1 of the ASN.1 RSA public key, of the
    uncompressed EC point, or of the Ed25519 key as an ASN.1 OCTET STRING."""
    if isinstance(public, rsa.RSAPublicKey):
        data = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        data = b"\x04\x20" + public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return hashlib.sha1(data).digest()


def subject_name(subject: Value) -> x509.Name:
    """common_cert.go createSubjectDistinguishedNames, in the order Go's pkix.Name writes
    them (country, province, locality, street, postal code, organization, unit, common name,
    serial number, then the e-mail address as an extra name)."""
    plain = reveal(subject)
    if not isinstance(plain, dict):
        return x509.Name([])
    order: list[tuple[str, ObjectIdentifier]] = [
        ("country", NameOID.COUNTRY_NAME),
        ("province", NameOID.STATE_OR_PROVINCE_NAME),
        ("locality", NameOID.LOCALITY_NAME),
        ("streetAddresses", NameOID.STREET_ADDRESS),
        ("postalCode", NameOID.POSTAL_CODE),
        ("organization", NameOID.ORGANIZATION_NAME),
        ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
        ("commonName", NameOID.COMMON_NAME),
        ("serialNumber", NameOID.SERIAL_NUMBER),
        ("emailAddress", NameOID.EMAIL_ADDRESS),
    ]
    attributes: list[x509.NameAttribute[str]] = []
    for key, oid in order:
        value = plain.get(key)
        values = value if isinstance(value, list) else [value]
        attributes += [x509.NameAttribute(oid, str(v)) for v in values if v is not None]
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])


def _strings(value: Value) -> list[str]:
    plain = reveal(value)
    return [str(v) for v in plain] if isinstance(plain, list) else []


def alternative_names(props: Mapping[str, Value]) -> list[x509.GeneralName]:
    """DNS names, IP addresses (``net.ParseIP``) and URIs, in that order."""
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in _strings(props.get("dnsNames"))]
    for text in _strings(props.get("ipAddresses")):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise ProviderError(f'Invalid IP address: Failed to parse "{text}"') from None
    names += [x509.UniformResourceIdentifier(u) for u in _strings(props.get("uris"))]
    return names


# ------------------------------------------------------------------------------- schemas

SUBJECT_REPLACES = True  # every attribute of the subject block is RequiresReplace


def _cert_attrs(self_signed: bool) -> list[Attr]:
    """resource_self_signed_cert.go / resource_locally_signed_cert.go schemas: everything
    RequiresReplace but early_renewal_hours; the computed results UseStateForUnknown."""
    common = [
        Attr("validityPeriodHours", required=True, replace=True),
        Attr("allowedUses", required=True, replace=True),
        Attr("earlyRenewalHours", computed=True, default=0),
        Attr("isCaCertificate", computed=True, default=False, replace=True),
        Attr("maxPathLength", computed=True, keep_state=True, replace=True),
        Attr("setSubjectKeyId", computed=True, default=False, replace=True),
        Attr("certPem", config=False, computed=True, keep_state=True),
        Attr("readyForRenewal", config=False, computed=True, default=False),
        Attr("validityStartTime", config=False, computed=True, keep_state=True),
        Attr("validityEndTime", config=False, computed=True, keep_state=True),
        Attr("id", config=False, computed=True, keep_state=True),
    ]
    if self_signed:
        return [
            Attr("privateKeyPem", replace=replace_if_state_is_pem, sensitive=True),
            Attr("dnsNames", replace=True),
            Attr("ipAddresses", replace=True),
            Attr("uris", replace=True),
            Attr("subject", replace=SUBJECT_REPLACES),
            Attr("setAuthorityKeyId", computed=True, default=False, replace=True),
            Attr("keyAlgorithm", config=False, computed=True, keep_state=True),
            *common,
        ]
    return [
        Attr("caCertPem", required=True, replace=replace_if_state_is_pem),
        Attr("caPrivateKeyPem", required=True, replace=replace_if_state_is_pem, sensitive=True),
        Attr("certRequestPem", required=True, replace=replace_if_state_is_pem),
        Attr("caKeyAlgorithm", config=False, computed=True, keep_state=True),
        *common,
    ]


def _write_only_failures(news: Props) -> list[CheckFailure]:
    return [
        CheckFailure(key, "write-only inputs are not modelled by the tls stand-in")
        for key in news
        if key.endswith("Wo") or key.endswith("WoVersion")
    ]


def _at_least(news: Props, key: str, minimum: int) -> list[CheckFailure]:
    value = reveal(news.get(key))
    if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
        return [
            CheckFailure(key, f"Attribute {key} value must be at least {minimum}, got: {value}")
        ]
    return []


def _one_of(key: str, value: Value, allowed: Sequence[str]) -> list[CheckFailure]:
    plain = reveal(value)
    if plain is None or not is_known(plain) or plain in allowed:
        return []
    listed = " ".join(f'"{a}"' for a in allowed)
    return [CheckFailure(key, f'Attribute {key} value must be one of: [{listed}], got: "{plain}"')]


def _cert_failures(schema: Schema, news: Props) -> list[CheckFailure]:
    failures = schema.missing_required(news) + _write_only_failures(news)
    failures += _at_least(news, "validityPeriodHours", 0)
    failures += _at_least(news, "earlyRenewalHours", 0)
    failures += _at_least(news, "maxPathLength", -1)
    uses = reveal(news.get("allowedUses"))
    if isinstance(uses, list):
        for index, use in enumerate(uses):
            failures += _one_of(f"allowedUses[{index}]", use, SUPPORTED_USES)
    return failures


# --------------------------------------------------------------------------- PrivateKey


class PrivateKey(Resource):
    """resource_private_key.go and common_key.go."""

    token = "tls:index/privateKey:PrivateKey"
    schema = Schema(
        [
            Attr("algorithm", required=True, replace=True),
            Attr("rsaBits", computed=True, default=2048, replace=True),
            Attr("ecdsaCurve", computed=True, default="P224", replace=True),
            *(
                Attr(n, config=False, computed=True, sensitive=True)
                for n in ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8")
            ),
            *(
                Attr(n, config=False, computed=True)
                for n in (
                    "publicKeyPem",
                    "publicKeyOpenssh",
                    "publicKeyFingerprintMd5",
                    "publicKeyFingerprintSha256",
                    "id",
                )
            ),
        ]
    )

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        failures = self.schema.missing_required(news)
        failures += _one_of("algorithm", news.get("algorithm"), ALGORITHMS)
        failures += _one_of("ecdsaCurve", news.get("ecdsaCurve"), tuple(CURVES))
        return dict(news), failures

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        return self.schema.diff(olds, self.schema.plan(olds, news))

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.schema.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        algorithm = reveal(planned["algorithm"])
        key: PrivateKeyType
        # keyGenerators.
        if algorithm == "RSA":
            key = rsa.generate_private_key(65537, int(str(reveal(planned["rsaBits"]))))
        elif algorithm == "ECDSA":
            curve = CURVES.get(str(reveal(planned["ecdsaCurve"])))
            if curve is None:
                raise ProviderError(
                    f"invalid ECDSA curve; supported values are: {' '.join(CURVES)}"
                )
            key = ec.generate_private_key(curve)
        elif algorithm == "ED25519":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ProviderError(
                f'Invalid Key Algorithm: Key Algorithm "{algorithm}" is not supported'
            )
        planned.update(key_outputs(key))
        return str(planned["id"]), self.schema.outputs(planned, news)


def key_outputs(key: PrivateKeyType) -> Props:
    """resource_private_key.go Create and common_key.go setPublicKeyAttributes."""
    no_encryption = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    # PKCS#1 for RSA, SEC 1 for ECDSA ("EC PRIVATE KEY"), PKCS#8 for Ed25519.
    traditional = (
        serialization.PrivateFormat.PKCS8
        if isinstance(key, ed25519.Ed25519PrivateKey)
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    public = key.public_key()
    public_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # GOTCHA upstream: x/crypto/ssh does not handle P-224; those fields are then "".
    ssh_ok = not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1")
    private_openssh = public_openssh = md5 = sha256 = ""
    if ssh_ok:
        openssh = key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, no_encryption)
        kind, der = _pem_type(openssh.decode())
        private_openssh = pem_block(kind, der)  # Go's pem, 64 columns
        authorized = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        public_openssh = authorized + "\n"  # ssh.MarshalAuthorizedKey ends with "\n"
        wire = base64.b64decode(authorized.split()[1])
        md5 = ":".join(f"{b:02x}" for b in hashlib.md5(wire).digest())
        sha256 = "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")
    return {
        "privateKeyPem": key.private_bytes(pem, traditional, no_encryption).decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, no_encryption
        ).decode(),
        "privateKeyOpenssh": private_openssh,
        "id": hash_for_state(public_der),
        "publicKeyPem": pem_block("PUBLIC KEY", public_der),
        "publicKeyOpenssh": public_openssh,
        "publicKeyFingerprintMd5": md5,
        "publicKeyFingerprintSha256": sha256,
    }


# -------------------------------------------------------------------------- CertRequest


class CertRequest(Resource):
    """resource_cert_request.go."""

    token = "tls:index/certRequest:CertRequest"
    schema = Schema(
        [
            Attr("privateKeyPem", replace=replace_if_state_is_pem, sensitive=True),
            Attr("dnsNames", replace=True),
            Attr("ipAddresses", replace=True),
            Attr("uris", replace=True),
            Attr("subject", replace=SUBJECT_REPLACES),
            *(
                Attr(n, config=False, computed=True, keep_state=True)
                for n in ("keyAlgorithm", "certRequestPem", "id")
            ),
        ]
    )

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        failures = _write_only_failures(news)
        if news.get("privateKeyPem") is None:
            failures.append(CheckFailure("privateKeyPem", "privateKeyPem is required"))
        return self.schema.mark_sensitive_inputs(news), failures

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        return self.schema.diff(olds, self.schema.plan(olds, news))

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.schema.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        key, algorithm = parse_private_key_pem(str(reveal(planned["privateKeyPem"])))
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            subject_name(planned.get("subject"))
        )
        names = alternative_names(planned)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        request = builder.sign(key, _signing_hash(key))  # type: ignore[arg-type]
        der = request.public_bytes(serialization.Encoding.DER)
        planned.update(
            keyAlgorithm=algorithm,
            certRequestPem=pem_block("CERTIFICATE REQUEST", der),
            # `newState.ID = hashForState(string(certReqBytes))`
            id=hash_for_state(der),
        )
        return str(planned["id"]), self.schema.outputs(planned, news)


# --------------------------------------------------------------------------- certificates


def ready_for_renewal(props: Mapping[str, Value]) -> bool:
    """common_cert.go: "If 'early renewal' time has passed": now >= validity_end_time -
    early_renewal_hours (both known)."""
    end = reveal(props.get("validityEndTime"))
    early = reveal(props.get("earlyRenewalHours"))
    if not isinstance(end, str) or not isinstance(early, int):
        return False
    return parse_go_time(end) - datetime.timedelta(hours=early) <= now()


@dataclass(frozen=True)
class Template:
    subject: x509.Name
    names: list[x509.GeneralName]


class Certificate(Resource):
    """What SelfSignedCert and LocallySignedCert share (common_cert.go)."""

    schema: Schema

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        return self.schema.mark_sensitive_inputs(news), _cert_failures(self.schema, news)

    def plan(self, prior: Props | None, news: Props) -> tuple[Props, list[str]]:
        planned = self.schema.plan(prior, news)
        extra: list[str] = []
        # modifyPlanIfCertificateReadyForRenewal: once now >= validity_end_time -
        # early_renewal_hours, ready_for_renewal is planned unknown and requires replacement.
        if prior is not None and ready_for_renewal(planned):
            planned["readyForRenewal"] = UNKNOWN
            extra.append("readyForRenewal")
        return planned, extra

    def diff(self, id_: str, olds: Props, news: Props, old_inputs: Props) -> DiffResult:
        planned, extra = self.plan(olds, news)
        return self.schema.diff(olds, planned, extra)

    def update(
        self, call: Call, id_: str, olds: Props, news: Props, old_inputs: Props, preview: bool
    ) -> Props:
        # Update: updatedUsingPlan (only early_renewal_hours updates in place).
        planned, _ = self.plan(olds, news)
        return self.schema.outputs(planned, news)

    def read(self, call: Call, id_: str, state: Props, inputs: Props) -> tuple[str, Props, Props]:
        # Read: modifyStateIfCertificateReadyForRenewal sets ready_for_renewal in the state.
        if ready_for_renewal(state):
            state = {**state, "readyForRenewal": True}
        return id_, state, inputs

    def sign(
        self,
        planned: Props,
        template: Template,
        public: PublicKeyType,
        issuer: x509.Name,
        issuer_key: PrivateKeyType,
        parent_key_id: bytes | None,
        self_signed: bool,
    ) -> None:
        """common_cert.go createCertificate, and what Go's x509.CreateCertificate adds."""
        start = now()
        hours = int(str(reveal(planned["validityPeriodHours"])))
        end = start + datetime.timedelta(hours=hours)
        # A random serial below 2^128 (positive: cryptography refuses 0).
        serial = secrets.randbelow(1 << 128) or 1
        builder = (
            x509.CertificateBuilder()
            .subject_name(template.subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(end)
        )
        uses = _strings(planned.get("allowedUses"))
        flags = {use: use in uses for use in KEY_USAGES}
        if any(flags.values()):
            try:
                usage = x509.KeyUsage(
                    digital_signature=flags["digital_signature"],
                    content_commitment=flags["content_commitment"],
                    key_encipherment=flags["key_encipherment"],
                    data_encipherment=flags["data_encipherment"],
                    key_agreement=flags["key_agreement"],
                    key_cert_sign=flags["cert_signing"],
                    crl_sign=flags["crl_signing"],
                    encipher_only=flags["encipher_only"],
                    decipher_only=flags["decipher_only"],
                )
            except ValueError as error:
                # Go writes encipher_only/decipher_only without key_agreement; cryptography
                # refuses to: not modelled.
                raise ProviderError(
                    f"allowed uses not modelled by the stand-in: {error}"
                ) from error
            builder = builder.add_extension(usage, critical=True)
        extended = [EXTENDED_KEY_USAGES[u] for u in uses if u in EXTENDED_KEY_USAGES]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        is_ca = reveal(planned.get("isCaCertificate")) is True
        if is_ca and not template.subject.rdns:
            raise ProviderError(
                "Invalid Certificate Subject: Must contain at least one Distinguished Name when"
                " creating Certificate Authority (CA)"
            )
        max_path = reveal(planned.get("maxPathLength"))
        path_length = max_path if is_ca and isinstance(max_path, int) and max_path > 0 else None
        # `BasicConstraintsValid: true`: always written, critical.
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True
        )
        key_id = None
        if is_ca or reveal(planned.get("setSubjectKeyId")) is True:
            key_id = subject_key_id(public)
            builder = builder.add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
        authority = None
        if self_signed and reveal(planned.get("setAuthorityKeyId")) is True:
            if key_id is None:
                raise ProviderError(
                    "Invalid Certificate Authority: Could not determine Authority Key Identifier"
                )
            authority = key_id
        if not self_signed and issuer != template.subject and parent_key_id:
            # x509.CreateCertificate: the parent's SubjectKeyId, unless self-signed.
            authority = parent_key_id
        if authority is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier(authority, None, None), critical=False
            )
        if template.names:
            # Critical when the subject is empty (x509.go buildCertExtensions).
            builder = builder.add_extension(
                x509.SubjectAlternativeName(template.names),
                critical=not template.subject.rdns,
            )
        certificate = builder.sign(issuer_key, _signing_hash(issuer_key))  # type: ignore[arg-type]
        planned.update(
            id=str(serial),  # `id: template.SerialNumber.String()`
            certPem=pem_block("CERTIFICATE", certificate.public_bytes(serialization.Encoding.DER)),
            validityStartTime=go_time(start),
            validityEndTime=go_time(end),
        )
        if not is_known(planned.get("maxPathLength")):
            planned["maxPathLength"] = None  # "set to a concrete value (null if not specified)"


class SelfSignedCert(Certificate):
    """resource_self_signed_cert.go."""

    token = "tls:index/selfSignedCert:SelfSignedCert"
    schema = Schema(_cert_attrs(self_signed=True))

    def check(self, olds: Props, news: Props) -> tuple[Props, list[CheckFailure]]:
        inputs, failures = super().check(olds, news)
        if news.get("privateKeyPem") is None:
            failures.append(CheckFailure("privateKeyPem", "privateKeyPem is required"))
        return inputs, failures

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.schema.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        key, algorithm = parse_private_key_pem(str(reveal(planned["privateKeyPem"])))
        planned["keyAlgorithm"] = algorithm
        subject = subject_name(planned.get("subject"))
        template = Template(subject, alternative_names(planned))
        self.sign(planned, template, key.public_key(), subject, key, None, self_signed=True)
        return str(planned["id"]), self.schema.outputs(planned, news)


class LocallySignedCert(Certificate):
    """resource_locally_signed_cert.go."""

    token = "tls:index/locallySignedCert:LocallySignedCert"
    schema = Schema(_cert_attrs(self_signed=False))

    def create(self, call: Call, news: Props, preview: bool) -> tuple[str, Props]:
        planned = self.schema.plan(None, news)
        if preview:
            return "", self.schema.outputs(planned, news)
        kind, der = _pem_type(str(reveal(planned["certRequestPem"])))
        if kind != "CERTIFICATE REQUEST":
            raise ProviderError(f'invalid PEM type - expected "CERTIFICATE REQUEST", got "{kind}"')
        request = x509.load_der_x509_csr(der)
        ca_key, algorithm = parse_private_key_pem(str(reveal(planned["caPrivateKeyPem"])))
        planned["caKeyAlgorithm"] = algorithm
        kind, der = _pem_type(str(reveal(planned["caCertPem"])))
        if kind != "CERTIFICATE":
            raise ProviderError(f'invalid PEM type - expected "CERTIFICATE", got "{kind}"')
        ca = x509.load_der_x509_certificate(der)
        try:
            ca_is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca_is_ca = False
        if not ca_is_ca:
            call.log(
                "Potentially Invalid Certificate Authority: Certificate provided as Authority"
                " does not appear to be a valid Certificate Authority. The resulting"
                " certificate might fail certificate validation.",
                WARNING,
            )
        try:
            ca_key_id: bytes | None = ca.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value.digest
        except x509.ExtensionNotFound:
            ca_key_id = None
        # The template: the request's subject, DNS names, IP addresses and URIs.
        names: list[x509.GeneralName] = []
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [
                n
                for n in san
                if isinstance(n, x509.DNSName | x509.IPAddress | x509.UniformResourceIdentifier)
            ]
        except x509.ExtensionNotFound:
            pass
        public = request.public_key()
        if not isinstance(
            public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
        ):
            raise ProviderError(f"unsupported public key type {type(public).__name__}")
        self.sign(
            planned,
            Template(request.subject, names),
            public,
            ca.subject,
            ca_key,
            ca_key_id,
            self_signed=False,
        )
        return str(planned["id"]), self.schema.outputs(planned, news)


class TlsProvider(Provider):
    def __init__(self) -> None:
        super().__init__(
            "tls",
            "5.6.2",
            [PrivateKey(), CertRequest(), SelfSignedCert(), LocallySignedCert()],
        )


if __name__ == "__main__":
    serve(TlsProvider())
