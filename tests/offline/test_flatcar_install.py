"""A Flatcar machine's install profile and install Ignition (ignition/flatcar_install.py), and the
stack rules of `os.flavor: flatcar` that a stack file cannot show (the refusals of single values
have their stack files under bad-stacks/os/flatcar-*.yaml).

Upstream facts pinned here:
- the PXE files and arguments: Flatcar's docs, flatcar/flatcar-website content/docs/latest/deploy/
  bare-metal/booting-with-ipxe.md (`https://<channel>.release.flatcar-linux.net/amd64-usr/...`,
  `flatcar_production_pxe.vmlinuz`, `flatcar_production_pxe_image.cpio.gz`,
  `initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url=...`);
- the cached layout `/assets/flatcar/<version>/` and `flatcar-install -b <endpoint>/assets/flatcar`
  only with cachedInstall: poseidon/typhoon bare-metal/flatcar-linux/kubernetes/profiles.tf
  (`cached_kernel`, `baseurl_flag`);
- the install Ignition: Typhoon's butane/install.yaml (a unit runs a script that curls
  `<endpoint>/ignition?mac=<mac>&os=installed`, runs `flatcar-install -d <disk> -C <channel>
  -V <version> [-b <base>] -i <config>`, `udevadm settle`, `systemctl reboot`; sshd on 2222);
  flatcar-install's flags: flatcar/init bin/flatcar-install.
"""

from __future__ import annotations

import base64
import json
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE

from ignition.checked_stack import checked_stack_config
from ignition.entries import SPEC_VERSION
from ignition.flatcar_install import (
    INSTALL_SSH_PORT,
    INSTALLER_PATH,
    INSTALLER_UNIT,
    MACHINE_IGNITION,
    flatcar_install,
    installer_script,
)
from ignition.validate import check_structure, check_with_ignition_validate, have_ignition_validate
from stackconfig import StackConfig, parse_stack_config
from stackconfig.stackfile import read_stack_values
from stubernetes.cli import main

RELEASE = "4593.2.5"  # Flatcar stable, published 2026-08-13 (flatcar-website data/releases/stable)


def flatcar_values(values: dict[str, Any], **os_fields: Any) -> dict[str, Any]:
    values["os"] = {"flavor": "flatcar", "channel": "stable", "version": RELEASE, **os_fields}
    return values


def flatcar_stack(values: dict[str, Any], **os_fields: Any) -> StackConfig:
    return parse_stack_config(flatcar_values(values, **os_fields))


def config_of(stack: StackConfig, name: str = "c1") -> dict[str, Any]:
    return dict(json.loads(flatcar_install(stack, stack.machine(name)).ignition))


def file_text(config: dict[str, Any], path: str) -> str:
    [entry] = [f for f in config["storage"]["files"] if f["path"] == path]
    source = entry["contents"]["source"]
    assert source.startswith("data:;base64,")
    return base64.b64decode(source.removeprefix("data:;base64,")).decode()


# --------------------------------------------------------------------------- the profile


@pytest.mark.parametrize(("channel", "version"), [("stable", RELEASE), ("beta", "4757.1.0")])
def test_profile_boots_the_channels_pxe_files(
    raw_values: dict[str, Any], channel: str, version: str
) -> None:
    stack = flatcar_stack(raw_values, channel=channel, version=version)
    boot = flatcar_install(stack, stack.machine("w1")).boot
    base = f"https://{channel}.release.flatcar-linux.net/amd64-usr/{version}"
    assert boot.kernel == f"{base}/flatcar_production_pxe.vmlinuz"
    assert boot.initrds == (f"{base}/flatcar_production_pxe_image.cpio.gz",)


def test_profile_args_are_flatcars_and_then_the_machines(raw_values: dict[str, Any]) -> None:
    raw_values["machines"]["w1"]["installerKernelArgs"] = ["console=ttyS0,115200n8"]
    stack = flatcar_stack(raw_values)
    http = stack.matchbox.http_endpoint
    assert flatcar_install(stack, stack.machine("w1")).boot.args == (
        "initrd=flatcar_production_pxe_image.cpio.gz",
        "flatcar.first_boot=1",
        # The same string for every machine: iPXE expands the settings, Matchbox picks by MAC.
        f"ignition.config.url={http}/ignition?uuid=${{uuid}}&mac=${{mac:hexhyp}}",
        "console=ttyS0,115200n8",
    )


