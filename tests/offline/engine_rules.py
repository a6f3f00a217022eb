"""What `pulumi up` would do to each resource between two runs of the program under mocks.

Mocks record what the program registers, not what the engine and the providers then do with
it. This module applies the providers' own rules for replace versus update to two recorded
runs, so a test can say which resources an update would create, replace or update, and which
commands would run. The rules follow the upstream providers (see shared/REFERENCE.md):

- command:local:Command: only `triggers` replace; any other change is an in-place update, and
  an update runs `update`, or `create` again when `update` is unset (pulumi/pulumi-command
  `provider/pkg/provider/local/commandController.go`, `Update`);
- random: any input change replaces, `keepers` included (hashicorp/terraform-provider-random
  `internal/provider/resource_*.go`, bridged by pulumi-random);
- matchbox: every input of a Profile or Group forces a new resource
  (poseidon/terraform-provider-matchbox `matchbox/resource_profile.go`, `resource_group.go`);
- tls: every input replaces except `earlyRenewalHours`
  (hashicorp/terraform-provider-tls `internal/provider/resource_locally_signed_cert.go`);
- kubernetes Secret: a change of its data replaces it, the provider treating Secret data as
  immutable unless `enableSecretMutable` (pulumi/pulumi-kubernetes `provider/pkg/provider/
  provider.go`, the immutable-data diff); other changes update.
A resource named in another's `replace_with` that is replaced replaces that other one too
(the engine's `replaceWith` option).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from engine.plugins.server import urn_type

from stubernetes.mocks import Registration, unwrap_secrets

Action = Literal["create", "replace", "update", "same"]
COMMAND = "command:local:Command"
SECRET = "kubernetes:core/v1:Secret"
MACHINE = "stubernetes:machine:Machine"


def _inputs(registration: Registration) -> dict[str, Any]:
    return dict(unwrap_secrets(registration.inputs))


def _without(inputs: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if k not in keys}


def _replaces_itself(type_: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if type_ == COMMAND:
        return old.get("triggers") != new.get("triggers")
    if type_.startswith(("random:", "matchbox:index/")):
        return old != new
    if type_.startswith("tls:"):
        return _without(old, "earlyRenewalHours") != _without(new, "earlyRenewalHours")
    if type_ == SECRET:
        return any(old.get(k) != new.get(k) for k in ("data", "stringData", "type"))
    return False


def plan(before: list[Registration], after: list[Registration]) -> dict[str, Action]:
    """Each resource of `after` (by URN) with what the engine would do to it."""
    old_by_urn = {r.urn: r for r in before}
    actions: dict[str, Action] = {}
    # Registration order puts a resource after everything it names in replace_with.
    for registration in after:
        old = old_by_urn.get(registration.urn)
        if old is None:
            actions[registration.urn] = "create"
            continue
        old_inputs, new_inputs = _inputs(old), _inputs(registration)
        if registration.custom and (
            _replaces_itself(registration.type, old_inputs, new_inputs)
            or any(actions.get(urn) == "replace" for urn in registration.replace_with)
        ):
            actions[registration.urn] = "replace"
        elif old_inputs != new_inputs:
            actions[registration.urn] = "update"
        else:
            actions[registration.urn] = "same"
    return actions


def commands_that_run(
    before: list[Registration], after: list[Registration]
) -> dict[str, Literal["create", "update"]]:
    """Commands whose script would run, by name: 'create' for a create, a replacement or an
    update without an `update` command (which runs `create` again), 'update' otherwise."""
    actions = plan(before, after)
    running: dict[str, Literal["create", "update"]] = {}
    for registration in after:
        if registration.type != COMMAND:
            continue
        action = actions[registration.urn]
        if action in ("create", "replace"):
            running[registration.name] = "create"
        elif action == "update":
            has_update = bool(_inputs(registration).get("update"))
            running[registration.name] = "update" if has_update else "create"
    return running


def install_steps(after: list[Registration]) -> set[str]:
    """Names of the Commands in machines' install chains (children of a Machine component)."""
    return {r.name for r in after if r.type == COMMAND and urn_type(r.parent) == MACHINE}


def _provider_urn(reference: str) -> str:
    """A provider reference is `<urn>::<id>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


def deleted(before: list[Registration], after: list[Registration]) -> list[Registration]:
    """The resources of `before` that `after` no longer registers: the engine deletes them once
    the program has finished (pulumi/pulumi pkg/resource/deploy/step_generator.go,
    GenerateDeletes)."""
    registered = {r.urn for r in after}
    return [r for r in before if r.urn not in registered]


def delete_waves(before: list[Registration], after: list[Registration]) -> list[list[str]]:
    """The deleted resources' names in the order the engine deletes them, wave by wave: a
    resource goes only after every deleted resource that depends on it (its dependencies,
    property dependencies, parent or provider) is gone, and each wave runs in parallel
    (step_generator.go ScheduleDeletes: antichains of the previous state's dependency graph,
    reversed so that nothing is deleted while something depends on it)."""
    condemned = {r.urn: r for r in deleted(before, after)}

    def needs(registration: Registration) -> set[str]:
        urns = {*registration.dependencies, registration.parent}
        urns |= {u for deps in registration.property_dependencies.values() for u in deps}
        urns.add(_provider_urn(registration.provider))
        return urns & condemned.keys()

    waves: list[list[str]] = []
    left = dict(condemned)
    while left:
        depended_on = {urn for r in left.values() for urn in needs(r)}
        wave = [urn for urn in left if urn not in depended_on]
        assert wave, "a dependency cycle among deleted resources"
        waves.append(sorted(left[urn].name for urn in wave))
        for urn in wave:
            del left[urn]
    return waves


def deletes_that_run(before: list[Registration], after: list[Registration]) -> set[str]:
    """Deleted Commands that have a `delete` command, by name: the provider runs it with the
    inputs recorded in the state (pulumi/pulumi-command provider/pkg/provider/local/
    commandController.go, Delete); a Command without one is dropped from the state, nothing run."""
    return {
        r.name for r in deleted(before, after) if r.type == COMMAND and _inputs(r).get("delete")
    }
