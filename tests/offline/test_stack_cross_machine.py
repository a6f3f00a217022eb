"""The checks across machines (a controller, one init controller, unique MACs and addresses)
run even when a machine has other problems, on what can still be read of it, and report
nothing that another problem caused. Each test asserts the whole list of errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_stack_bad_input import run_render, write_stack

from stubernetes.cli import EXIT_BAD_INPUT


def errors_of(
    values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    out = tmp_path / "out"
    status, errors = run_render(write_stack(values, tmp_path / "stack.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    assert not out.exists()
    return errors


def machines(values: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = values["machines"]
    return result


def test_controller_with_bad_install_disk_is_still_a_controller(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"]["installDisk"] = "sda"
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'c1': field 'installDisk': must be an absolute device path under /dev/, "
        "got 'sda'"
    ]


def test_duplicate_mac_beside_a_misspelled_key_of_another_machine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w1"]["instalDisk"] = "/dev/sda"
    machines(raw_values)["w2"]["mac"] = "52:54:00:A1:00:01"
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'w1': field 'instalDisk': unknown key (check its spelling)",
        "error: machine 'w2': field 'mac': 52:54:00:a1:00:01 is already used by machine 'c1'",
    ]


def test_duplicate_mac_beside_a_misspelled_key_of_the_same_machine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w2"]["mac"] = "52:54:00:a1:00:02"
    machines(raw_values)["w2"]["lables"] = {"example.com/a": "b"}
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'w2': field 'lables': unknown key (check its spelling)",
        "error: machine 'w2': field 'mac': 52:54:00:a1:00:02 is already used by machine 'w1'",
    ]


def test_duplicate_mac_of_a_machine_that_has_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first owner of the MAC is the broken one.
    machines(raw_values)["w1"]["role"] = "boss"
    machines(raw_values)["w2"]["mac"] = "52:54:00:a1:00:02"
    errors = errors_of(raw_values, tmp_path, capsys)
    assert errors[1:] == [
        "error: machine 'w2': field 'mac': 52:54:00:a1:00:02 is already used by machine 'w1'"
    ]
    assert errors[0].startswith("error: machine 'w1': field 'role': ")


def test_malformed_macs_are_not_compared(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w1"]["mac"] = "nope"
    machines(raw_values)["w2"]["mac"] = "nope"
    message = "malformed MAC address 'nope' (expected six hex octets, e.g. 52:54:00:a1:00:01)"
    assert errors_of(raw_values, tmp_path, capsys) == [
        f"error: machine 'w1': field 'mac': {message}",
        f"error: machine 'w2': field 'mac': {message}",
    ]


def test_duplicate_address_beside_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w2"].update(
        address="192.168.10.21/24", gateway="192.168.10.1", dns=["192.168.10.1"], role="wrker"
    )
    errors = errors_of(raw_values, tmp_path, capsys)
    assert errors == [
        "error: machine 'w2': field 'address': 192.168.10.21 is already used by machine 'w1'",
        errors[1],
    ]
    assert errors[1].startswith("error: machine 'w2': field 'role': ")


def test_no_controller_is_reported_beside_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"].update(role="worker", installDisk="sda")
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: stubernetes:machines: field 'role': no machine is a controller; one is needed",
        "error: machine 'c1': field 'installDisk': must be an absolute device path under /dev/, "
        "got 'sda'",
    ]


def test_an_unreadable_role_does_not_claim_there_is_no_controller(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"]["role"] = "master"
    errors = errors_of(raw_values, tmp_path, capsys)
    assert len(errors) == 1
    assert errors[0].startswith("error: machine 'c1': field 'role': ")


def test_a_machine_that_is_not_a_map_does_not_claim_there_is_no_controller(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"] = "controller"
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'c1': expected a map of fields"
    ]


def test_two_init_controllers_beside_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    machines(raw_values)["c1"]["init"] = True
    machines(raw_values)["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
        "init": True,
        "generation": 0,
    }
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'c2': field 'generation': Input should be greater than or equal to 1",
        "error: machine 'c2': field 'init': machine 'c1' is already the init controller; "
        "only one may be",
    ]


def test_init_on_a_worker_beside_its_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w1"].update(init=True, installDisk="sda")
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'w1': field 'init': only a controller can run kubeadm init",
        "error: machine 'w1': field 'installDisk': must be an absolute device path under /dev/, "
        "got 'sda'",
    ]


def test_an_unreadable_init_is_not_counted(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w1"]["init"] = "maybe"
    errors = errors_of(raw_values, tmp_path, capsys)
    assert len(errors) == 1
    assert errors[0].startswith("error: machine 'w1': field 'init': ")


def test_rebuilding_the_only_controller_beside_its_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"].update(generation=2, instalDisk="/dev/sda")
    errors = errors_of(raw_values, tmp_path, capsys)
    assert len(errors) == 2
    assert errors[0].startswith("error: machine 'c1': field 'generation': reinstalling the only")
    assert errors[1] == "error: machine 'c1': field 'instalDisk': unknown key (check its spelling)"


def test_a_name_key_does_not_hide_the_machine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["w2"].update(name="w2", mac="52:54:00:a1:00:02")
    assert errors_of(raw_values, tmp_path, capsys) == [
        "error: machine 'w2': field 'mac': 52:54:00:a1:00:02 is already used by machine 'w1'",
        "error: machine 'w2': field 'name': the machine's name is its key; remove 'name'",
    ]


def test_api_endpoint_at_a_controller_with_other_problems(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machines(raw_values)["c1"]["installDisk"] = "sda"
    machines(raw_values)["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
        "address": "192.168.10.12/24",
        "gateway": "192.168.10.1",
        "dns": ["192.168.10.1"],
    }
    errors = errors_of(raw_values, tmp_path, capsys)
    assert [line.split(": field ")[0:2] for line in errors] == [
        ["error: stubernetes:cluster", errors[0].split(": field ")[1]],
        ["error: machine 'c1'", errors[1].split(": field ")[1]],
    ]
    assert "192.168.10.11 is the address of controller 'c1' itself" in errors[0]