def test_cached_install_boots_and_installs_from_matchbox(raw_values: dict[str, Any]) -> None:
    stack = flatcar_stack(raw_values, cachedInstall=True)
    http = stack.matchbox.http_endpoint
    machine = stack.machine("c1")
    boot = flatcar_install(stack, machine).boot
    assert boot.kernel == f"{http}/assets/flatcar/{RELEASE}/flatcar_production_pxe.vmlinuz"
    assert boot.initrds == (
        f"{http}/assets/flatcar/{RELEASE}/flatcar_production_pxe_image.cpio.gz",
    )
    install = install_line(installer_script(stack, machine))
    assert install[install.index("-b") + 1] == f"{http}/assets/flatcar"


def test_without_cached_install_flatcar_install_takes_the_channels_server(
    raw_values: dict[str, Any],
) -> None:
    stack = flatcar_stack(raw_values)
    assert "-b" not in install_line(installer_script(stack, stack.machine("c1")))


# ------------------------------------------------------------------- the install Ignition


def install_line(script: str) -> list[str]:
    [line] = [line for line in script.splitlines() if line.startswith("flatcar-install ")]
    return shlex.split(line)


def test_installer_installs_the_pinned_release_to_the_disk(raw_values: dict[str, Any]) -> None:
    stack = flatcar_stack(raw_values, channel="beta", version="4757.1.0")
    machine = stack.machine("c1")
    assert install_line(installer_script(stack, machine)) == [
        "flatcar-install",
        "-d",
        machine.install_disk,
        "-C",
        "beta",
        "-V",
        "4757.1.0",
        "-i",
        MACHINE_IGNITION,
    ]


def test_install_ignition_runs_the_installer_at_boot(raw_values: dict[str, Any]) -> None:
    stack = flatcar_stack(raw_values)
    config = config_of(stack)
    assert config["ignition"]["version"] == SPEC_VERSION
    [unit] = [u for u in config["systemd"]["units"] if u["name"] == INSTALLER_UNIT]
    assert unit["enabled"] is True
    assert f"ExecStart={INSTALLER_PATH}\n" in unit["contents"]
    assert "After=network-online.target\n" in unit["contents"]
    assert "WantedBy=multi-user.target\n" in unit["contents"]
    [script] = [f for f in config["storage"]["files"] if f["path"] == INSTALLER_PATH]
    assert script["mode"] & stat.S_IXUSR
    assert file_text(config, INSTALLER_PATH) == installer_script(stack, stack.machine("c1"))


def test_install_ignition_moves_the_live_sshd_and_lets_the_admin_in(
    raw_values: dict[str, Any],
) -> None:
    stack = flatcar_stack(raw_values)
    config = config_of(stack)
    [sshd] = [u for u in config["systemd"]["units"] if u["name"] == "sshd.socket"]
    [dropin] = sshd["dropins"]
    assert dropin["contents"] == f"[Socket]\nListenStream=\nListenStream={INSTALL_SSH_PORT}\n"
    assert config["passwd"]["users"] == [
        {"name": "core", "sshAuthorizedKeys": list(stack.admin.ssh_authorized_keys)}
    ]


def test_each_machine_fetches_its_own_installed_ignition(raw_values: dict[str, Any]) -> None:
    stack = flatcar_stack(raw_values)
    http = stack.matchbox.http_endpoint
    for machine in stack.machines:
        script = installer_script(stack, machine)
        # The machine's second group: selector {mac, os: installed} (Typhoon's profiles.tf).
        assert shlex.quote(f"{http}/ignition?mac={machine.mac}&os=installed") in script


@pytest.mark.parametrize("cached", [False, True])
def test_install_ignition_passes_the_strict_checker(
    raw_values: dict[str, Any], cached: bool
) -> None:
    stack = flatcar_stack(raw_values, cachedInstall=cached)
    for machine in stack.machines:
        check_structure(f"install '{machine.name}'", flatcar_install(stack, machine).ignition)


@pytest.mark.skipif(not have_ignition_validate(), reason="ignition-validate is not installed")
def test_install_ignition_passes_ignition_validate(raw_values: dict[str, Any]) -> None:
    stack = flatcar_stack(raw_values)
    machine = stack.machine("c1")
    check_with_ignition_validate("install 'c1'", flatcar_install(stack, machine).ignition)


# ------------------------------------------------------------------- the script, when run

STAND_IN = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >> "$TOOL_LOG"
if [ "$(basename "$0")" = curl ] && [ -n "${CURL_FAILS:-}" ]; then
  echo "curl: (22) The requested URL returned error: 404" >&2
  exit 22
