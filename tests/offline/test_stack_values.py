"""Values that can or cannot work, where a stack file cannot show it: every integer field at
once, secrets (a stack file gives them as stand-ins), and the values each rule must still take.
The refusals of single values have their stack files under tests/offline/bad-stacks/."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import BaseModel, ValidationError

from stackconfig import ConfigError, StackConfig, parse_stack_config
from stackconfig.backups import Backups, S3Bucket
from stackconfig.model import (
    Admin,
    BinarySha256,
    Bmc,
    Cluster,
    Gates,
    Machine,
    Matchbox,
    OperatingSystem,
    ReleaseSettings,
    Taint,
)
from stackconfig.stackfile import SECURE_STAND_IN
from stackconfig.strict_model import StrictModel
from stackconfig.vip import Vip


def refusals(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(values)
    return [str(problem) for problem in raised.value.problems]


def accepted(values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(values)


# --- integers ---------------------------------------------------------------------------------


def base_of(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """A valid input of `model`, from the example stack where it has one."""
    bases: dict[type[BaseModel], dict[str, Any]] = {
        Cluster: values["cluster"],
        OperatingSystem: values["os"],
        Matchbox: {**values["matchbox"], "clientCert": "c", "clientKey": "k", "caCert": "a"},
        Gates: {},
        Admin: values["admin"],
        Machine: {**values["machines"]["w1"], "name": "w1"},
        Taint: {"key": "example.com/gpu", "effect": "NoSchedule"},
        Bmc: {"kind": "ipmi", "address": "192.168.10.111", "user": "u", "password": "p"},
        ReleaseSettings: {},
        BinarySha256: {},
        Vip: {"address": "192.168.10.10", "interface": "eno1", "routerId": 51},
        Backups: {},
        S3Bucket: {
            "endpoint": "http://nas.lab.home.arpa:9000",
            "bucket": "lab-etcd",
            "accessKeyId": "lab-backup",
            "secretAccessKey": "s",
        },
    }
    return dict(bases[model])


def int_fields(model: type[BaseModel]) -> list[str]:
    """The fields whose value is an integer (WholeNumber is `int` with a validator)."""
    return [
        field.alias or name for name, field in model.model_fields.items() if field.annotation is int
    ]


STACK_MODELS = (
    Cluster,
    OperatingSystem,
    Matchbox,
    Gates,
    Admin,
    Machine,
    Taint,
    Bmc,
    ReleaseSettings,
    BinarySha256,
    Vip,
    Backups,
    S3Bucket,
)


def test_the_models_checked_are_every_model_of_the_stack() -> None:
    # A new section or sub-model joins the integer test below, or this fails.
    assert set(StrictModel.__subclasses__()) - {StackConfig} == set(STACK_MODELS)


def test_the_stack_has_integer_fields() -> None:
    found = {f"{m.__name__}.{f}" for m in STACK_MODELS for f in int_fields(m)}
    assert {"Gates.pollSeconds", "Machine.generation", "Cluster.installCredentialHours"} <= found


INT_FIELDS = [(model, field) for model in STACK_MODELS for field in int_fields(model)]


@pytest.mark.parametrize(
    ("model", "field"), INT_FIELDS, ids=[f"{m.__name__}.{f}" for m, f in INT_FIELDS]
)
def test_no_integer_field_takes_a_boolean(
    model: type[BaseModel], field: str, raw_values: dict[str, Any]
) -> None:
    for boolean in (True, False):
        with pytest.raises(ValidationError) as raised:
            model.model_validate({**base_of(model, raw_values), field: boolean})
        (error,) = raised.value.errors()
        assert error["loc"] == (field,)
        assert error["msg"] == "Input should be a whole number"


def test_integers_written_as_digits_are_read_as_before(raw_values: dict[str, Any]) -> None:
    raw_values["gates"] = {"pollSeconds": "30", "drainTimeoutSeconds": 900}
    raw_values["machines"]["w1"]["generation"] = "2"
    stack = accepted(raw_values)
    assert stack.gates.poll_seconds == 30 and stack.gates.drain_timeout_seconds == 900
    assert stack.machine("w1").generation == 2


# --- the admin's password hash -----------------------------------------------------------------

# One hash in the form crypt(5) gives for each strong method (only the form is checked).
GOOD_HASHES = (
    "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
    "$6$rounds=100000$saltsaltsaltsalt$" + "A" * 86,
    "$5$saltsalt$" + "b" * 43,
    "$2b$12$" + "c" * 53,
)


@pytest.mark.parametrize("hash_", GOOD_HASHES, ids=lambda h: h[:3])
def test_strong_crypt_hashes_are_taken(raw_values: dict[str, Any], hash_: str) -> None:
    raw_values["admin"]["passwordHash"] = hash_
    assert accepted(raw_values).admin.password_hash == hash_


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("correct horse battery staple", "it is not a crypt(3) password hash"),
        ("hunter2hunter2", "it is hashed with descrypt or bigcrypt"),
        ("$1$saltsalt$" + "d" * 22, "it is hashed with md5crypt"),
        ("$6$salt$tooshort", "it starts like a sha512crypt hash ($6$) but is not one"),
        ("$2b$99$" + "c" * 53, "it starts like a bcrypt hash ($2) but is not one"),
        ("", "it is not a crypt(3) password hash"),
    ],
)
def test_a_password_hash_that_is_no_strong_crypt_hash_is_refused_without_repeating_it(
    raw_values: dict[str, Any], value: str, reason: str
) -> None:
    raw_values["admin"]["passwordHash"] = value
    (line,) = refusals(raw_values)
    assert line.startswith(f"stubernetes:admin: field 'passwordHash': {reason}")
    assert "mkpasswd --method=yescrypt" in line
    # What is no hash may be the password itself: never printed.
    assert not value or value not in line


@pytest.mark.parametrize("stand_in", [SECURE_STAND_IN, f"{SECURE_STAND_IN}-3"])
def test_a_secret_s_offline_stand_in_is_not_judged(
    raw_values: dict[str, Any], stand_in: str
) -> None:
    raw_values["admin"]["passwordHash"] = stand_in
    assert accepted(raw_values).admin.password_hash == stand_in


def test_core_stays_an_admin(raw_values: dict[str, Any]) -> None:
    raw_values["admin"]["user"] = "core"
    assert accepted(raw_values).admin.user == "core"


# --- SSH keys ---------------------------------------------------------------------------------


def openssh_line(key: Any) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{public.decode()} admin@laptop"


def wire(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


@pytest.mark.parametrize(
    "key",
    [
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP521R1()),
    ],
    ids=["ed25519", "rsa-2048", "nistp256", "nistp384", "nistp521"],
)
def test_whole_keys_of_every_type_are_taken(raw_values: dict[str, Any], key: Any) -> None:
    raw_values["admin"]["sshAuthorizedKeys"] = [openssh_line(key)]
    assert list(accepted(raw_values).admin.ssh_authorized_keys) == [openssh_line(key)]


def test_security_key_types_carry_their_application(raw_values: dict[str, Any]) -> None:
    # OpenSSH PROTOCOL.u2f: the ed25519 or nistp256 key, then string application.
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    key_type = b"sk-ssh-ed25519@openssh.com"
    whole = f"{key_type.decode()} {wire(key_type, public, b'ssh:')}"
    raw_values["admin"]["sshAuthorizedKeys"] = [whole]
    accepted(raw_values)
    raw_values["admin"]["sshAuthorizedKeys"] = [f"{key_type.decode()} {wire(key_type, public)}"]
    (line,) = refusals(raw_values)
    assert "the sk-ssh-ed25519@openssh.com key data ends before the key does" in line


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((b"ssh-rsa", b"\x01\x00\x01"), "the ssh-rsa key data ends before the key does"),
        ((b"ssh-rsa", b"\x81", b"\x00" + b"\xff" * 256), "its RSA key holds a negative integer"),
        (
            (b"ssh-rsa", b"\x00\x01\x00\x01", b"\x00" + b"\xff" * 256),
            "its RSA key holds an integer with a needless leading zero byte",
        ),
        ((b"ssh-rsa", b"\x02", b"\x00" + b"\xff" * 256), "its RSA public exponent 2"),
    ],
    ids=["truncated", "negative", "leading-zero", "even-exponent"],
)
def test_rsa_blobs_hold_two_proper_integers(
    raw_values: dict[str, Any], fields: tuple[bytes, ...], reason: str
) -> None:
    raw_values["admin"]["sshAuthorizedKeys"] = [f"ssh-rsa {wire(*fields)}"]
    (line,) = refusals(raw_values)
    assert line.startswith("stubernetes:admin: field 'sshAuthorizedKeys[0]': malformed SSH key")
    assert reason in line


# --- addresses and names that still work -------------------------------------------------------


def test_a_slash_31_uses_both_its_addresses(raw_values: dict[str, Any]) -> None:
    # RFC 3021: in a /31 neither address is a network or broadcast address.
    raw_values["machines"]["w1"].update(address="192.168.10.20/31", gateway="192.168.10.21")
    assert str(accepted(raw_values).machine("w1").address) == "192.168.10.20/31"


def test_a_slash_27_service_network_holds_every_fixed_service_address(
    raw_values: dict[str, Any],
) -> None:
    raw_values["cluster"]["serviceCidr"] = "10.96.0.0/27"
    stack = accepted(raw_values)
    assert str(stack.cluster.fleetlock_ip) == "10.96.0.15"


def test_an_api_endpoint_may_be_a_dns_name(raw_values: dict[str, Any]) -> None:
    raw_values["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    assert accepted(raw_values).cluster.api_host == "api.lab.home.arpa"


def test_a_machine_subnet_that_only_some_machines_share_is_theirs_to_fix(
    raw_values: dict[str, Any],
) -> None:
    # podCidr overlapping one of two static machines: the machine's line, not the cluster's.
    raw_values["machines"]["w1"].update(
        address="10.244.0.21/15", gateway="10.244.0.1", dns=["10.244.0.1"]
    )
    (line,) = refusals(raw_values)
    assert line.startswith(
        "machine 'w1': field 'address': 10.244.0.21 lies inside podCidr 10.244.0.0/16"
    )
