"""Problems found in a stack config, collected so that one run reports all of them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, order=True)
class Problem:
    """One problem: where it is (a machine or a section), which field, and what is wrong."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"{self.where}: field '{self.field}': {self.message}"
        return f"{self.where}: {self.message}"


class ConfigError(ValueError):
    """The stack config has problems; nothing may be generated or registered from it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def machine_where(name: str) -> str:
    return f"machine '{name}'"


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _message(kind: str, text: str, value: object) -> str:
    if kind == "extra_forbidden":
        return "unknown key (check its spelling)"
    if kind == "missing":
        return "required but missing"
    if kind == "literal_error":
        return f"{text.removeprefix('Input ')}, got {value!r}"
    return text.removeprefix("Value error, ")


def from_validation_error(where: str, error: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic's errors as problems, with stack-file (camelCase) field paths."""
    problems = []
    for item in error.errors():
        path = _field_path(item["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        problems.append(Problem(where, path, _message(item["type"], item["msg"], item["input"])))
    return problems
