"""OpenSSH public key lines, read as sshd reads them: the type, then the key blob in the SSH
wire format (RFC 4251 §5: `string` is a 4-byte big-endian length and its bytes, `mpint` a
`string` holding a two's-complement big-endian integer), which must hold a key of the declared
type and nothing after it.

- ssh-rsa (RFC 4253 §6.6): string "ssh-rsa", mpint e, mpint n.
- ssh-ed25519 (RFC 8709 §4): string "ssh-ed25519", string key (32 bytes).
- ecdsa-sha2-<curve> (RFC 5656 §3.1): string type, string curve name (the type's own),
  string Q (an elliptic-curve point, SEC 1 §2.3.3).
- sk-ssh-ed25519@openssh.com and sk-ecdsa-sha2-nistp256@openssh.com (OpenSSH PROTOCOL.u2f):
  the same as ed25519 and ecdsa-sha2-nistp256, then string application.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import ec

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
ED25519_KEY_BYTES = 32
CURVES: dict[str, ec.EllipticCurve] = {
    "nistp256": ec.SECP256R1(),
    "nistp384": ec.SECP384R1(),
    "nistp521": ec.SECP521R1(),
}
# OpenSSH refuses RSA keys under 1024 bits outright (openssh-portable sshkey.h,
# SSH_RSA_MINIMUM_MODULUS_SIZE; "Refuse RSA keys <1024 bits", OpenSSH 7.6). Fedora goes
# further: its DEFAULT crypto policy accepts RSA keys of 2048 bits or more (min_rsa_size =
# 2048; Fedora Changes/StrongCryptoSettings2, crypto-policies(7)), which crypto-policies
# hands to Fedora's sshd as RequiredRSASize since Fedora 37 (openssh-server-8.8p1-7.fc37), so
# a shorter key never logs in to a Fedora CoreOS machine.
RSA_MINIMUM_BITS = 2048


class _Truncated(ValueError):
    """The blob ends inside a field."""


class _BadInteger(ValueError):
    """An mpint that is negative or not in its shortest form (RFC 4251 §5)."""


class _Blob:
    """A cursor over an SSH wire-format blob."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def string(self) -> bytes:
        start = self.offset + 4
        if start > len(self.data):
            raise _Truncated
        end = start + int.from_bytes(self.data[self.offset : start], "big")
        if end > len(self.data):
            raise _Truncated
        self.offset = end
        return self.data[start:end]

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise _BadInteger("a negative integer")
        if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
            raise _BadInteger("an integer with a needless leading zero byte")
        return int.from_bytes(raw, "big")

    @property
    def left(self) -> int:
        return len(self.data) - self.offset


def _ed25519_problem(blob: _Blob, key_type: str) -> str | None:
    key = blob.string()
    if len(key) != ED25519_KEY_BYTES:
        return f"its {key_type} public key is {len(key)} bytes, not {ED25519_KEY_BYTES}"
    return None


def _ecdsa_problem(blob: _Blob, curve_name: str) -> str | None:
    named = blob.string()
    if named != curve_name.encode():
        return f"it names the curve {named.decode('ascii', 'replace')!r}, not {curve_name!r}"
    point = blob.string()
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(CURVES[curve_name], point)
    except ValueError:
        return f"its public key is not a point on the {curve_name} curve"
    return None


def _rsa_problem(blob: _Blob) -> str | None:
    try:
        exponent, modulus = blob.mpint(), blob.mpint()
    except _BadInteger as error:
        return f"its RSA key holds {error}"
    if exponent < 3 or exponent % 2 == 0:
        return f"its RSA public exponent {exponent} is not an odd number of 3 or more"
    if modulus.bit_length() < RSA_MINIMUM_BITS:
        # Well formed, so not "malformed": refused on its own terms.
        raise ValueError(
            f"an RSA key of {modulus.bit_length()} bits: sshd on Fedora CoreOS refuses RSA "
            f"keys under {RSA_MINIMUM_BITS} bits (Fedora's DEFAULT crypto policy), so it "
            "could never log in; use an ed25519 key, or RSA of 3072 bits (ssh-keygen's default)"
        )
    return None


def _key_problem(blob: _Blob, key_type: str) -> str | None:
    """What is wrong with the key after its type name, or None; the blob is left after it."""
    if key_type == "ssh-rsa":
        return _rsa_problem(blob)
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        problem = _ed25519_problem(blob, "ed25519")
    else:
        problem = _ecdsa_problem(blob, key_type.split("@")[0].rpartition("-")[2])
    if problem is None and key_type.startswith("sk-"):
        blob.string()  # the FIDO application, "ssh:" by default
    return problem


def check_ssh_public_key(value: str) -> str:
    """An OpenSSH public key line: a known type, base64 that decodes to a key of that type
    and length, nothing after it, and (for RSA) a size sshd accepts."""
    parts = value.split()
    if len(parts) < 2:
        raise ValueError("malformed SSH key: expected '<type> <base64> [comment]'")
    key_type, encoded = parts[0], parts[1]
    if key_type not in SSH_KEY_TYPES:
        raise ValueError(f"malformed SSH key: unknown key type {key_type!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("malformed SSH key: key data is not base64") from None
    blob = _Blob(raw)
    try:
        if blob.string() != key_type.encode():
            raise ValueError(f"malformed SSH key: key data does not hold a {key_type} key")
        problem = _key_problem(blob, key_type)
    except _Truncated:
        raise ValueError(
            f"malformed SSH key: the {key_type} key data ends before the key does"
        ) from None
    if problem is not None:
        raise ValueError(f"malformed SSH key: {problem}")
    if blob.left:
        raise ValueError(
            f"malformed SSH key: {blob.left} bytes of trailing data after the {key_type} key"
        )
    return value.strip()
