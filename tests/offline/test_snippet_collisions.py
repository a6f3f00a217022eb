"""A machine's snippets may add to what the program writes there, never take it over (Ignition
merges them over the program's config, the snippet's fields winning: coreos/ignition
config/merge/merge.go)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
from program_stacks import sized_stack
from test_stack_bad_input import run_render, write_stack

import ignition.snippet_collisions as collisions
from ignition.owned_entries import OwnedEntries, machine_owned_entries, owned_entries
from ignition.snippet_collisions import snippet_collisions
from stackconfig import StackConfig, parse_stack_config
from stackconfig.model import Machine
from stubernetes.cli import EXIT_BAD_INPUT
from stubernetes.mocks import RecordingMonitor, StandInMocks
from stubernetes.program_run import run_program

DATA = {"source": "data:,hello"}
SUDOERS = "/etc/sudoers.d/stubernetes-admin"
DROP_IN = {"name": "10-mine.conf", "contents": "[Service]\nEnvironment=X=1\n"}


def with_snippets(values: dict[str, Any], name: str, *snippets: dict[str, Any]) -> StackConfig:
    values["machines"][name]["snippets"] = list(snippets)
    return parse_stack_config(values)


def found(stack: StackConfig) -> list[tuple[str, str, str]]:
    return [(p.where, p.field, p.message) for p in snippet_collisions(stack)]


def fields(stack: StackConfig) -> list[str]:
    return [p.field for p in snippet_collisions(stack)]


def test_additions_of_its_own_are_allowed(raw_values: dict[str, Any]) -> None:
    stack = with_snippets(
        raw_values,
        "w1",
        {
            "storage": {
                "files": [
                    {"path": "/etc/motd.d/mine.motd", "contents": DATA},
                    {"path": "/etc/sudoers.d/someone-else", "contents": DATA},
                    # A drop-in of the program's unit, as a file: the unit's own stays.
                    {
                        "path": "/etc/systemd/system/stubernetes-setup.service.d/10-x.conf",
                        "contents": DATA,
                    },
                ],
                "directories": [{"path": "/var/lib/mine"}],
            },
            "systemd": {
                "units": [
                    {"name": "mine.service", "enabled": True, "contents": "[Service]\n"},
                    {"name": "stubernetes-setup.service", "dropins": [DROP_IN]},
                ]
            },
            "passwd": {"users": [{"name": "someone", "groups": ["wheel"]}]},
        },
    )
    assert found(stack) == []


@pytest.mark.parametrize(
    ("snippet", "field", "words"),
    [
        (
            {
                "storage": {
                    "files": [{"path": "/etc/sudoers.d/stubernetes-admin", "contents": DATA}]
                }
            },
            "snippets[0].storage.files[0].path",
            "collides with the program's file /etc/sudoers.d/stubernetes-admin: ",
        ),
        (
            {"storage": {"files": [{"path": "/etc/hostname", "append": [DATA]}]}},
            "snippets[0].storage.files[0].path",
            "collides with the program's file /etc/hostname",
        ),
        (
            {"storage": {"links": [{"path": "/etc/stubernetes/kubeadm.yaml", "target": "/x"}]}},
            "snippets[0].storage.links[0].path",
            "collides with the program's file /etc/stubernetes/kubeadm.yaml",
        ),
        (
            {"storage": {"links": [{"path": "/etc/sudoers.d", "target": "/var/mine"}]}},
            "snippets[0].storage.links[0].path",
            "'/etc/sudoers.d' is a directory above the program's file "
            "/etc/sudoers.d/stubernetes-admin",
        ),
        (
            {"storage": {"directories": [{"path": "/var/usrlocal/lib/stubernetes", "mode": 511}]}},
            "snippets[0].storage.directories[0].path",
            "is a directory above the program's file /usr/local/lib/stubernetes/",
        ),
        (
            {"storage": {"files": [{"path": "/etc/systemd/system/stubernetes-setup.service"}]}},
            "snippets[0].storage.files[0].path",
            "collides with the file of the program's unit stubernetes-setup.service",
        ),
        (
            {"systemd": {"units": [{"name": "stubernetes-setup.service", "mask": True}]}},
            "snippets[0].systemd.units[0].mask",
            "collides with the program's unit stubernetes-setup.service: Ignition would take "
            "its 'mask' from the snippet",
        ),
        (
            {"systemd": {"units": [{"name": "stubernetes-setup.service", "enabled": False}]}},
            "snippets[0].systemd.units[0].enabled",
            "Ignition would take its 'enabled' from the snippet",
        ),
        (
            {"systemd": {"units": [{"name": "stubernetes-status-report.timer", "contents": "x"}]}},
            "snippets[0].systemd.units[0].contents",
            "collides with the program's unit stubernetes-status-report.timer",
        ),
        (
            {"passwd": {"users": [{"name": "core-admin", "shell": "/bin/zsh"}]}},
            "snippets[0].passwd.users[0].name",
            "collides with the program's user 'core-admin'",
        ),
        (
            {"passwd": {"users": [{"name": "core-admin", "groups": ["docker"]}]}},
            "snippets[0].passwd.users[0].name",
            "its groups and SSH keys added",
        ),
        (
            {"passwd": {"groups": [{"name": "sudo", "shouldExist": False}]}},
            "snippets[0].passwd.groups[0].name",
            "'sudo' is a group the program declares or puts its user in",
        ),
    ],
)
def test_taking_over_is_refused(
    snippet: dict[str, Any], field: str, words: str, raw_values: dict[str, Any]
) -> None:
    stack = with_snippets(raw_values, "w1", snippet)
    problems = found(stack)
    assert [(where, f) for where, f, _ in problems] == [("machine 'w1'", field)]
    assert words in problems[0][2]


def test_every_collision_of_every_snippet_is_named(raw_values: dict[str, Any]) -> None:
    stack = with_snippets(
        raw_values,
        "w1",
        {"storage": {"files": [{"path": "/etc/motd.d/x", "contents": DATA}]}},
        {
            "storage": {
                "files": [
                    {"path": "/etc/motd.d/y", "contents": DATA},
                    {"path": "/etc/hostname", "contents": DATA},
                ]
            },
            "systemd": {"units": [{"name": "stubernetes-setup.service", "contents": "x"}]},
        },
    )
    assert fields(stack) == [
        "snippets[1].storage.files[1].path",
        "snippets[1].systemd.units[0].contents",
    ]


def test_what_is_owned_depends_on_the_machine(raw_values: dict[str, Any]) -> None:
    keyfile = "/etc/NetworkManager/system-connections/stubernetes-static.nmconnection"
    renewal = "/usr/local/bin/stubernetes-renew-certs"
    snippet = {
        "storage": {"files": [{"path": keyfile, "contents": DATA}, {"path": renewal}]},
    }
    for name in ("c1", "w1", "w2"):
        raw_values["machines"][name]["snippets"] = [snippet]
    stack = parse_stack_config(raw_values)
    assert [(p.where, p.field) for p in snippet_collisions(stack)] == [
        ("machine 'c1'", "snippets[0].storage.files[0].path"),  # static address
        ("machine 'c1'", "snippets[0].storage.files[1].path"),  # a controller renews
        ("machine 'w1'", "snippets[0].storage.files[0].path"),  # static address
    ]  # w2: DHCP, a worker: neither is the program's there


def test_a_drop_in_of_the_programs_own_name_is_refused() -> None:
    owned = owned_entries(
        {
            "systemd": {
                "units": [{"name": "x.service", "contents": "", "dropins": [{"name": "10.conf"}]}]
            }
        }
    )
    machine = Machine.model_validate(
        {
            "name": "w9",
            "mac": "52:54:00:a1:00:99",
            "role": "worker",
            "installDisk": "/dev/sda",
            "snippets": [
                {"systemd": {"units": [{"name": "x.service", "dropins": [{"name": "10.conf"}]}]}}
            ],
        }
    )
    problems = collisions.machine_snippet_collisions(machine, owned)
    assert [p.field for p in problems] == ["snippets[0].systemd.units[0].dropins[0].name"]
    assert problems[0].message.startswith("collides with the program's drop-in 10.conf")


def test_a_file_the_program_adds_is_protected_at_once(
    raw_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is listed by hand: a file the generated config gains is owned."""
    new_file = "/etc/stubernetes/a-file-added-later"
    stack = with_snippets(
        raw_values, "w1", {"storage": {"files": [{"path": new_file, "contents": DATA}]}}
    )
    assert found(stack) == []
    real = machine_owned_entries

    def with_new_file(stack: StackConfig, machine: Machine) -> OwnedEntries:
        owned = real(stack, machine)
        nodes = {**owned.nodes, new_file: f"the program's file {new_file}"}
        return OwnedEntries(nodes, owned.units, owned.users, owned.groups)

    monkeypatch.setattr(collisions, "machine_owned_entries", with_new_file)
    assert fields(stack) == ["snippets[0].storage.files[0].path"]


