"""The stacks whose renders pin what the program registers: the example, and every stack the
tests build (sized stacks, a BMC, a pxeCommand, reinstalls, removals, the second founding
stage, the engine lab's and the real control plane's).

Each case is one or more renders into the same folder, as `stubernetes render --out DIR` run
again into DIR: a later render takes the earlier one's outputs.json as the stack's previous
state (stubernetes/render_outputs.py). What a case pins is, for each of its renders, the sha256
of resources.json (every resource's type, parent, dependencies, replacement options and
inputs, secrets as digests) and of outputs.json (the stack's outputs). (Not the order in which
the program registers them: the SDK registers each resource once its inputs and dependencies
resolve, and that order varies from run to run.)

    .venv/bin/python tests/offline/render_cases.py DIR    # writes DIR/<case>/stack-<n>.yaml, prints
                                                  # the `stubernetes render` lines to run
    .venv/bin/python tests/offline/render_cases.py --digests DIR  # renders them all into DIR and
                                                  # writes tests/offline/render_digests.json
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
from layers import module_path  # noqa: E402

sys.path[:0] = [p for p in module_path() if p not in sys.path]

from control_plane.stacks import with_second_controller  # noqa: E402
from engine.stacks import lab_values, read_stack_file  # noqa: E402
from program_stacks import sized_stack  # noqa: E402
from repo_paths import EXAMPLE_STACK_FILE, REPO  # noqa: E402

from stubernetes.cli import main  # noqa: E402
from stubernetes.component import CHECKOUT  # noqa: E402
from stubernetes.mocks import RecordingMonitor, StandInMocks  # noqa: E402
from stubernetes.program_run import run_under_mocks  # noqa: E402
from stubernetes.render import resource_record  # noqa: E402
from stubernetes.render_outputs import OUTPUTS_FILE  # noqa: E402

Values = dict[str, Any]
DIGESTS_FILE = "render_digests.json"
COMPONENT_CASE = "component-example"
# As the lab sets them (tests/engine/stacks.py lab_secrets): secrets, here placeholders.
LAB_SECURE = {"caCert": "ca", "clientCert": "client-cert", "clientKey": "client-key"}


@dataclass(frozen=True)
class Stage:
    """One render of a case: the stack's values (None: the example's own stack file), and
    whether it is the stage after the first update that saw the cluster answer."""

    values: Values | None
    cluster_exists: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    stages: tuple[Stage, ...]


def example() -> Values:
    """The example's values, its `secure:` values kept as they are written (so every stack
    file written from them holds its secrets as a stack file must)."""
    return read_stack_file(EXAMPLE_STACK_FILE)


def changed(values: Values, change: Callable[[Values], None]) -> Values:
    copied = copy.deepcopy(values)
    change(copied)
    return copied


def machine_field(machine: str, field: str, value: Any) -> Callable[[Values], None]:
    def change(values: Values) -> None:
        values["machines"][machine][field] = value

    return change


def removed(*machines: str) -> Callable[[Values], None]:
    def change(values: Values) -> None:
        for machine in machines:
            del values["machines"][machine]

    return change


def rebuildable(values: Values) -> None:
    values["cluster"]["allowClusterRebuild"] = True
    values["machines"]["c1"]["generation"] = 2


def in_the_lab(values: Values) -> Values:
    """tests/engine/stacks.py lab_values, with the secrets it sets apart as `secure:` values."""
    adapted = lab_values(values, "http://127.0.0.1:8080", "127.0.0.1:8081")
    for key, name in LAB_SECURE.items():
        adapted["matchbox"][key] = {"secure": f"v1:placeholder-{name}"}
    adapted["admin"]["passwordHash"] = {"secure": "v1:placeholder-password-hash"}
    return adapted


def high_availability(values: Values) -> Values:
    """tests/host/test_setup_service.py ha_values: c2 and c3 beside c1, the endpoint on a VIP."""
    grown = copy.deepcopy(values)
    grown["cluster"]["apiEndpoint"] = "192.168.10.10:6443"
    for index in (2, 3):
        grown["machines"][f"c{index}"] = {
            "mac": f"52:54:00:a1:00:1{index}",
            "role": "controller",
            "installDisk": "/dev/sda",
            "address": f"192.168.10.1{index}/24",
            "gateway": "192.168.10.1",
            "dns": ["192.168.10.1"],
        }
    return grown


IPMI = {
    "kind": "ipmi",
    "address": "10.1.0.21",
    "user": "admin",
    "password": {"secure": "v1:placeholder-ipmi-password"},
}
REDFISH = {
    "kind": "redfish",
    "address": "10.1.0.22",
    "user": "admin",
    "password": {"secure": "v1:placeholder-redfish-password"},
    "efiBoot": True,
}
PXE_COMMAND = "smartplug --cycle $name --mac $mac --ip $address"


def one(name: str, values: Values | None, cluster_exists: bool = False) -> Case:
    return Case(name, (Stage(values, cluster_exists),))


def cases() -> list[Case]:
    base = example()
    three = sized_stack(base, 3, 2)
    sizes = ((1, 2), (3, 0), (1, 4), (3, 2), (3, 3), (1, 49), (3, 47))
    seven = changed(sized_stack(base, 3, 4), machine_field("w1", "bmc", IPMI))
    reinstalled_w1 = changed(three, machine_field("w1", "generation", 2))
    reinstalled_c3 = changed(three, machine_field("c3", "generation", 2))
    return [
        one("example", None),
        one("example-cluster-exists", None, cluster_exists=True),
        Case("example-twice", (Stage(None), Stage(None))),
        *(one(f"sized-{c}c{w}w", sized_stack(base, c, w)) for c, w in sizes),
        one("sized-3c2w-cluster-exists", three, cluster_exists=True),
        one("bmc-ipmi-worker", changed(base, machine_field("w1", "bmc", IPMI))),
        one("bmc-ipmi-3c4w", seven),
        one("bmc-redfish-controller", changed(three, machine_field("c2", "bmc", REDFISH))),
        one("pxe-command", changed(base, machine_field("w1", "pxeCommand", PXE_COMMAND))),
        one("reinstall-w1", changed(base, machine_field("w1", "generation", 2))),
        one("reinstall-c2-of-3", changed(three, machine_field("c2", "generation", 2))),
        one("reinstall-init-c1-of-3", changed(three, machine_field("c1", "generation", 2))),
        one("rebuild-only-controller", changed(base, rebuildable)),
        one("rebuild-only-controller-cluster-exists", changed(base, rebuildable), True),
        one("init-not-first", changed(three, machine_field("c2", "init", True))),
        Case("reinstall-after-previous-render", (Stage(three), Stage(reinstalled_w1))),
        Case("reinstall-controller-after-previous-render", (Stage(three), Stage(reinstalled_c3))),
        Case("remove-worker", (Stage(three), Stage(changed(three, removed("w2"))))),
        Case("remove-controller", (Stage(three), Stage(changed(three, removed("c3"))))),
        one("engine-lab-solo", in_the_lab(base)),
        one("engine-lab-two-controllers", in_the_lab(with_second_controller(base))),
        one("control-plane-two-controllers", with_second_controller(base)),
        one("setup-service-three-controllers", high_availability(base)),
    ]


def stack_file(case: Case, index: int, folder: Path) -> Path:
    """The stack file of a case's `index`th render, written into `folder`."""
    path = folder / f"stack-{index + 1}.yaml"
    values = case.stages[index].values
    if values is None:
        shutil.copyfile(EXAMPLE_STACK_FILE, path)
    else:
        config = {f"stubernetes:{key}": value for key, value in values.items()}
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def render_arguments(case: Case, index: int, stack: Path, out: Path) -> list[str]:
    extra = ["--cluster-exists"] if case.stages[index].cluster_exists else []
    return ["render", "--stack-file", str(stack), "--out", str(out), *extra]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_case(case: Case, folder: Path) -> list[dict[str, str]]:
    """Render each stage of `case` into `folder`/out, in order; each render's digests."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    digests = []
    for index in range(len(case.stages)):
        stack = stack_file(case, index, folder)
        status = main(render_arguments(case, index, stack, out))
        if status != 0:
            raise RuntimeError(f"{case.name}: render {index + 1} exited {status}")
        digests.append(
            {
                "resources.json": sha256(out / "resources.json"),
                "outputs.json": sha256(out / OUTPUTS_FILE),
            }
        )
    return digests


# The component example's own config (examples/component/Pulumi.dev.yaml), its secrets as the
# engine passes them: plain values in PULUMI_CONFIG, named in PULUMI_CONFIG_SECRET_KEYS.
COMPONENT_CONFIG = {
    "matchboxHost": "matchbox.home.arpa",
    "matchboxCaCert": "example-ca-cert-pem",
    "matchboxClientCert": "example-client-cert-pem",
    "matchboxClientKey": "example-client-key-pem",
}
COMPONENT_EXAMPLE = REPO / "examples" / "component"


def component_example_resources() -> bytes:
    """What resources.json would hold for the program of examples/component (a user's own
    program with the cluster built inside it), run under the mocks as its language host runs
    it, from its own directory; the checkout's path is written `<checkout>`."""
    project = str(yaml.safe_load((COMPONENT_EXAMPLE / "Pulumi.yaml").read_text())["name"])
    config = {f"{project}:{key}": value for key, value in COMPONENT_CONFIG.items()}
    secret = sorted(f"{project}:{key}" for key in COMPONENT_CONFIG if key != "matchboxHost")
    environment = {
        "PULUMI_CONFIG": json.dumps(config),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps(secret),
    }
    saved = {key: os.environ.get(key) for key in environment}
    monitor = RecordingMonitor(StandInMocks("stubernetes"))
    here = Path.cwd()
    os.environ.update(environment)
    os.chdir(COMPONENT_EXAMPLE)

    def program() -> None:
        runpy.run_path(str(COMPONENT_EXAMPLE / "__main__.py"), run_name="__main__")

    try:
        run_under_mocks(program, monitor, "dev", project=project)
    finally:
        os.chdir(here)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    registrations = sorted(monitor.registrations, key=lambda r: (r.type, r.name))
    records = [resource_record(r) for r in registrations]
    text = json.dumps(records, indent=2, sort_keys=True) + "\n"
    # Its steps and chart are found in the checkout (stubernetes/component.py), wherever it is.
    return text.replace(str(CHECKOUT), "<checkout>").encode()


