"""Warnings: printed as `warning: ...` on stderr, exit status 0, and the render still written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from repo_paths import EXAMPLE_STACK_FILE
from test_stack_bad_input import write_stack

from stackconfig import StackConfig
from stackconfig.warnings import stack_warnings
from stubernetes.cli import main
from stubernetes.program_run import run_program

SECURE_BMC = {
    "kind": "ipmi",
    "address": "192.168.10.121",
    "user": "admin",
    "password": {"secure": "v1:placeholder"},
}


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
        "a gateway: the machine reaches only its own subnet, so the container image pulls of "
        "its kubelet fail unless they are served there"
    ]


def test_static_address_without_dns(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del machine(raw_values, "w1")["dns"]
    assert render(raw_values, tmp_path, capsys) == [
        "warning: machine 'w1': field 'dns': a static address (192.168.10.21/24) without dns "
        "servers: the machine cannot resolve names, so the container image pulls of its kubelet "
        "fail"
    ]


def test_bmc_password_as_secure_value_is_fine(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine(raw_values, "w1")["bmc"] = SECURE_BMC
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
    assert len(lines) == 2
    assert lines[0].startswith(
        "warning: stubernetes:cluster: field 'apiEndpoint': 192.168.10.11 is an IP address and "
        "controller 'c1' has no static address (DHCP)"
    )
    # The controller's own warning, about its etcd peer URL (below).
    assert lines[1].startswith("warning: machine 'c1': field 'address': a controller without")


DHCP_CONTROLLER_WARNING = (
    "warning: machine '{name}': field 'address': a controller without a static address (DHCP): "
    "kubeadm writes the address it has when it joins into its API server's --advertise-address "
    "and its etcd's --listen-peer-urls and --initial-advertise-peer-urls, so a later lease with "
    "another address leaves its etcd unable to bind and its member unreachable until `etcdctl "
    "member update`; give it a static address, or a DHCP reservation for its MAC {mac}"
)


def test_controllers_without_a_static_address_are_warned_once_each(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["cluster"]["apiEndpoint"] = "api.lab.home.arpa:6443"
    raw_values["machines"]["c2"] = {
        "mac": "52:54:00:a1:00:09",
        "role": "controller",
        "installDisk": "/dev/sda",
    }
    raw_values["machines"]["c3"] = {
        "mac": "52:54:00:a1:00:0a",
        "role": "controller",
        "installDisk": "/dev/sda",
    }
    # w2, a worker, has no static address either: a worker's address is written nowhere.
    assert render(raw_values, tmp_path, capsys) == [
        DHCP_CONTROLLER_WARNING.format(name="c2", mac="52:54:00:a1:00:09"),
        DHCP_CONTROLLER_WARNING.format(name="c3", mac="52:54:00:a1:00:0a"),
    ]


def test_a_controller_with_a_static_address_is_not_warned(example_stack: StackConfig) -> None:
    assert example_stack.machine("c1").address is not None
    assert example_stack.machine("w2").address is None
    assert stack_warnings(example_stack) == []


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


def test_the_program_logs_the_warnings(
    raw_values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Under the mocks, pulumi.log.warn goes to the mock engine's logger.
    del machine(raw_values, "w1")["dns"]
    with caplog.at_level(logging.WARNING):
        run_program(raw_values, secret_keys=["matchbox"])
    assert any("machine 'w1': field 'dns': a static address" in r.message for r in caplog.records)


def test_example_file_renders_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out)]) == 0
    assert "warning:" not in capsys.readouterr().err
