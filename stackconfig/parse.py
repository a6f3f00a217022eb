"""Turn raw stack values (from a stack file or from Pulumi's config) into a `StackConfig`.

All problems are collected before failing, so a user fixes a stack file in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from stackconfig.checks import cross_machine_problems, network_problems, snippet_problems
from stackconfig.model import Admin, Cluster, Machine, Matchbox, OperatingSystem, StackConfig
from stackconfig.problems import ConfigError, Problem, from_validation_error, machine_where

NAMESPACE = "stubernetes"
SECTIONS: Mapping[str, type[BaseModel]] = {
    "cluster": Cluster,
    "os": OperatingSystem,
    "matchbox": Matchbox,
    "admin": Admin,
}
KNOWN_KEYS = (*SECTIONS, "machines")


def _section(name: str, raw: Mapping[str, Any], problems: list[Problem]) -> BaseModel | None:
    if name not in raw:
        problems.append(Problem(f"{NAMESPACE}:{name}", "", "required section is missing"))
        return None
    try:
        return SECTIONS[name].model_validate(raw[name])
    except ValidationError as error:
        problems.extend(from_validation_error(f"{NAMESPACE}:{name}", error))
        return None


def _machines(raw: object, problems: list[Problem]) -> list[Machine]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(
            Problem(f"{NAMESPACE}:machines", "", "expected a map from machine name to machine")
        )
        return []
    machines = []
    for name, fields in raw.items():
        where = machine_where(str(name))
        if not isinstance(fields, Mapping):
            problems.append(Problem(where, "", "expected a map of fields"))
            continue
        if "name" in fields:
            problems.append(Problem(where, "name", "the machine's name is its key; remove 'name'"))
            continue
        try:
            machine = Machine.model_validate({"name": str(name), **fields})
        except ValidationError as error:
            problems.extend(from_validation_error(where, error))
            continue
        problems.extend(network_problems(machine))
        problems.extend(snippet_problems(machine))
        machines.append(machine)
    return machines


def _with_default_init(machines: list[Machine]) -> tuple[Machine, ...]:
    """Without an explicit `init: true`, the first controller in file order runs kubeadm init."""
    if any(m.init for m in machines):
        return tuple(machines)
    first = next((m for m in machines if m.is_controller), None)
    return tuple(m.model_copy(update={"init": True}) if m is first else m for m in machines)


def parse_stack_config(values: Mapping[str, Any]) -> StackConfig:
    """Values keyed by section name without the namespace: {'cluster': {...}, 'machines': {...}}."""
    problems: list[Problem] = []
    for key in values:
        if key not in KNOWN_KEYS:
            problems.append(
                Problem(f"{NAMESPACE}:{key}", "", "unknown config key (check its spelling)")
            )
    sections = {name: _section(name, values, problems) for name in SECTIONS}
    machines = _machines(values.get("machines"), problems)
    problems.extend(cross_machine_problems(machines))
    if problems:
        raise ConfigError(sorted(set(problems), key=_problem_order(values)))
    return StackConfig(
        cluster=sections["cluster"],
        os=sections["os"],
        matchbox=sections["matchbox"],
        admin=sections["admin"],
        machines=_with_default_init(machines),
    )


def _problem_order(values: Mapping[str, Any]) -> Callable[[Problem], tuple[int, str, str]]:
    """Sections first, then machines in file order, so messages read like the file."""
    names = [machine_where(str(n)) for n in (values.get("machines") or {})]

    def key(problem: Problem) -> tuple[int, str, str]:
        rank = names.index(problem.where) + 1 if problem.where in names else 0
        return (rank, problem.field, problem.message)

    return key


def split_namespace(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keep `stubernetes:<key>` entries of a Pulumi config map, without the namespace.

    Keys of other namespaces (provider settings such as `kubernetes:context`) are not ours.
    """
    prefix = f"{NAMESPACE}:"
    return {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
