"""Turn raw stack values (from a stack file or from Pulumi's config) into a `StackConfig`.

All problems are collected before failing, so a user fixes a stack file in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stackconfig.backups import Backups
from stackconfig.checks import (
    MachineFacts,
    api_endpoint_problems,
    cross_machine_problems,
    cross_section_problems,
    facts_of,
    machine_facts,
    network_problems,
    power_problems,
    rebuild_problems,
    snippet_problems,
    taint_problems,
)
from stackconfig.config_keys import NAMESPACE as NAMESPACE
from stackconfig.config_keys import closest_name
from stackconfig.model import (
    Admin,
    Cluster,
    Gates,
    Machine,
    Matchbox,
    OperatingSystem,
    ReleaseSettings,
    StackConfig,
    check_rfc1123_label,
)
from stackconfig.problems import ConfigError, Problem, from_validation_error, machine_where
from stackconfig.releases import release_problems
from stackconfig.vip import Vip, vip_problems

SECTIONS: Mapping[str, type[BaseModel]] = {
    "cluster": Cluster,
    "os": OperatingSystem,
    "matchbox": Matchbox,
    "admin": Admin,
}
OPTIONAL_SECTIONS: Mapping[str, type[BaseModel]] = {"gates": Gates}
_M = TypeVar("_M", bound=BaseModel)
KNOWN_KEYS = (*SECTIONS, *OPTIONAL_SECTIONS, "machines", "releases", "vip", "backups")


def _section(
    name: str, raw: Mapping[str, Any], problems: list[Problem], texts: Mapping[str, str]
) -> BaseModel | None:
    model = SECTIONS.get(name) or OPTIONAL_SECTIONS[name]
    if name not in raw:
        if name in OPTIONAL_SECTIONS:
            return model()
        problems.append(Problem(f"{NAMESPACE}:{name}", "", "required section is missing"))
        return None
    where = f"{NAMESPACE}:{name}"
    try:
        return model.model_validate(raw[name])
    except ValidationError as error:
        problems.extend(from_validation_error(where, error, source=where, texts=texts))
        return None


def _machine(
    name: str, fields: object, problems: list[Problem], texts: Mapping[str, str]
) -> Machine | None:
    """One machine, or None when it has problems (added to `problems`)."""
    where = machine_where(name)
    if not isinstance(fields, Mapping):
        problems.append(Problem(where, "", "expected a map of fields"))
        return None
    named = True
    if "name" in fields:
        problems.append(Problem(where, "name", "the machine's name is its key; remove 'name'"))
        named = False
    try:
        machine = Machine.model_validate({**fields, "name": name})
    except ValidationError as error:
        source = f"{NAMESPACE}:machines.{name}"
        problems.extend(from_validation_error(where, error, source=source, texts=texts))
        return None
    found = [
        *network_problems(machine),
        *power_problems(machine),
        *snippet_problems(machine),
        *taint_problems(machine),
    ]
    problems.extend(found)
    return machine if named and not found else None


def _machines(
    raw: object, problems: list[Problem], texts: Mapping[str, str]
) -> tuple[list[Machine], list[MachineFacts]]:
    """The valid machines, and the facts of every machine, valid or not, for the checks
    across machines."""
    if not isinstance(raw, Mapping) or not raw:
        problems.append(
            Problem(f"{NAMESPACE}:machines", "", "expected a map from machine name to machine")
        )
        return [], []
    machines = []
    facts = []
    names: set[str] = set()
    for key, fields in raw.items():
        name = str(key)
        if name in names or not isinstance(key, str):
            # Only a Python caller gets here with these (10 beside "10"): the stack file's
            # reader and JSON's text keys refuse or rule them out first.
            message = "duplicate machine name" if name in names else f"not text: {key!r}"
            problems.append(Problem(machine_where(name), "name", message))
        names.add(name)
        machine = _machine(name, fields, problems, texts)
        if machine is not None:
            machines.append(machine)
            facts.append(facts_of(machine))
        else:
            facts.append(machine_facts(name, fields))
    return machines, facts


def _releases(
    raw: object, problems: list[Problem], texts: Mapping[str, str]
) -> dict[str, ReleaseSettings]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(Problem(f"{NAMESPACE}:releases", "", "expected a map from release name"))
        return {}
    releases = {}
    for name, fields in raw.items():
        where = f"release '{name}'"
        try:
            check_rfc1123_label(str(name))
            releases[str(name)] = ReleaseSettings.model_validate(fields)
        except ValueError as error:
            if isinstance(error, ValidationError):
                source = f"{NAMESPACE}:releases.{name}"
                problems.extend(from_validation_error(where, error, source=source, texts=texts))
            else:
                problems.append(Problem(where, "name", str(error)))
    problems.extend(release_problems(releases))
    return releases


def _with_default_init(machines: list[Machine]) -> tuple[Machine, ...]:
    """Without an explicit `init: true`, the first controller in file order runs kubeadm init."""
    if any(m.init for m in machines):
        return tuple(machines)
    first = next((m for m in machines if m.is_controller), None)
    return tuple(m.model_copy(update={"init": True}) if m is first else m for m in machines)


def parse_stack_config(
    values: Mapping[str, Any], yaml_texts: Mapping[str, str] | None = None
) -> StackConfig:
    """Values keyed by section name without the namespace: {'cluster': {...}, 'machines': {...}}.

    `yaml_texts`: the stack file's unquoted typed scalars as written, by raw path
    (`stubernetes:machines.w1.mac`), so that a problem can say what YAML made of one.
    """
    texts = yaml_texts or {}
    problems: list[Problem] = []
    for key in values:
        if key not in KNOWN_KEYS:
            meant = closest_name(str(key), KNOWN_KEYS)
            hint = f"did you mean '{NAMESPACE}:{meant}'?" if meant else "check its spelling"
            problems.append(Problem(f"{NAMESPACE}:{key}", "", f"unknown config key; {hint}"))
    sections = {
        name: _section(name, values, problems, texts) for name in (*SECTIONS, *OPTIONAL_SECTIONS)
    }
    machines, facts = _machines(values.get("machines"), problems, texts)
    releases = _releases(values.get("releases"), problems, texts)
    problems.extend(cross_machine_problems(facts))
    problems.extend(cross_section_problems(values.get("cluster"), facts))
    cluster = sections["cluster"]
    backups = _optional(Backups, "backups", values, problems, texts)
    if isinstance(cluster, Cluster):
        # With backups, reinstalling the only controller restores its etcd from a snapshot.
        rebuild = cluster.allow_cluster_rebuild or "backups" in values
        problems.extend(rebuild_problems(facts, rebuild))
        problems.extend(api_endpoint_problems(cluster, facts))
        if backups is not None:
            problems.extend(restore_problems(backups, cluster))
    vip = _optional(Vip, "vip", values, problems, texts)
    if vip is not None:
        problems.extend(vip_problems(vip, cluster if isinstance(cluster, Cluster) else None, facts))
    if problems:
        raise ConfigError(sorted(set(problems), key=_problem_order(values)))
    return StackConfig(
        cluster=sections["cluster"],
        os=sections["os"],
        matchbox=sections["matchbox"],
        admin=sections["admin"],
        gates=sections["gates"],
        machines=_with_default_init(machines),
        releases=releases,
        vip=vip,
        backups=backups,
    )


def _optional(
    model: type[_M],
    name: str,
    values: Mapping[str, Any],
    problems: list[Problem],
    texts: Mapping[str, str],
) -> _M | None:
    """An optional section without defaults: absent, it is None."""
    raw = values.get(name)
    if raw is None:
        return None
    where = f"{NAMESPACE}:{name}"
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems.extend(from_validation_error(where, error, source=where, texts=texts))
        return None


def restore_problems(backups: Backups, cluster: Cluster) -> list[Problem]:
    """A named snapshot is one of this cluster's (its name starts with the cluster's)."""
    if backups.restore is None or backups.restore.startswith(f"{cluster.name}-etcd-"):
        return []
    return [
        Problem(
            f"{NAMESPACE}:backups",
            "restore",
            f"{backups.restore} is not a snapshot of cluster '{cluster.name}' (its snapshots "
            f"are named {cluster.name}-etcd-<time>-r<revision>.db.gpg)",
        )
    ]


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
    return {
        k.removeprefix(prefix): v
        for k, v in config.items()
        if isinstance(k, str) and k.startswith(prefix)
    }
