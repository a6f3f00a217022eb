"""`stubernetes assets`: which files go where under Matchbox's /assets for `cachedInstall`:
Fedora CoreOS's boot files, named after the pinned version, exactly as the profiles request
them, and the node's binaries exactly as their Ignition fetches them, each with a `sha256sum`
check line for the digest that Ignition will ask for."""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_stack_bad_input import write_stack

from stubernetes.cli import main

BUILDS = "https://builds.coreos.fedoraproject.org/prod/streams"
FCOS_DIR = "/var/lib/matchbox/assets/fedora-coreos/"


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


def check_lines(lines: list[str]) -> dict[str, tuple[str, str]]:
    """target path -> (digest, the line) of each printed
    `printf '%s  %s\\n' DIGEST PATH | sha256sum --check` (two spaces: sha256sum's text format)."""
    found = {}
    for line in lines:
        if not line.startswith("  printf "):
            continue
        command, _, checker = line.strip().partition(" | ")
        assert checker == "sha256sum --check", line
        words = shlex.split(command)
        assert words[:2] == ["printf", "%s  %s\\n"] and len(words) == 4, line
        found[words[3]] = (words[2], line.strip())
    return found


def remote_sources(ignition: dict[str, Any]) -> dict[str, str]:
    """URL -> sha256 of every file an Ignition config fetches (its `verification.hash`)."""
    return {
        f["contents"]["source"]: f["contents"]["verification"]["hash"].removeprefix("sha256-")
        for f in ignition["storage"]["files"]
        if not f["contents"]["source"].startswith("data:")
    }


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
    fcos = {t: u for t, u in curl_lines(lines).items() if t.startswith(FCOS_DIR)}
    assert fcos == {f"{FCOS_DIR}{name}": f"{base}/{name}" for name in names}
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


def test_the_files_are_the_ones_the_profiles_boot_and_the_nodes_fetch(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every printed file is one a profile boots from or one a machine's Ignition fetches from
    Matchbox, and every such URL is printed: nothing missing, nothing extra."""
    raw_values["os"]["cachedInstall"] = True
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.cached.yaml")
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(stack_file), "--out", str(out)]) == 0
    capsys.readouterr()
    http = raw_values["matchbox"]["httpEndpoint"]
    printed = {
        path.removeprefix("/var/lib/matchbox/")
        for path in curl_lines(assets(raw_values, tmp_path, capsys))
    }
    fetched: set[str] = set()
    for ignition_file in (out / "matchbox/ignition").iterdir():
        urls = remote_sources(json.loads(ignition_file.read_text()))
        assert urls and all(u.startswith(f"{http}/assets/") for u in urls), urls
        fetched |= {u.removeprefix(f"{http}/") for u in urls}
    for profile_file in (out / "matchbox/profiles").iterdir():
        profile = json.loads(profile_file.read_text())
        assert set(served_paths(profile, http)) | fetched == printed


def test_each_binary_has_the_check_line_of_the_digest_its_node_asks_for(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed digests are the ones in the machines' Ignition (`verification.hash`), one
    check line per binary and none for the Fedora CoreOS files, whose profiles carry none."""
    raw_values["os"]["cachedInstall"] = True
    stack_file = write_stack(raw_values, tmp_path / "Pulumi.cached.yaml")
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(stack_file), "--out", str(out)]) == 0
    capsys.readouterr()
    lines = assets(raw_values, tmp_path, capsys)
    http = raw_values["matchbox"]["httpEndpoint"]
    checks = check_lines(lines)
    assert set(checks) == {t for t in curl_lines(lines) if not t.startswith(FCOS_DIR)}
    assert len(checks) == 5
    printed = {
        t.replace("/var/lib/matchbox/assets/", f"{http}/assets/"): d for t, (d, _) in checks.items()
    }
    for ignition_file in (out / "matchbox/ignition").iterdir():
        assert remote_sources(json.loads(ignition_file.read_text())) == printed


def test_the_check_lines_pass_on_the_right_files_and_fail_on_a_wrong_one(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as printed, by bash and GNU coreutils' sha256sum: each line accepts the file with
    its digest and refuses one whose bytes differ. (Stand-in files, their digests supplied in
    binarySha256 as for a build of one's own.)"""
    assets_path = tmp_path / "assets"
    stand_ins = {
        "kubeadm": b"kubeadm stand-in\n",
        "kubectl": b"kubectl stand-in\n",
        "kubelet": b"kubelet stand-in\n",
        "cniPlugins": b"cni-plugins stand-in\n",
        "crictl": b"crictl stand-in\n",
    }
    values = copy.deepcopy(raw_values)
    values["cluster"]["binarySha256"] = {
        key: hashlib.sha256(data).hexdigest() for key, data in stand_ins.items()
    }
    lines = assets(values, tmp_path, capsys, "--assets-path", str(assets_path))
    checks = check_lines(lines)
    targets = {t: u for t, u in curl_lines(lines).items() if t in checks}
    for target, url in targets.items():
        name = url.rpartition("/")[2]
        key = "cniPlugins" if "cni-plugins" in url else "crictl" if "crictl" in name else name
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(stand_ins[key])

    def run(line: str) -> int:
        return subprocess.run(["bash", "-c", line], capture_output=True, check=False).returncode

    assert len(checks) == 5
    for _digest, line in checks.values():
        assert run(line) == 0, line
    wrong, (_digest, line) = next(iter(checks.items()))
    Path(wrong).write_bytes(b"another build\n")
    assert run(line) != 0, line


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
