"""`stubernetes assets`: which Fedora CoreOS files go where under Matchbox's /assets for
`cachedInstall`, named after the pinned version, exactly as the profiles request them."""

from __future__ import annotations

import json
import shlex
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_stack_bad_input import write_stack

from stubernetes.cli import main

BUILDS = "https://builds.coreos.fedoraproject.org/prod/streams"


def assets(
    values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[str]:
    stack_file = write_stack(values, tmp_path / "Pulumi.assets.yaml")
    assert main(["assets", "--stack-file", str(stack_file), *extra]) == 0
    return capsys.readouterr().out.splitlines()


def curl_lines(lines: list[str]) -> dict[str, str]:
    """target path -> URL of each printed `curl -fL -o PATH URL`."""
    found = {}
    for line in lines:
        if not line.startswith("  curl "):
            continue
        words = shlex.split(line)
        if words[:3] == ["curl", "-fL", "-o"]:
            found[words[3]] = words[4]
    return found


def test_fcos_42_and_later_names_have_a_dot_before_the_arch(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = assets(raw_values, tmp_path, capsys)
    version = raw_values["os"]["version"]
    assert int(version.split(".")[0]) >= 42
    base = f"{BUILDS}/stable/builds/{version}/x86_64"
    names = (
        f"fedora-coreos-{version}-live-kernel.x86_64",
        f"fedora-coreos-{version}-live-initramfs.x86_64.img",
        f"fedora-coreos-{version}-live-rootfs.x86_64.img",
    )
    assert curl_lines(lines) == {
        f"/var/lib/matchbox/assets/fedora-coreos/{name}": f"{base}/{name}" for name in names
    }
    assert "  mkdir -p /var/lib/matchbox/assets/fedora-coreos" in lines
    assert "cachedInstall is off" in lines[0]


def test_older_builds_have_a_dash_and_the_assets_path_is_yours(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["os"].update(version="41.20250315.2.0", stream="testing", cachedInstall=True)
    lines = assets(raw_values, tmp_path, capsys, "--assets-path", "/srv/matchbox/assets")
    targets = curl_lines(lines)
    kernel = "/srv/matchbox/assets/fedora-coreos/fedora-coreos-41.20250315.2.0-live-kernel-x86_64"
    assert targets[kernel] == (
        f"{BUILDS}/testing/builds/41.20250315.2.0/x86_64/"
        "fedora-coreos-41.20250315.2.0-live-kernel-x86_64"
    )
    assert "cachedInstall is on" in lines[0]


def served_paths(profile: dict[str, Any], http: str) -> list[str]:
    boot = profile["boot"]
    urls = [boot["kernel"], *(i.split()[-1] for i in boot["initrd"])]
    urls += [a.partition("=")[2] for a in boot["args"] if a.startswith("coreos.live.rootfs_url=")]
    assert all(u.startswith(f"{http}/assets/") for u in urls), urls
    return [u.removeprefix(f"{http}/") for u in urls]


def test_the_files_are_the_ones_the_profiles_boot(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_values["os"]["cachedInstall"] = True
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.cached.yaml")
    assert main(["render", "--stack-file", str(stack_file), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    http = raw_values["matchbox"]["httpEndpoint"]
    printed = {
        path.removeprefix("/var/lib/matchbox/")
        for path in curl_lines(assets(raw_values, tmp_path, capsys))
    }
    for profile_file in (tmp_path / "out/matchbox/profiles").iterdir():
        profile = json.loads(profile_file.read_text())
        assert set(served_paths(profile, http)) == printed


@pytest.mark.real
def test_the_real_matchbox_serves_them_where_the_profiles_look(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files put where `assets` says, under a real Matchbox's -assets-path, answer at the
    URLs the rendered profiles boot from."""
    from matchbox_grpc import start_matchbox

    raw_values["os"]["cachedInstall"] = True
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.cached.yaml")
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(stack_file), "--out", str(out)]) == 0
    capsys.readouterr()
    assets_path = tmp_path / "assets"
    for target in curl_lines(
        assets(raw_values, tmp_path, capsys, "--assets-path", str(assets_path))
    ):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(f"stand-in for {Path(target).name}\n".encode())
    server = start_matchbox(out / "matchbox", assets_path, tmp_path, name="matchbox-assets")
    try:
        profile = json.loads((out / "matchbox/profiles/lab-c1.json").read_text())
        for path in served_paths(profile, raw_values["matchbox"]["httpEndpoint"]):
            with urllib.request.urlopen(f"{server.http_url}/{path}", timeout=10) as answer:
                assert answer.read() == f"stand-in for {path.rpartition('/')[2]}\n".encode()
    finally:
        server.stop()