def test_only_machines_with_snippets_are_generated(
    example_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = sized_stack(example_values, 3, 97)
    values["machines"]["w5"]["snippets"] = [{"storage": {"files": [{"path": "/etc/x"}]}}]
    stack = parse_stack_config(values)
    generated: list[str] = []

    def counting(stack: StackConfig, machine: Machine) -> OwnedEntries:
        generated.append(machine.name)
        return machine_owned_entries(stack, machine)

    monkeypatch.setattr(collisions, "machine_owned_entries", counting)
    assert snippet_collisions(stack) == []
    assert generated == ["w5"]


def test_the_check_is_deterministic(raw_values: dict[str, Any]) -> None:
    stack = with_snippets(
        raw_values,
        "c1",
        {"storage": {"files": [{"path": p} for p in ("/etc/hostname", "/etc/sudoers.d")]}},
    )
    assert found(stack) == found(stack)
    assert len(found(stack)) == 2


def test_500_machines_with_snippets_are_checked_in_about_a_second(
    example_values: dict[str, Any],
) -> None:
    values = sized_stack(example_values, 3, 497)
    for fields_ in values["machines"].values():
        fields_["snippets"] = [{"storage": {"files": [{"path": "/etc/motd.d/x"}]}}]
    stack = parse_stack_config(values)
    start = time.perf_counter()
    assert snippet_collisions(stack) == []
    elapsed = time.perf_counter() - start
    # Measured at 0.3-0.5 s on the project's 2-core machine; a margin for a loaded one.
    assert elapsed < 10, elapsed


def test_the_cli_refuses_before_writing(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["machines"]["w1"]["snippets"] = [
        {"storage": {"files": [{"path": "/etc/hostname", "contents": DATA}]}}
    ]
    out = tmp_path / "out"
    status, errors = run_render(write_stack(raw_values, tmp_path / "Pulumi.s.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    assert errors == [
        "error: machine 'w1': field 'snippets[0].storage.files[0].path': collides with the "
        "program's file /etc/hostname: Ignition merges a snippet's files, directories and "
        "links into the program's by path, the snippet's fields winning, so this entry would "
        "replace or change it; use a path of your own"
    ]
    assert not out.exists()


def test_the_program_refuses_before_any_resource(example_values: dict[str, Any]) -> None:
    values = {**example_values, "machines": dict(example_values["machines"])}
    values["machines"]["w1"] = {
        **values["machines"]["w1"],
        "snippets": [{"systemd": {"units": [{"name": "stubernetes-setup.service", "mask": True}]}}],
    }
    monitor = RecordingMonitor(StandInMocks("x"))
    with pytest.raises(
        pulumi.RunError, match=r"machine 'w1': field 'snippets\[0\]\.systemd\.units\[0\]\.mask'"
    ):
        run_program(values, secret_keys=["matchbox"], monitor=monitor)
    assert monitor.registrations == []
