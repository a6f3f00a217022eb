"""Fedora CoreOS build ids, as coreos/fedora-coreos-tracker `Design.md` ("Version numbers")
defines them: X.Y.Z.A, with X the Fedora major, Y the date of the package snapshot
(YYYYMMDD), Z the stream's code and A the build number (0, 1, ... for rebuilds of one
snapshot). Official builds of the production streams carry Z = 1 (next), 2 (testing) and
3 (stable); 10, 20, 91 and 92 mark development and mechanical streams, and `dev` a build not
made by the official pipeline.

A build is downloaded from its own stream (ignition/pxe.py: `prod/streams/<stream>/builds/
<version>`), so a build id of another stream names artifacts that do not exist there.
"""

from __future__ import annotations

import datetime
import re

BUILD_ID = re.compile(r"^([1-9][0-9]*)\.([0-9]{8})\.([0-9a-z]+)\.(0|[1-9][0-9]*)$")
STREAM_CODES = {"next": "1", "testing": "2", "stable": "3"}
OTHER_CODES = {
    "10": "next-devel",
    "20": "testing-devel",
    "91": "rawhide",
    "92": "branched",
    "dev": "a developer build",
}
EXAMPLE = "44.20260817.3.2"


def build_id_problem(version: str, stream: str | None) -> str | None:
    """Why `version` is not a Fedora CoreOS build of `stream` (None: the stream is unknown,
    being itself refused), or None."""
    found = BUILD_ID.match(version)
    if not found:
        return (
            f"expected a Fedora CoreOS build id X.Y.Z.A such as {EXAMPLE} (Fedora major, "
            f"snapshot date YYYYMMDD, stream number, build number), got {version!r}"
        )
    date, code = found[2], found[3]
    try:
        datetime.datetime.strptime(date, "%Y%m%d")
    except ValueError:
        return f"{version!r}: its second field {date!r} is not a date (YYYYMMDD)"
    if code not in STREAM_CODES.values():
        what = OTHER_CODES.get(code, "no stream")
        return (
            f"{version!r}: stream number {code} is {what}, not a production stream "
            "(1 next, 2 testing, 3 stable)"
        )
    if stream is not None and code != STREAM_CODES[stream]:
        built_for = next(name for name, number in STREAM_CODES.items() if number == code)
        return (
            f"{version!r} is a {built_for} build (stream number {code}), but stream is "
            f"{stream!r}, whose builds have stream number {STREAM_CODES[stream]}; pin a "
            f"{stream} build or set stream: {built_for}"
        )
    return None