fi
"""


def run_installer(script: str, tmp_path: Path, curl_fails: bool = False) -> tuple[int, list[str]]:
    """The installer under bash with stand-ins for curl, flatcar-install, udevadm and systemctl
    that log their argv: what it runs, in what order, and where it stops."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("curl", "flatcar-install", "udevadm", "systemctl"):
        path = bin_dir / tool
        path.write_text(STAND_IN)
        path.chmod(0o755)
    log = tmp_path / "tools.log"
    log.touch()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TOOL_LOG": str(log)}
    if curl_fails:
        env["CURL_FAILS"] = "1"
    (tmp_path / "installer").write_text(script)
    done = subprocess.run(
        ["bash", str(tmp_path / "installer")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, log.read_text().splitlines()


def test_installer_fetches_installs_settles_and_reboots(
    raw_values: dict[str, Any], tmp_path: Path
) -> None:
    stack = flatcar_stack(raw_values)
    machine = stack.machine("w1")
    status, calls = run_installer(installer_script(stack, machine), tmp_path)
    assert status == 0
    http = stack.matchbox.http_endpoint
    assert [c.split()[0] for c in calls] == ["curl", "flatcar-install", "udevadm", "systemctl"]
    assert calls[0].endswith(
        f"-o {MACHINE_IGNITION} {http}/ignition?mac={machine.mac}&os=installed"
    )
    assert calls[1] == (
        f"flatcar-install -d {machine.install_disk} -C stable -V {RELEASE} -i {MACHINE_IGNITION}"
    )
    assert calls[2:] == ["udevadm settle", "systemctl reboot"]


def test_installer_stops_when_matchbox_has_no_installed_ignition(
    raw_values: dict[str, Any], tmp_path: Path
) -> None:
    """A 404 (no group selects {mac, os: installed}) must not install a disk that cannot boot
    into the machine's configuration: curl --fail and `set -e` stop the script there."""
    stack = flatcar_stack(raw_values)
    status, calls = run_installer(installer_script(stack, stack.machine("w1")), tmp_path, True)
    assert status == 22
    assert [c.split()[0] for c in calls] == ["curl"]


# ------------------------------------------------------------------------ the stack rules


def test_a_flatcar_release_without_a_channel_is_stable(raw_values: dict[str, Any]) -> None:
    raw_values["os"] = {"flavor": "flatcar", "version": RELEASE}
    stack = parse_stack_config(raw_values)
    assert stack.os.channel is None
    assert stack.os.flatcar_channel == "stable"


def test_the_fedora_coreos_section_is_as_before(example_stack: StackConfig) -> None:
    os = example_stack.os
    assert (os.flavor, os.stream, os.channel, os.is_flatcar) == (
        "fedora-coreos",
        "stable",
        None,
        False,
    )


def test_a_flatcar_stack_is_checked_as_a_whole_and_taken(
    raw_values: dict[str, Any], tmp_path: Path
) -> None:
    """The checks the program and the CLI share (ignition/checked_stack.py) take a Flatcar stack,
    its snippets checked against its machines' own Ignition (ignition/flatcar_machine.py); and
    `stubernetes render` writes its two profiles and groups per machine."""
    values = flatcar_values(raw_values)
    stack = checked_stack_config(values, read_stack_values(EXAMPLE_STACK_FILE)[1])
    assert stack.os.is_flatcar
    document = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    document["config"]["stubernetes:os"] = values["os"]
    stack_file = tmp_path / "Pulumi.flatcar.yaml"
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "render"
    assert main(["render", "--stack-file", str(stack_file), "--out", str(out)]) == 0
    groups = sorted(p.stem for p in (out / "matchbox/groups").iterdir())
    assert groups == sorted(
        f"lab-{m}{suffix}" for m in ("c1", "w1", "w2") for suffix in ("", "-flatcar-install")
    )
    own = json.loads((out / "matchbox/ignition/lab-w1.ign").read_bytes())
    assert "/opt/bin/kubelet" in {f["path"] for f in own["storage"]["files"]}


def test_only_the_flavors_own_fields_are_refused(raw_values: dict[str, Any]) -> None:
    """`cachedInstall` belongs to both flavors; `version` to both, read by each one's rules."""
    stack = flatcar_stack(raw_values, cachedInstall=True)
    assert stack.os.cached_install


def test_every_flatcar_channel_takes_its_own_releases(raw_values: dict[str, Any]) -> None:
    # Real releases: alpha 4790.0.0, beta 4757.1.0, stable 4593.2.5 (flatcar-website
    # data/releases/<channel>/current.yml at 2026-08-21).
    for channel, version in (("alpha", "4790.0.0"), ("beta", "4757.1.0"), ("stable", RELEASE)):
        stack = flatcar_stack(raw_values, channel=channel, version=version)
        assert (stack.os.flatcar_channel, stack.os.version) == (channel, version)
