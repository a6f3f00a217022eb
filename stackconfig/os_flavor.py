"""The two flavors of `stubernetes:os`: which fields belong to which, and Flatcar's release
numbers. What a Flatcar machine does differently is ignition/flatcar_machine.py.

Flatcar release numbers (flatcar/flatcar-website content/docs/latest/devguide/
sdk-building-production-images.md, "Stabilisation process and versioning"): "MMMM.m.p[ppp] - "M"
being the major number, "m" the minor, and "p" the patch level"; "A new major version number is
introduced with every new Alpha release"; "The minor version denotes the stabilisation level; 0
means Alpha, 1 is Beta, and 2 is Stable" (3 is LTS, data/releases/lts/, a channel without its own
release server, which stubernetes does not offer). A release is downloaded from its channel's
server, `https://<channel>.release.flatcar-linux.net/amd64-usr/<version>/` (flatcar-website
deploy/virt-options/notes-for-distributors.md; poseidon/typhoon bare-metal/flatcar-linux/
kubernetes/profiles.tf), so a release of another channel names files that are not there.

What Flatcar's Ignition is given is spec 3.4.0, whatever stubernetes writes (spec 3.3.0,
ignition/entries.py SPEC_VERSION): Matchbox parses a raw Ignition config with Ignition's
`config/v3_4` ParseCompatibleVersion and serves the result, `ignition.version` 3.4.0
(poseidon/matchbox matchbox/http/ignition.go, v0.11.0 as at its newest commit). Ignition reads
spec 3.4.0 from its release 2.15.0 on (coreos/ignition docs/specs.md, "Spec version | Ignition
release": 3.4.0 | 2.15.0), which Flatcar ships from major 3535 on: alpha 3535.0.0, beta
3549.1.0, stable 3602.2.0, and every release of a later major, none before (flatcar/
flatcar-website data/releases/<channel>/<version>.yml, image_packages.ignition, every release
to 2026-08-21). Flatcar stable 4593.2.5 (2026-08-13) ships Ignition 2.24.0, whose newest stable
spec is 3.5.0 (coreos/ignition v2.24.0 config/v3_5). Flatcar's own docs still say 3.3.0
(fb-provision/ignition/specification.md: "Starting from release 3185.0.0, Ignition v3
(specification 3.3.0) is supported"), the spec its Ignition took first.
"""

from __future__ import annotations

import re

FLATCAR_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
CHANNEL_NUMBERS = {"alpha": "0", "beta": "1", "stable": "2"}
OTHER_NUMBERS = {"3": "an LTS release"}
FIRST_SPEC_3_4_MAJOR = 3535
FLATCAR_EXAMPLE = "4593.2.5"

FLAVOR_NAMES = {"fedora-coreos": "Fedora CoreOS", "flatcar": "Flatcar"}
# The fields that belong to one flavor, and what the other flavor has instead.
FLAVOR_FIELDS = {
    "stream": ("fedora-coreos", "a Flatcar release comes from a channel: write 'channel'"),
    "channel": ("flatcar", "a Fedora CoreOS build comes from a stream: write 'stream'"),
}


def other_flavor_field_problem(field: str, flavor: str | None) -> str | None:
    """Why `field`, written in the stack, does not belong to `flavor` (None: it does, or the
    flavor is unknown, being itself refused)."""
    owner, instead = FLAVOR_FIELDS[field]
    if flavor is None or flavor == owner:
        return None
    return f"{FLAVOR_NAMES[owner]} only, and flavor is {flavor}: {instead}"


def flatcar_version_problem(version: str, channel: str | None) -> str | None:
    """Why `version` is not a Flatcar release of `channel` (None: the channel is unknown, being
    itself refused), or None."""
    found = FLATCAR_VERSION.match(version)
    if not found:
        return (
            f"expected a Flatcar release MAJOR.MINOR.PATCH such as {FLATCAR_EXAMPLE} (the "
            f"channel's number is the minor: alpha 0, beta 1, stable 2), got {version!r}"
        )
    major, minor = int(found[1]), found[2]
    if major < FIRST_SPEC_3_4_MAJOR:
        return (
            f"{version!r}: Matchbox serves every Ignition config as spec 3.4.0, which Flatcar "
            f"reads from release {FIRST_SPEC_3_4_MAJOR}.0.0 on (Ignition 2.15.0); pin a newer "
            "release"
        )
    if minor not in CHANNEL_NUMBERS.values():
        what = OTHER_NUMBERS.get(minor, "no channel")
        return (
            f"{version!r}: minor number {minor} is {what}, not a channel "
            "(0 alpha, 1 beta, 2 stable)"
        )
    if channel is not None and minor != CHANNEL_NUMBERS[channel]:
        released_on = next(name for name, number in CHANNEL_NUMBERS.items() if number == minor)
        article = "an" if released_on == "alpha" else "a"
        return (
            f"{version!r} is {article} {released_on} release (minor number {minor}), but "
            f"channel is {channel!r}, whose releases have minor number "
            f"{CHANNEL_NUMBERS[channel]}; pin a {channel} release or set channel: {released_on}"
        )
    return None
