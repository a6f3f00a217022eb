"""Every bootstrap token the program hands out expires a bounded time after its install began."""

from __future__ import annotations

import copy
import json
from typing import Any

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
            for r in run_program(example_values).registrations
        }

    first, second = recorded(), recorded()
    assert len(first) > 40
    assert first == second
