"""Problems found in a stack config, collected so that one run reports all of them."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
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
        elif part == "[key]":
            # Pydantic's marker for a bad map key: the path already ends with that key.
            continue
        else:
            path += f".{part}" if path else part
    return path


def _yaml_text(value: object) -> str:
    """How a scalar of this value would be written when its source text is not known."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def yaml_reading(value: object, text: str | None, subject: str = "value") -> str | None:
    """What YAML made of an unquoted scalar that was meant as text, or None if it is text.

    PyYAML implements YAML 1.1, whose implicit types (yaml.org/type/: int, float, bool, null,
    timestamp; PyYAML's `lib/yaml/resolver.py`) turn `yes`/`no`/`on`/`off`/`true`/`false`
    into booleans, `8080` and `0755` into integers, `1.30` into the float 1.3, a date into a
    date, and `10:20:30:40:50:59` into a base-60 ("sexagesimal") integer. `text` is the
    scalar as it was written, when the stack file's reader recorded it; `subject` what the
    scalar is (`value`, `key`, `machine name`).
    """
    if isinstance(value, str):
        return None
    shown = _yaml_text(value) if text is None else text
    unquoted = f"the unquoted {subject}"
    if isinstance(value, bool):
        return f"YAML read {unquoted} {shown} as the boolean {_yaml_text(value)}"
    if isinstance(value, int | float) and ":" in shown:
        number = value if isinstance(value, int) else repr(value)
        return f"YAML read {unquoted} as the base-60 number {number}"
    if isinstance(value, int):
        return f"YAML read {unquoted} {shown} as the number {value}"
    if isinstance(value, float):
        read = shown if subject == "value" else f"{unquoted} {shown}"
        return f"YAML read {read} as the number {value!r}"
    if isinstance(value, datetime.date):
        return f"YAML read {unquoted} {shown} as a date"
    if value is None:
        return f"YAML read the {subject} as null (nothing, '~' or 'null' was written)"
    return None


def _quote_hint(value: object, text: str | None, key: str | None) -> str:
    shown = (_yaml_text(value) if text is None else text).replace('"', '\\"')
    if value is None:
        return f'give it a value (an empty one is {key}: "")' if key else "give it a value"
    return f'quote it: {key}: "{shown}"' if key else f'quote it: "{shown}"'


def _message(kind: str, text: str, value: object, source: str | None, key: str | None) -> str:
    reading = yaml_reading(value, source)
    if kind == "string_type" and reading is not None:
        return f"{reading}; {_quote_hint(value, source, key)}"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling)"
    if kind == "missing":
        return "required but missing"
    # `bool_for_number`: stackconfig.strict_model.refuse_bool (problems.py sits below it).
    if kind in ("literal_error", "bool_for_number"):
        got = f"{text.removeprefix('Input ')}, got {value!r}"
        return f"{got} ({reading})" if reading is not None else got
    return text.removeprefix("Value error, ")


def from_validation_error(
    where: str,
    error: ValidationError,
    prefix: str = "",
    *,
    source: str = "",
    texts: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Pydantic's errors as problems, with stack-file (camelCase) field paths.

    `source` is the raw path of the validated value (`stubernetes:machines.w1`) and `texts` the
    stack file's scalars as written, by raw path, to say what YAML made of a value.
    """
    problems = []
    for item in error.errors():
        path = _field_path(item["loc"])
        raw_path = f"{source}.{path}" if source and path else source
        written = (texts or {}).get(raw_path)
        names = [part for part in item["loc"] if isinstance(part, str) and part != "[key]"]
        key = names[-1] if names and not isinstance(item["loc"][-1], int) else None
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = _message(item["type"], item["msg"], item["input"], written, key)
        problems.append(Problem(where, path, message))
    return problems
