"""Warnings: printed as `warning: ...` on stderr, exit status 0, and the render still written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from repo_paths import EXAMPLE_STACK_FILE
from test_stack_bad_input import write_stack

from stackconfig import parse_stack_config
from stackconfig.warnings import stack_warnings
from stubernetes.cli import main
from stubernetes.program_run import run_program

PLAIN_BMC = {"kind": "ipmi", "address": "192.168.10.121", "user": "admin", "password": "hunter2"}


def render(values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    out = tmp_path / "out"
    stack_file = write_stack(values, tmp_path / "Pulumi.warned.yaml")
    status = main(["render", "--stack-file", str(stack_file), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert status == 0, err
    assert (out / "resources.json").is_file()
    assert list((out / "matchbox" / "ignition").glob("*.ign"))
    return err


def machine(values: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = values["machines"][name]
    return result


def test_static_address_without_gateway(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del machine(raw_values, "w1")["gateway"]
    assert render(raw_values, tmp_path, capsys) == [
        "warning: machine 'w1': field 'gateway': a static address (192.168.10.21/24) without "
        "a gateway: the machine reaches only its own subnet, so the package and image "
        "downloads of its setup fail unless they are served there"
    ]


def test_static_address_without_dns(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del machine(raw_values, "w1")["dns"]
    assert render(raw_values, tmp_path, capsys) == [
        "warning: machine 'w1': field 'dns': a static address (192.168.10.21/24) without dns "
        "servers: the machine cannot resolve names, so the package and image downloads of its "
        "setup fail"
    ]


def test_bmc_password_in_plain_text(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine(raw_values, "w1")["bmc"] = PLAIN_BMC
    assert render(raw_values, tmp_path, capsys) == [
        "warning: machine 'w1': field 'bmc.password': the BMC password is plain text in the "
        "stack config, where anyone who reads the file reads it; make it a secret: "
        "pulumi config set --secret --path 'machines.w1.bmc.password' ..."
    ]


def test_bmc_password_as_secure_value_is_fine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine(raw_values, "w1")["bmc"] = dict(PLAIN_BMC, password={"secure": "v1:placeholder"})
    assert render(raw_values, tmp_path, capsys) == []


def test_api_endpoint_ip_that_is_not_the_controllers(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["cluster"]["apiEndpoint"] = "192.168.10.99:6443"
    assert render(raw_values, tmp_path, capsys) == [
        "warning: stubernetes:cluster: field 'apiEndpoint': 192.168.10.99 is an IP address and "
        "it is not the address of the only controller 'c1' (192.168.10.11), so unless it "
        "forwards there, the nodes will not reach the API server and never join; use the "
        "controller's address or a DNS name"
    ]


def test_api_endpoint_ip_with_a_dhcp_controller(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for field in ("address", "gateway", "dns"):
        del machine(raw_values, "c1")[field]
    lines = render(raw_values, tmp_path, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(
        "warning: stubernetes:cluster: field 'apiEndpoint': 192.168.10.11 is an IP address and "
        "controller 'c1' has no static address (DHCP)"
    )


def test_api_endpoint_dns_name_is_fine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    assert render(raw_values, tmp_path, capsys) == []


def test_urn_prints_the_warnings_too(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del machine(raw_values, "w1")["dns"]
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.warned.yaml")
    assert main(["urn", "--stack-file", str(stack_file), "--machine", "w1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: machine 'w1': field 'dns': ")
    assert captured.out.startswith("urn:pulumi:warned::")


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
    machine(raw_values, "w1")["bmc"] = PLAIN_BMC
    assert stack_warnings(parse_stack_config(raw_values), secure_paths) == []


def test_secure_paths_of_another_machine_do_not_cover_the_password(
    raw_values: dict[str, Any],
) -> None:
    machine(raw_values, "w1")["bmc"] = PLAIN_BMC
    warned = stack_warnings(parse_stack_config(raw_values), ["stubernetes:machines.w10.bmc"])
    assert [(w.where, w.field) for w in warned] == [("machine 'w1'", "bmc.password")]


def test_the_program_logs_the_warnings(
    raw_values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Under the mocks, pulumi.log.warn goes to the mock engine's logger.
    machine(raw_values, "w1")["bmc"] = PLAIN_BMC
    with caplog.at_level(logging.WARNING):
        run_program(raw_values, secret_keys=["matchbox"])
    assert any(
        "field 'bmc.password': the BMC password is plain text" in r.message for r in caplog.records
    )


def test_the_program_takes_secret_keys_from_pulumi(
    raw_values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    machine(raw_values, "w1")["bmc"] = PLAIN_BMC
    with caplog.at_level(logging.WARNING):
        run_program(raw_values, secret_keys=["matchbox", "machines"])
    assert not any("bmc.password" in r.message for r in caplog.records)


def test_example_file_renders_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out)]) == 0
    assert "warning:" not in capsys.readouterr().err
