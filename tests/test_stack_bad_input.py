"""Bad stack input fails with exit status 2, names the machine and the field, writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import EXIT_BAD_INPUT, main

Mutation = Callable[[dict[str, Any]], None]


def machine(values: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = values["machines"][name]
    return result


def set_field(name: str, field: str, value: object) -> Mutation:
    return lambda values: machine(values, name).__setitem__(field, value)


def add_controller(init: bool) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        machine(values, "c1")["init"] = True
        values["machines"]["c2"] = {
            "mac": "52:54:00:a1:00:09",
            "role": "controller",
            "installDisk": "/dev/sda",
            "init": init,
        }

    return mutate


def set_admin(field: str, value: object) -> Mutation:
    return lambda values: values["admin"].__setitem__(field, value)


def drop_admin_keys(values: dict[str, Any]) -> None:
    del values["admin"]["sshAuthorizedKeys"]


def no_controller(values: dict[str, Any]) -> None:
    machine(values, "c1")["role"] = "worker"


# (id, mutation, where, field, words the message must contain)
CASES: list[tuple[str, Mutation, str, str, str]] = [
    (
        "malformed-mac",
        set_field("w1", "mac", "52:54:00:zz:00:02"),
        "machine 'w1'",
        "mac",
        "malformed MAC",
    ),
    ("short-mac", set_field("w1", "mac", "52:54:00:a1:00"), "machine 'w1'", "mac", "malformed MAC"),
    (
        "duplicate-mac-other-case-and-separator",
        set_field("w2", "mac", "52-54-00-A1-00-02"),
        "machine 'w2'",
        "mac",
        "already used by machine 'w1'",
    ),
    (
        "name-not-rfc1123",
        lambda v: v["machines"].__setitem__(
            "Worker_3", dict(machine(v, "w2"), mac="52:54:00:a1:00:07")
        ),
        "machine 'Worker_3'",
        "name",
        "RFC 1123",
    ),
    ("no-controller", no_controller, "stubernetes:machines", "role", "no machine is a controller"),
    (
        "two-init-controllers",
        add_controller(True),
        "machine 'c2'",
        "init",
        "already the init controller",
    ),
    ("init-on-worker", set_field("w1", "init", True), "machine 'w1'", "init", "only a controller"),
    (
        "unknown-role",
        set_field("c1", "role", "master"),
        "machine 'c1'",
        "role",
        "'controller' or 'worker'",
    ),
    (
        "relative-install-disk",
        set_field("w1", "installDisk", "sda"),
        "machine 'w1'",
        "installDisk",
        "/dev/",
    ),
    ("missing-ssh-keys-key", drop_admin_keys, "stubernetes:admin", "sshAuthorizedKeys", "missing"),
    (
        "empty-ssh-keys",
        set_admin("sshAuthorizedKeys", []),
        "stubernetes:admin",
        "sshAuthorizedKeys",
        "at least 1",
    ),
    (
        "malformed-ssh-key",
        set_admin("sshAuthorizedKeys", ["ssh-ed25519 not*base64 me@host"]),
        "stubernetes:admin",
        "sshAuthorizedKeys[0]",
        "malformed SSH key",
    ),
    (
        "ssh-key-type-mismatch",
        set_admin(
            "sshAuthorizedKeys",
            ["ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOhYRPbAb7SWaP5VfwIC/ES69zmImWQcCGafKFioRwXN"],
        ),
        "stubernetes:admin",
        "sshAuthorizedKeys[0]",
        "does not hold a ssh-rsa key",
    ),
    (
        "malformed-address",
        set_field("w1", "address", "192.168.10.300/24"),
        "machine 'w1'",
        "address",
        "IPv4",
    ),
    (
        "address-without-prefix",
        set_field("w1", "address", "192.168.10.21"),
        "machine 'w1'",
        "address",
        "prefix length",
    ),
    (
        "gateway-outside-subnet",
        set_field("w1", "gateway", "10.0.0.1"),
        "machine 'w1'",
        "gateway",
        "outside",
    ),
    (
        "snippet-not-ignition",
        set_field("w1", "snippets", [{"storage": {"files": [{"path": "etc/motd", "mode": 420}]}}]),
        "machine 'w1'",
        "snippets[0].storage.files[0].path",
        "absolute",
    ),
    (
        "snippet-unknown-key",
        set_field("w1", "snippets", [{"systemd": {"unit": [{"name": "a.service"}]}}]),
        "machine 'w1'",
        "snippets[0].systemd.unit",
        "unknown",
    ),
    (
        "unknown-machine-key",
        set_field("w1", "instalDisk", "/dev/sda"),
        "machine 'w1'",
        "instalDisk",
        "unknown key",
    ),
    (
        "unknown-cluster-key",
        lambda v: v["cluster"].__setitem__("podCIDR", "10.0.0.0/16"),
        "stubernetes:cluster",
        "podCIDR",
        "unknown key",
    ),
    (
        "unknown-section",
        lambda v: v.__setitem__("machine", {}),
        "stubernetes:machine",
        "",
        "unknown config key",
    ),
]


def write_stack(values: dict[str, Any], path: Path) -> Path:
    document = {"config": {f"stubernetes:{key}": value for key, value in values.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_render(
    stack_file: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    status = main(["render", "--stack-file", str(stack_file), "--out", str(out)])
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("case", "mutate", "where", "field", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_fails_naming_machine_and_field(
    case: str,
    mutate: Mutation,
    where: str,
    field: str,
    words: str,
    raw_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mutate(raw_values)
    out = tmp_path / "out"
    status, errors = run_render(write_stack(raw_values, tmp_path / "stack.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    expected_prefix = f"error: {where}: field '{field}': " if field else f"error: {where}: "
    matching = [line for line in errors if line.startswith(expected_prefix)]
    assert matching, f"no line starts with {expected_prefix!r}: {errors}"
    assert any(words in line for line in matching), errors
    assert not out.exists()


def test_duplicate_machine_name_is_caught_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_STACK_FILE.read_text()
    duplicated = (
        text
        + "    w1:\n      mac: 52:54:00:a1:00:08\n      role: worker\n      installDisk: /dev/sda\n"
    )
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(duplicated)
    status, errors = run_render(stack_file, tmp_path / "out", capsys)
    assert status == EXIT_BAD_INPUT
    line = len(text.splitlines()) + 1
    assert errors == [
        f"error: machine 'w1': field 'name': duplicate machine name ({stack_file}:{line})"
    ]
    assert not (tmp_path / "out").exists()


def test_all_problems_are_reported_in_one_run(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_field("w1", "mac", "nope")(raw_values)
    set_field("w2", "installDisk", "nvme0n1")(raw_values)
    set_admin("sshAuthorizedKeys", [])(raw_values)
    status, errors = run_render(
        write_stack(raw_values, tmp_path / "stack.yaml"), tmp_path / "out", capsys
    )
    assert status == EXIT_BAD_INPUT
    assert [line.split(": field ")[0] for line in errors] == [
        "error: stubernetes:admin",
        "error: machine 'w1'",
        "error: machine 'w2'",
    ]


def test_a_failed_render_leaves_an_earlier_render_untouched(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    set_field("w1", "role", "boss")(raw_values)
    status, _ = run_render(write_stack(raw_values, tmp_path / "stack.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
