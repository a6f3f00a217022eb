"""A real Matchbox (v0.11.0) serves a Flatcar machine its install profile and install Ignition
(ignition/flatcar_install.py) by MAC, and the installer's request, `?mac=<mac>&os=installed`,
the machine's own Ignition; Ignition v2.24.0's validator takes the install Ignition.

What Flatcar's Ignition reads is what Matchbox serves: spec 3.4.0, translated from the 3.3.0
stubernetes writes (poseidon/matchbox matchbox/http/ignition.go: config/v3_4
ParseCompatibleVersion; tests/real/test_matchbox_real.py). Ignition reads 3.4.0
from 2.15.0 on (coreos/ignition docs/specs.md), which Flatcar ships from major 3535 on
(stackconfig/os_flavor.py). Ignition v2.24.0, whose validator checks both forms here, is the
very release Flatcar stable 4593.2.5 ships (flatcar/flatcar-website data/releases/stable/
4593.2.5.yml: image_packages ignition 2.24.0).

The two groups per machine are Typhoon's (poseidon/typhoon bare-metal/flatcar-linux/kubernetes/
profiles.tf): selector {mac} for the install, {mac, os: installed} for the installed system;
Matchbox tries groups with more selectors first (poseidon/matchbox matchbox/server/server.go
SelectGroup). Matchbox's -data-path holds what the program registers for them (under the SDK's
mocks, written as `stubernetes render` writes it: stubernetes/render.py matchbox_files), the
machine's own Ignition included (ignition/flatcar_machine.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from matchbox_grpc import Matchbox, start_matchbox
from repo_paths import EXAMPLE_STACK_FILE
from test_matchbox_real import (
    expected_ipxe,
    get,
    hexhyp,
    ignition_validate,
    logs_on_failure,
    only_added_empty_objects,
)

from components.machine_steps import FLATCAR_INSTALL_SUFFIX
from ignition.entries import SPEC_VERSION
from ignition.flatcar_install import flatcar_install, installed_ignition_url
from stackconfig import StackConfig, parse_stack_config
from stackconfig.stackfile import read_stack_values
from stubernetes.program_run import run_program
from stubernetes.render import matchbox_files

pytestmark = pytest.mark.real

RELEASE = "4593.2.5"


def flatcar_values(**os_fields: Any) -> dict[str, Any]:
    values = copy.deepcopy(read_stack_values(EXAMPLE_STACK_FILE)[0])
    values["os"] = {"flavor": "flatcar", "channel": "stable", "version": RELEASE, **os_fields}
    return values


def flatcar_stack(**os_fields: Any) -> StackConfig:
    return parse_stack_config(flatcar_values(**os_fields))


def write_data_path(values: dict[str, Any], data: Path) -> None:
    """Each machine's two profiles and groups and their Ignition, as the program registers
    them, in the layout of Matchbox's -data-path."""
    run = run_program(values, ["matchbox"])
    for path, contents in matchbox_files(run.registrations).items():
        target = data / path.relative_to("matchbox")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(contents)


def install_id(stack: StackConfig, name: str) -> str:
    return f"{stack.cluster.name}-{name}-{FLATCAR_INSTALL_SUFFIX}"


@pytest.fixture(scope="module")
def stack() -> StackConfig:
    return flatcar_stack()


def served_form(rendered: bytes, body: bytes) -> bytes:
    """`body` if it is `rendered` as Matchbox serves it: spec 3.4.0, and otherwise only empty
    objects added (tests/real/test_matchbox_real.py says the same of the render's configs);
    else what was rendered, so that the comparison fails and shows both."""
    served = json.loads(body)
    downgraded = {**served, "ignition": {**served["ignition"], "version": SPEC_VERSION}}
    same = served["ignition"]["version"] == "3.4.0" and only_added_empty_objects(
        downgraded, json.loads(rendered)
    )
    return body if same else rendered


@pytest.fixture(scope="module")
def served(stack: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matchbox]:
    work = tmp_path_factory.mktemp("matchbox-flatcar")
    write_data_path(flatcar_values(), work / "data")
    (work / "assets").mkdir()
    server = start_matchbox(work / "data", work / "assets", work, name="matchbox-flatcar")
    yield server
    server.stop()


def test_each_mac_gets_its_install_profiles_ipxe_script(
    stack: StackConfig, served: Matchbox
) -> None:
    with logs_on_failure(served):
        for machine in stack.machines:
            answer = get(served, f"/ipxe?uuid=u&mac={hexhyp(machine.mac)}")
            assert answer.status == 200
            profile_file = served.data_path / "profiles" / f"{install_id(stack, machine.name)}.json"
            profile = json.loads(profile_file.read_text())
            assert answer.body.decode() == expected_ipxe(profile)
            assert "flatcar_production_pxe.vmlinuz" in answer.body.decode()


def test_the_pxe_boots_request_gets_the_install_ignition_as_spec_3_4(
    stack: StackConfig, served: Matchbox, tmp_path: Path
) -> None:
    """What Flatcar's Ignition fetches from `ignition.config.url` once iPXE has expanded it."""
    with logs_on_failure(served):
        for machine in stack.machines:
            answer = get(served, f"/ignition?uuid=u&mac={hexhyp(machine.mac)}")
            assert answer.status == 200
            assert answer.body == served_form(flatcar_install(stack, machine).ignition, answer.body)
            assert ignition_validate(answer.body, tmp_path) == ""


def test_the_installers_request_gets_the_machines_own_ignition(
    stack: StackConfig, served: Matchbox, tmp_path: Path
) -> None:
    with logs_on_failure(served):
        for machine in stack.machines:
            url = installed_ignition_url(stack, machine)
            target = url.removeprefix(stack.matchbox.http_endpoint)
            answer = get(served, target)
            assert answer.status == 200
            own = served.data_path / "ignition" / f"{stack.cluster.name}-{machine.name}.ign"
            assert answer.body == served_form(own.read_bytes(), answer.body)
            # Flatcar's own: its binaries in /opt/bin (ignition/flatcar_machine.py).
            paths = {f["path"] for f in json.loads(answer.body)["storage"]["files"]}
            assert "/opt/bin/kubelet" in paths
            assert ignition_validate(answer.body, tmp_path) == ""


def test_an_unknown_mac_gets_no_install(served: Matchbox) -> None:
    with logs_on_failure(served):
        assert get(served, "/ipxe?mac=52-54-00-ff-ff-99").status == 404
        assert get(served, "/ignition?mac=52:54:00:ff:ff:99&os=installed").status == 404


@pytest.mark.parametrize("cached", [False, True])
def test_ignition_v2_24_0_takes_the_install_ignition(cached: bool, tmp_path: Path) -> None:
    stack = flatcar_stack(cachedInstall=cached)
    for machine in stack.machines:
        assert ignition_validate(flatcar_install(stack, machine).ignition, tmp_path) == ""
