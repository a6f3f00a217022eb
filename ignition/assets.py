"""The real files under ignition/files/: read as they are, or filled in as templates."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Template

FILES = resources.files("ignition") / "files"


@lru_cache(maxsize=64)
def read_asset(relative: str) -> str:
    return (FILES / relative).read_text(encoding="utf-8")


def render_template(template: str, **values: str) -> str:
    """Fill `templates/<template>`; a missing value is an error, never an empty string."""
    return Template(read_asset(f"templates/{template}")).substitute(values)
