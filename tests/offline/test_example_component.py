"""`examples/component`: a user's own Pulumi program with a stubernetes cluster built inside it,
run under the SDK's mocks as the language host runs it."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc
from repo_paths import REPO

from stackconfig import ConfigError, StackConfig
from stubernetes.component import CHECKOUT, stack_config
from stubernetes.mocks import RecordingMonitor, Registration, StandInMocks, unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program, run_under_mocks

EXAMPLE = REPO / "examples" / "component"
PROJECT = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())["name"]
SECRETS = {
    "matchboxCaCert": "example-ca-cert-pem",
    "matchboxClientCert": "example-client-cert-pem",
    "matchboxClientKey": "example-client-key-pem",
}
COMMAND = "command:local:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"
# The releases of our own charts (stubernetes/component.py LOCAL_CHARTS), by release name: the
# storage release openebs is charts/stubernetes-local-storage.
LOCAL = ("stubernetes-core", "openebs", "lan", "household-dns")


def run_example(monkeypatch: pytest.MonkeyPatch) -> tuple[ProgramRun, StackConfig]:
    config = {f"{PROJECT}:matchboxHost": "matchbox.home.arpa"}
    config |= {f"{PROJECT}:{key}": value for key, value in SECRETS.items()}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv(
        "PULUMI_CONFIG_SECRET_KEYS", json.dumps(sorted(f"{PROJECT}:{k}" for k in SECRETS))
    )
    # Pulumi runs a program from its project directory.
    monkeypatch.chdir(EXAMPLE)
    monitor = RecordingMonitor(StandInMocks("stubernetes"))
    module: dict[str, Any] = {}

    def program() -> None:
        module.update(runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__"))

    run_under_mocks(program, monitor, stack="dev", project=PROJECT)
    return ProgramRun(monitor.registrations, monitor.stack_outputs), module["stack"]


def by_key(registrations: list[Registration]) -> dict[tuple[str, str], Registration]:
    return {(r.type, r.name): r for r in registrations}


def test_the_example_builds_a_whole_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    run, stack = run_example(monkeypatch)
    resources = by_key(run.registrations)
    for machine in ("c1", "w1"):
        assert ("matchbox:index/profile:Profile", f"home-{machine}") in resources
        assert ("matchbox:index/group:Group", f"home-{machine}") in resources
        assert (COMMAND, f"home-{machine}-network-boot") in resources
    assert {(RELEASE, n) for n in ("stubernetes-core", "household-dns")} <= set(resources)
    assert run.registrations[0].urn.startswith(f"urn:pulumi:dev::{PROJECT}::")
    # Its own export beside the cluster's.
    assert run.stack_outputs["controllers"] == ["c1"]
    assert rpc.is_rpc_secret(run.stack_outputs["kubeconfig"])
    assert set(run.stack_outputs) >= {"kubeconfig", "installed", "machines", "controllers"}
    assert [m.name for m in stack.machines] == ["c1", "w1"]


def test_steps_and_chart_are_found_in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the example's own directory, every step still finds its script and the core
    release its chart: they are pointed at the stubernetes checkout, and nothing else is."""
    run, _ = run_example(monkeypatch)
    commands = [r for r in run.registrations if r.type == COMMAND]
    # Each machine's install and membership steps (a controller's two certificate steps besides
    # a worker's) and the three gates.
    steps = {r.name for r in commands if r.name.startswith("home-c1-")}
    worker_steps = {r.name for r in commands if r.name.startswith("home-w1-")}
    assert len(worker_steps) >= 3 and len(steps) == len(worker_steps) + 2
    assert len(commands) == len(steps) + len(worker_steps) + 3
    for command in commands:
        inputs = unwrap_secrets(command.inputs_in_place)
        assert inputs["dir"] == str(CHECKOUT), command.name
        # The script it runs: its create's, or for the membership step, its delete's.
        ours = [inputs[k] for k in ("create", "delete") if inputs.get(k, "").startswith("bash ")]
        assert ours, command.name
        script = ours[0].split()[1]
        assert (CHECKOUT / script).is_file(), script
    for release in [r for r in run.registrations if r.type == RELEASE and r.name in LOCAL]:
        chart = Path(release.inputs_in_place["chart"])
        assert chart.is_absolute() and (chart / "Chart.yaml").is_file(), release.name
    others = [r for r in run.registrations if r.type == RELEASE and r.name not in LOCAL]
    assert others
    assert all(not Path(r.inputs_in_place["chart"]).is_absolute() for r in others)


def test_its_secrets_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = run_example(monkeypatch)

    def plain_strings(value: Any) -> list[str]:
        if rpc.is_rpc_secret(value):
            return []
        if isinstance(value, dict):
            return [s for v in value.values() for s in plain_strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in plain_strings(v)]
        return [value] if isinstance(value, str) else []

    for registration in run.registrations:
        visible = " ".join(plain_strings(registration.inputs_in_place))
        leaked = [name for name, value in SECRETS.items() if value in visible]
        assert leaked == [], registration.name
    (provider,) = [r for r in run.registrations if r.type == "pulumi:providers:matchbox"]
    assert rpc.is_rpc_secret(provider.inputs_in_place["clientKey"])


def as_values(stack: StackConfig) -> dict[str, Any]:
    """A StackConfig back as stack-file values (the shape `stack_config` takes)."""
    dumped = stack.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped["machines"] = {
        m.pop("name"): m for m in (dict(machine) for machine in dumped["machines"])
    }
    return dumped


def test_it_registers_what_the_project_program_registers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same stack through this project's own program registers the same resources with the
    same inputs; the only differences are where steps and chart are found, and the name of the
    stack the program reads its own previous outputs from."""
    example, stack = run_example(monkeypatch)
    monkeypatch.chdir(REPO)
    own = run_program(as_values(stack), secret_keys=["matchbox"], stack="dev")
    mine, theirs = by_key(example.registrations), by_key(own.registrations)
    assert set(mine) == set(theirs)
    for key, registration in mine.items():
        if key[0] == "pulumi:pulumi:StackReference":
            continue
        inputs = dict(registration.inputs_in_place)
        if key[0] == COMMAND:
            assert inputs.pop("dir") == str(CHECKOUT)
        if key in {(RELEASE, name) for name in LOCAL}:
            inputs["chart"] = str(Path(inputs["chart"]).relative_to(CHECKOUT))
        assert inputs == theirs[key].inputs_in_place, key


def test_a_bad_dict_fails_with_every_problem() -> None:
    with pytest.raises(ConfigError) as error:
        stack_config({"cluster": {"name": "Home"}, "machines": {"c1": {"mac": "nope"}}})
    text = str(error.value)
    assert "machine 'c1': field 'mac': malformed MAC address 'nope'" in text
    assert "stubernetes:admin" in text and "stubernetes:cluster" in text


def test_a_snippet_over_the_programs_own_file_is_refused(example_stack: StackConfig) -> None:
    """The component runs the checks the CLI and the program run, not the parser alone."""
    values = as_values(example_stack)
    sudoers = {"path": "/etc/sudoers.d/stubernetes-admin", "contents": {"source": "data:,"}}
    values["machines"]["w1"]["snippets"] = [{"storage": {"files": [sudoers]}}]
    with pytest.raises(ConfigError) as error:
        stack_config(values)
    assert "machine 'w1': field 'snippets[0].storage.files[0].path': collides with" in str(
        error.value
    )
