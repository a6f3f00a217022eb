"""Ignition 3.3 entries: files with inline contents, units and users."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_to_bytes

SPEC_VERSION = "3.3.0"

MODE_0440 = 0o440
MODE_0600 = 0o600
MODE_0644 = 0o644
MODE_0755 = 0o755


def data_url(contents: bytes) -> str:
    return "data:;base64," + base64.b64encode(contents).decode("ascii")


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a `data:` URL (RFC 2397), or None for any other source."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[len("data:") :].partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(data)
    return unquote_to_bytes(data)


def file_entry(path: str, contents: str | bytes, mode: int = MODE_0644) -> dict[str, Any]:
    """A file that replaces whatever is at `path`, with a hash Ignition checks on write.

    Modes are written as decimal integers, as the spec requires (0o440 is 288).
    """
    raw = contents.encode("utf-8") if isinstance(contents, str) else contents
    source, digest = _encoded(raw)
    return {
        "path": path,
        "mode": mode,
        "overwrite": True,
        "contents": {"source": source, "verification": {"hash": digest}},
    }


@lru_cache(maxsize=512)
def _encoded(raw: bytes) -> tuple[str, str]:
    # Most files (scripts, units, repo files) are the same on every machine: encode them once.
    return data_url(raw), "sha512-" + hashlib.sha512(raw).hexdigest()


def unit_entry(name: str, contents: str, enabled: bool = True) -> dict[str, Any]:
    return {"name": name, "enabled": enabled, "contents": contents}


def dumps(config: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no insignificant space, so equal configs are equal bytes."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
