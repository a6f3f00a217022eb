"""A stand-in for Matchbox's read-only HTTP API, for tests.

It serves a Matchbox data directory (the layout ``matchbox -data-path`` reads) plus an
assets directory, on 127.0.0.1 and a free port, from a thread. It is written from
Matchbox's documented behaviour (docs/api-http.md) and its source
(matchbox/http/ipxe.go, matchbox/http/parse.go, matchbox/server/server.go SelectGroup,
matchbox/storage/storagepb/group.go Normalize/ByReqs, matchbox/storage/filestore.go):

* ``GET /boot.ipxe`` (and ``/boot.ipxe.0``) answers a script that chains to
  ``ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}``.
* ``GET /ipxe`` selects a group by the query labels, loads its profile and renders
  ``#!ipxe``, ``kernel <kernel> <args...>``, one ``initrd <x>`` line per initrd, ``boot``.
* ``GET /ignition`` selects a group and answers the profile's Ignition file
  (``ignition/<ignition_id>``).
* ``GET /assets/<path>`` answers static files from the assets directory.

Selection, as Matchbox does it:

* Labels are the request's query parameters (the first value of each). A ``mac`` label
  (key compared case-insensitively) is parsed like Go's ``net.ParseMAC`` and rewritten to
  lowercase colon form; a value that does not parse is dropped, as Matchbox drops it.
* Groups are read from ``groups/*.json`` on every request; a group whose ``mac``
  selector does not parse is skipped (Matchbox logs and skips it).
* A group matches when every selector equals the label of the same key.
* Groups are tried from the most selectors to the fewest. Among groups with as many
  selectors, Matchbox sorts by the sorted, comma-joined ``key=value`` selector string and
  reverses that order (``sort.Sort(sort.Reverse(ByReqs))``), so the greater string is
  tried first. Groups with identical selectors are unordered in Matchbox (``sort.Sort``
  is not stable); this fixture tries them by ascending id so it is deterministic.
* No matching group, or a group whose profile is missing: 404.

Differences from the real server, on purpose: raw Ignition (``*.ign``/``*.ignition``)
is served byte for byte (current Matchbox parses it and re-serves it as spec 3.4);
templated Ignition/Butane, ``/metadata``, ``/generic``, ``/grub`` and signatures are not
implemented (501 for a non-raw ignition id, 404 for unknown paths).

Every request is recorded (method, path, raw query, parsed query, status, sha256 of the
body sent) in :attr:`MatchboxHTTP.requests` so tests can assert what a machine asked for.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import posixpath
import re
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOOT_IPXE = (
    "#!ipxe\n"
    "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}"
    "&hostname=${hostname}&serial=${serial}\n"
)

_HEX = "0123456789abcdefABCDEF"


def parse_mac(value: str) -> str:
    """Parse a MAC address the way Go's ``net.ParseMAC`` does; return ``aa:bb:...``.

    Accepted forms (hex digits of either case): ``aa:bb:cc:dd:ee:ff``,
    ``aa-bb-cc-dd-ee-ff``, ``aabb.ccdd.eeff``, for 6, 8 or 20 octets (EUI-48, EUI-64,
    20-octet IP over InfiniBand). Raises ``ValueError`` otherwise.
    """
    s = value
    if len(s) < 14:
        raise ValueError(f"invalid MAC address: {value!r}")
    octets: list[int] = []
    if s[2] in ":-":
        sep = s[2]
        if (len(s) + 1) % 3 != 0:
            raise ValueError(f"invalid MAC address: {value!r}")
        n = (len(s) + 1) // 3
        if n not in (6, 8, 20):
            raise ValueError(f"invalid MAC address: {value!r}")
        for i in range(n):
            part = s[3 * i : 3 * i + 2]
            if i < n - 1 and s[3 * i + 2] != sep:
                raise ValueError(f"invalid MAC address: {value!r}")
            octets.append(_hex_octet(part, value))
    elif s[4] == ".":
        if (len(s) + 1) % 5 != 0:
            raise ValueError(f"invalid MAC address: {value!r}")
        n = 2 * (len(s) + 1) // 5
        if n not in (6, 8, 20):
            raise ValueError(f"invalid MAC address: {value!r}")
        for i in range(n // 2):
            group = s[5 * i : 5 * i + 4]
            if i < n // 2 - 1 and s[5 * i + 4] != ".":
                raise ValueError(f"invalid MAC address: {value!r}")
            octets.append(_hex_octet(group[0:2], value))
            octets.append(_hex_octet(group[2:4], value))
    else:
        raise ValueError(f"invalid MAC address: {value!r}")
    return ":".join(f"{o:02x}" for o in octets)


def _hex_octet(part: str, original: str) -> int:
    if len(part) != 2 or any(c not in _HEX for c in part):
        raise ValueError(f"invalid MAC address: {original!r}")
    return int(part, 16)


def request_labels(query: str) -> dict[str, str]:
    """Labels Matchbox derives from a raw query string (``labelsFromRequest``)."""
    labels: dict[str, str] = {}
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    for key, vals in values.items():
        if key.lower() == "mac":
            try:
                labels[key] = parse_mac(vals[0])
            except ValueError:
                continue
        else:
            labels[key] = vals[0]
    return labels


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    profile: str
    selector: dict[str, str]
    metadata: dict[str, Any]

    def selector_string(self) -> str:
        return ",".join(sorted(f"{k}={v}" for k, v in self.selector.items()))

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())


def load_group(raw: bytes) -> Group:
    """Parse and normalise a group file (``storagepb.ParseGroup``)."""
    doc = json.loads(raw)
    selector = {str(k): str(v) for k, v in (doc.get("selector") or {}).items()}
    for key, val in list(selector.items()):
        if key.lower() == "mac":
            selector[key] = parse_mac(val)
    return Group(
        id=str(doc.get("id", "")),
        name=str(doc.get("name", "")),
        profile=str(doc.get("profile", "")),
        selector=selector,
        metadata=dict(doc.get("metadata") or {}),
    )


def order_groups(groups: Iterable[Group]) -> list[Group]:
    """The order Matchbox tries groups in (see the module docstring)."""
    by_id = sorted(groups, key=lambda g: g.id)
    # Stable sorts, least significant key first: selector string descending, then
    # number of selectors descending.
    by_id.sort(key=lambda g: g.selector_string().encode(), reverse=True)
    by_id.sort(key=lambda g: len(g.selector), reverse=True)
    return by_id


def select_group(groups: Iterable[Group], labels: dict[str, str]) -> Group | None:
    for group in order_groups(groups):
        if group.matches(labels):
            return group
    return None


def render_ipxe(profile: dict[str, Any]) -> str:
    boot = profile.get("boot") or {}
    kernel = str(boot.get("kernel", ""))
    args = "".join(f" {a}" for a in boot.get("args") or [])
    initrds = "".join(f"\ninitrd {i}" for i in boot.get("initrd") or [])
    return f"#!ipxe\nkernel {kernel}{args}{initrds}\nboot\n"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int
    body_sha256: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


class MatchboxHTTP:
    """Serve ``data_dir`` (profiles/, groups/, ignition/) and ``assets_dir``.

    Use as a context manager or call :meth:`start`/:meth:`stop`. Files are read on every
    request, so the data directory may be filled after the server has started (handy when
    the data must name the server's own port).
    """

    def __init__(
        self, data_dir: Path, assets_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.data_dir = Path(data_dir)
        self.assets_dir = Path(assets_dir) if assets_dir is not None else None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MatchboxHTTP:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="matchbox-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MatchboxHTTP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request log -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    # -- data ------------------------------------------------------------------------
    def groups(self) -> list[Group]:
        gdir = self.data_dir / "groups"
        if not gdir.is_dir():
            return []
        out = []
        for path in sorted(gdir.iterdir()):
            if not path.is_file():
                continue
            try:
                out.append(load_group(path.read_bytes()))
            except (ValueError, OSError):
                continue  # Matchbox logs and skips a group it cannot parse
        return out

    def profile(self, profile_id: str) -> dict[str, Any] | None:
        if not profile_id or "/" in profile_id or profile_id.startswith("."):
            return None
        path = self.data_dir / "profiles" / f"{profile_id}.json"
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def select(self, query: str) -> tuple[Group | None, dict[str, Any] | None]:
        group = select_group(self.groups(), request_labels(query))
        if group is None:
            return None, None
        return group, self.profile(group.profile)

    # -- HTTP ------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "matchbox-fixture"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(send_body=True)

            def do_HEAD(self) -> None:
                self._serve(send_body=False)

            def _serve(self, send_body: bool) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                path, query = parsed.path, parsed.query
                status, ctype, body = fixture._route(path, query)
                digest = hashlib.sha256(body).hexdigest() if status == 200 else None
                fixture._record(
                    RecordedRequest(
                        self.command, path, query, status, digest, request_labels(query)
                    )
                )
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

        return Handler

    def _route(self, path: str, query: str) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        if path in ("/boot.ipxe", "/boot.ipxe.0"):
            return 200, text, BOOT_IPXE.encode()
        if path == "/ipxe":
            _group, profile = self.select(query)
            if profile is None:
                return 404, text, b"404 page not found\n"
            return 200, text, render_ipxe(profile).encode()
        if path == "/ignition":
            _group, profile = self.select(query)
            if profile is None:
                return 404, text, b"404 page not found\n"
            ign_id = str(profile.get("ignition_id", ""))
            if not re.fullmatch(r"[^/]+\.(ign|ignition)", ign_id) or ign_id.startswith("."):
                return 501, text, b"templated Ignition is not implemented by the fixture\n"
            try:
                body = (self.data_dir / "ignition" / ign_id).read_bytes()
            except OSError:
                return 404, text, b"404 page not found\n"
            return 200, "application/json", body
        if path.startswith("/assets/") and self.assets_dir is not None:
            rel = posixpath.normpath(urllib.parse.unquote(path[len("/assets/") :]))
            if rel.startswith("..") or rel.startswith("/"):
                return 404, text, b"404 page not found\n"
            target = self.assets_dir / rel
            if target.is_file():
                ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return 200, ctype, target.read_bytes()
            return 404, text, b"404 page not found\n"
        if path == "/":
            return 200, text, b"matchbox\n"
        return 404, text, b"404 page not found\n"
