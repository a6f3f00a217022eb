"""The base of every stack-config section model, and its whole numbers: below model.py, so that
the sections in modules of their own (stackconfig/vip.py, stackconfig/backups.py) share them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

BOOL_FOR_NUMBER = "bool_for_number"
"""The error kind of a boolean given where a whole number belongs (see `refuse_bool`)."""


def refuse_bool(value: object) -> object:
    """Pydantic's lax mode reads True as 1 for an int field, so `pollSeconds: yes` (a YAML 1.1
    boolean) would quietly become 1. Refused as a `bool_for_number` error, whose message
    `stackconfig.problems` completes with what YAML read and how the value was written."""
    if isinstance(value, bool):
        raise PydanticCustomError(BOOL_FOR_NUMBER, "Input should be a whole number")
    return value


# Every integer of the stack: a number, never a boolean (strings of digits stay as pydantic's
# lax mode reads them).
WholeNumber = Annotated[int, BeforeValidator(refuse_bool)]


class StrictModel(BaseModel):
    """Stack-file keys are camelCase; unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )
