"""Every bootstrap token the program hands out expires a bounded time after its install began."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from control_plane.program_output import render_program
from control_plane.stacks import with_second_controller

from stubernetes.mocks import unwrap_secrets
from stubernetes.program_run import run_program
from stubernetes.render import resource_record

SECRET = "kubernetes:core/v1:Secret"
COMMAND = "command:local:Command"


def token_secrets(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    run = run_program(values, ["matchbox"])
    return {
        r.name: unwrap_secrets(r.inputs)["stringData"]
        for r in run.registrations
        if r.type == SECRET
    }


def test_tokens_expire_install_credential_hours_after_the_install_clock(
    example_values: dict[str, Any],
) -> None:
    # The stand-in world's clock is 2025-01-01T00:00:00Z (stubernetes/standin_pki.py EPOCH),
    # which the mocks' install clock prints; the default lifetime is 6 hours.
    secrets = token_secrets(example_values)
    assert set(secrets) == {f"lab-{m}-bootstrap-token" for m in ("c1", "w1", "w2")}
    assert {s["expiration"] for s in secrets.values()} == {"2025-01-01T06:00:00Z"}
    values = copy.deepcopy(example_values)
    values["cluster"]["installCredentialHours"] = 2
    assert {s["expiration"] for s in token_secrets(values).values()} == {"2025-01-01T02:00:00Z"}


def test_the_install_clock_is_the_machines_first_step(example_values: dict[str, Any]) -> None:
    run = run_program(example_values, ["matchbox"])
    by_urn = {r.urn: r for r in run.registrations}
    clock = next(r for r in run.registrations if r.name == "lab-w1-install-clock")
    assert clock.inputs["create"] == "bash components/scripts/install-clock"
    # Replaced with the machine's install anchor, so every reinstall reads the clock again.
    assert [by_urn[u].name for u in clock.replace_with] == ["lab-w1-install"]
    secret = next(r for r in run.registrations if r.name == "lab-w1-bootstrap-token")
    assert clock.urn in secret.property_dependencies.get("stringData", []) or clock.urn in (
        secret.dependencies
    )


def test_an_unchanged_stack_registers_the_same_inputs_twice(
    example_values: dict[str, Any],
) -> None:
    """Nothing the program registers reads the clock while it runs."""

    def recorded() -> dict[str, str]:
        return {
            r.urn: json.dumps(resource_record(r), sort_keys=True)
            for r in run_program(example_values, ["matchbox"]).registrations
        }

    first, second = recorded(), recorded()
    assert len(first) > 40
    assert first == second


# A bootstrap token as kubeadm writes it, "[a-z0-9]{6}.[a-z0-9]{16}" (kubernetes
# staging/src/k8s.io/cluster-bootstrap/token/api/types.go BootstrapTokenPattern).
TOKEN_PATTERN = re.compile(rb"\b([a-z0-9]{6})\.([a-z0-9]{16})\b")


def test_every_token_in_any_ignition_is_its_machines_own_secret_that_expires(
    example_values: dict[str, Any],
) -> None:
    """Offline, what the real and engine tests check against an API server: every bootstrap
    token anywhere in any machine's Ignition (every file it writes) is that machine's own,
    and its Secret carries an expiration (bootstrap.kubernetes.io/token: the token cleaner
    deletes it then, kubernetes pkg/controller/bootstrap/tokencleaner.go)."""
    output = render_program(with_second_controller(example_values))
    assert set(output.machines) == {"c1", "c2", "w1", "w2"}
    for name, machine in output.machines.items():
        found = {
            (m.group(1).decode(), m.group(2).decode())
            for file in machine.files.values()
            for m in TOKEN_PATTERN.finditer(file.contents)
        }
        secret = output.token_secrets[name]["stringData"]
        assert found == {(secret["token-id"], secret["token-secret"])}, name
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", secret["expiration"]), name