def all_digests(root: Path) -> dict[str, list[dict[str, str]]]:
    """Every case's digests, rendered under `root`; and the component example's."""
    digests = {case.name: render_case(case, root / case.name) for case in cases()}
    resources = component_example_resources()
    digests[COMPONENT_CASE] = [{"resources.json": hashlib.sha256(resources).hexdigest()}]
    return digests


def write_stack_files(root: Path) -> None:
    """Each case's stack files, and the commands that render them, for a render by hand."""
    for case in cases():
        folder = root / case.name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(len(case.stages)):
            stack = stack_file(case, index, folder)
            arguments = render_arguments(case, index, stack, folder / "out")
            print(".venv/bin/stubernetes " + " ".join(arguments))


def take_digests(root: Path, digests_file: Path, commit: str) -> None:
    """Render every case under `root` and write their digests to `digests_file`."""
    document = {
        "comment": f"Taken at commit {commit}: the renders of tests/offline/render_cases.py, each "
        "stage's resources.json and outputs.json (sha256). Take them "
        "again only for a change that means to change what the program registers: "
        ".venv/bin/python tests/offline/render_cases.py --digests DIR",
        "cases": all_digests(root),
    }
    digests_file.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the stack files and renders go")
    parser.add_argument(
        "--digests",
        action="store_true",
        help=f"render every case and write tests/offline/{DIGESTS_FILE}",
    )
    args = parser.parse_args()
    if args.digests:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=TESTS
        ).stdout.strip()
        take_digests(args.folder, Path(__file__).resolve().with_name(DIGESTS_FILE), head)
    else:
        write_stack_files(args.folder)
