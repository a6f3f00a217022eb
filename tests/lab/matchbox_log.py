"""What the lab's machines asked the real Matchbox, read from Matchbox's own log.

Matchbox logs through logrus' text formatter (``time="..." level=info msg="..." key=value``,
values quoted with Go's ``%q`` when they need it), on standard error, which the fixture sends
to a file. What poseidon/matchbox v0.11.0 writes there:

* every HTTP request, before it is handled: ``HTTP <method> <URL>`` at info
  (``matchbox/http/handlers.go`` logRequest, on every route, ``/assets/`` included);
* for ``/ipxe``: ``Matched an iPXE config`` (debug, with ``profile=``) or, just before
  answering 404, ``No matching profile`` (info) (``matchbox/http/ipxe.go``);
* for ``/ignition``: ``Matched an Ignition or Container Linux Config template`` (debug, with
  ``group=`` and ``profile=``) or, just before answering 404, ``No matching group``,
  ``No profile named: <id>`` or ``No Ignition or Container Linux Config template named:
  <name>`` (info) (``matchbox/http/ignition.go``).

So a request's status is known from the log for ``/ipxe`` and ``/ignition`` only; the lab boots
one machine at a time, so each selection line belongs to the request logged before it.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
SELECTING_PATHS = ("/ipxe", "/ignition")
MATCHED = ("Matched an iPXE config", "Matched an Ignition or Container Linux Config template")
NOT_FOUND = (
    "No matching profile",
    "No matching group",
    "No profile named: ",
    "No Ignition or Container Linux Config template named: ",
)


def parse_line(line: str) -> dict[str, str]:
    """The fields of one logrus text line (``msg``, ``level``, ``profile``, ...)."""
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"'):
            # Go's %q; for what Matchbox logs (URLs, ids, map[...] labels) JSON reads it alike.
            value = json.loads(value)
        fields[key] = value
    return fields


@dataclass
class LoggedRequest:
    method: str
    target: str  # the URL as logged: path and raw query
    selection: dict[str, str] = field(default_factory=dict)  # the selection line's fields

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urllib.parse.urlsplit(self.target).query

    @property
    def params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)

    @property
    def status(self) -> int | None:
        """200 or 404 for ``/ipxe`` and ``/ignition`` (see the module docstring); else None."""
        message = self.selection.get("msg", "")
        if message in MATCHED:
            return 200
        if message.startswith(NOT_FOUND):
            return 404
        return None


def parse_requests(text: str) -> list[LoggedRequest]:
    requests: list[LoggedRequest] = []
    for line in text.splitlines():
        fields = parse_line(line)
        message = fields.get("msg", "")
        if message.startswith("HTTP "):
            method, _, target = message[len("HTTP ") :].partition(" ")
            requests.append(LoggedRequest(method, target))
        elif message in MATCHED or message.startswith(NOT_FOUND):
            pending = [r for r in requests if r.path in SELECTING_PATHS and not r.selection]
            if not pending:
                raise ValueError(f"a selection line with no request before it: {line}")
            pending[-1].selection = fields
    return requests


class MatchboxLog:
    """A Matchbox log file, read from a mark: ``mark()`` before a boot, ``since(mark)`` after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int = 0) -> list[LoggedRequest]:
        with self.path.open("rb") as f:
            f.seek(mark)
            return parse_requests(f.read().decode(errors="replace"))
