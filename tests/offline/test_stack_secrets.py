"""Secrets given in plain text are refused, in the offline CLI and in the Pulumi program, each
with the `pulumi config set --secret` line that fixes it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pydantic import BaseModel
from test_stack_bad_input import run_render, write_stack

from stackconfig.model import Admin, Bmc, Matchbox
from stackconfig.secrets import (
    MACHINE_SECRETS,
    SECTION_SECRETS,
    covered,
    plain_secret_problems,
)
from stubernetes.cli import EXIT_BAD_INPUT, main
from stubernetes.mocks import RecordingMonitor, StandInMocks
from stubernetes.program_run import run_program

PEM_KEY = (
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5XlYGNmHbQ0UeoAoGCCqGSM49\n"
    "-----END EC PRIVATE KEY-----\n"
)
PLAIN = "a secret given in plain text, which anyone who reads the stack file (or its history) reads"
PLAIN_BMC = {"kind": "ipmi", "address": "192.168.10.121", "user": "admin", "password": "hunter2"}


def give_matchbox(key: str) -> Any:
    def mutate(values: dict[str, Any]) -> None:
        values["matchbox"][key] = PEM_KEY

    return mutate


def give_password_hash(values: dict[str, Any]) -> None:
    values["admin"]["passwordHash"] = "$6$saltsalt$" + "a" * 86


def give_bmc_password(values: dict[str, Any]) -> None:
    values["machines"]["w1"]["bmc"] = PLAIN_BMC


# (id, mutation, the whole error line)
CASES = [
    (
        "matchbox-client-key",
        give_matchbox("clientKey"),
        f"error: stubernetes:matchbox: field 'clientKey': {PLAIN}; set it as a secret: "
        "pulumi config set --secret --path matchbox.clientKey < client.key",
    ),
    (
        "matchbox-client-cert",
        give_matchbox("clientCert"),
        f"error: stubernetes:matchbox: field 'clientCert': {PLAIN}; set it as a secret: "
        "pulumi config set --secret --path matchbox.clientCert < client.crt",
    ),
    (
        "matchbox-ca-cert",
        give_matchbox("caCert"),
        f"error: stubernetes:matchbox: field 'caCert': {PLAIN}; set it as a secret: "
        "pulumi config set --secret --path matchbox.caCert < ca.crt",
    ),
    (
        "admin-password-hash",
        give_password_hash,
        f"error: stubernetes:admin: field 'passwordHash': {PLAIN}; set it as a secret: "
        "pulumi config set --secret --path admin.passwordHash (it prompts for the value)",
    ),
    (
        "bmc-password",
        give_bmc_password,
        f"error: machine 'w1': field 'bmc.password': {PLAIN}; set it as a secret: "
        "pulumi config set --secret --path machines.w1.bmc.password (it prompts for the value)",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "line"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["render", "check"])
def test_a_plain_secret_is_refused_by_the_cli(
    case: str,
    mutate: Any,
    line: str,
    command: str,
    raw_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mutate(raw_values)
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.plain.yaml")
    if command == "render":
        out = tmp_path / "out"
        status, errors = run_render(stack_file, out, capsys)
        assert not out.exists()
    else:
        status = main(["check", "--stack-file", str(stack_file)])
        errors = capsys.readouterr().err.splitlines()
    assert status == EXIT_BAD_INPUT
    assert errors == [line]


def test_plain_secrets_are_reported_with_the_parsers_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    give_matchbox("clientKey")(raw_values)
    raw_values["machines"]["w2"]["mac"] = "not-a-mac"
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.plain.yaml")
    status, errors = run_render(stack_file, tmp_path / "out", capsys)
    assert status == EXIT_BAD_INPUT
    assert len(errors) == 2, errors
    assert errors[0].startswith("error: machine 'w2': field 'mac': ")
    assert errors[1].startswith(f"error: stubernetes:matchbox: field 'clientKey': {PLAIN}")


def test_the_program_refuses_plain_matchbox_credentials_before_any_resource(
    example_values: dict[str, Any],
) -> None:
    # No secret keys: the whole stubernetes:matchbox was set without --secret.
    monitor = RecordingMonitor(StandInMocks("x"))
    with pytest.raises(pulumi.RunError) as raised:
        run_program(example_values, secret_keys=[], monitor=monitor)
    message = str(raised.value)
    for key, source in (("clientCert", "client.crt"), ("clientKey", "client.key")):
        assert (
            f"stubernetes:matchbox: field '{key}': {PLAIN}; set it as a secret: "
            f"pulumi config set --secret --path matchbox.{key} < {source}"
        ) in message
    assert "field 'caCert'" in message
    assert monitor.registrations == []


def test_the_program_refuses_a_plain_bmc_password(example_values: dict[str, Any]) -> None:
    values = copy.deepcopy(example_values)
    give_bmc_password(values)
    monitor = RecordingMonitor(StandInMocks("x"))
    with pytest.raises(pulumi.RunError, match=r"machine 'w1': field 'bmc\.password'"):
        run_program(values, secret_keys=["matchbox"], monitor=monitor)
    assert monitor.registrations == []


def test_the_program_takes_secret_keys_from_pulumi(example_values: dict[str, Any]) -> None:
    """`pulumi config set --secret --path machines.w1.bmc.password` makes the whole
    `stubernetes:machines` a secret key: the program cannot tell more."""
    values = copy.deepcopy(example_values)
    give_bmc_password(values)
    run = run_program(values, secret_keys=["matchbox", "machines"])
    assert run.registrations


@pytest.mark.parametrize(
    "secure_paths",
    [
        ["stubernetes:machines.w1.bmc.password"],  # LoadedStack.secure_paths' form
        ["machines.w1.bmc.password"],
        ["stubernetes:machines.w1.bmc"],
        ["stubernetes:machines"],  # how Pulumi lists the key of a `--path` secret
    ],
)
def test_secure_paths_that_cover_the_password(
    secure_paths: list[str], raw_values: dict[str, Any]
) -> None:
    give_bmc_password(raw_values)
    assert covered("machines.w1.bmc.password", secure_paths)
    assert plain_secret_problems(raw_values, [*secure_paths, "stubernetes:matchbox"]) == []


def test_secure_paths_of_another_machine_do_not_cover_the_password(
    raw_values: dict[str, Any],
) -> None:
    give_bmc_password(raw_values)
    secure = ["stubernetes:machines.w10.bmc", "stubernetes:matchbox"]
    problems = plain_secret_problems(raw_values, secure)
    assert [(p.where, p.field) for p in problems] == [("machine 'w1'", "bmc.password")]


def test_absent_or_malformed_sections_are_left_to_the_parser() -> None:
    values = {"matchbox": "not a map", "admin": {"passwordHash": None}, "machines": ["w1"]}
    assert plain_secret_problems(values, []) == []


def _described_as_secret(model: type[BaseModel]) -> set[str]:
    return {
        field.alias or name
        for name, field in model.model_fields.items()
        if "secret" in (field.description or "") or "secure value" in (field.description or "")
    }


def test_every_field_the_model_calls_a_secret_is_checked() -> None:
    """A field documented as a secret in the model is one the check knows (the admin's password
    hash is checked too, though its description does not say so)."""
    sections = {s.path: s for s in SECTION_SECRETS}
    assert {f"matchbox.{k}" for k in _described_as_secret(Matchbox)} <= set(sections)
    assert {f"admin.{k}" for k in _described_as_secret(Admin)} <= set(sections)
    assert {("bmc", k) for k in _described_as_secret(Bmc)} <= set(MACHINE_SECRETS)
    # Not vacuous: the model does call some of its fields secrets.
    assert _described_as_secret(Matchbox)
    assert _described_as_secret(Bmc)
