"""`stubernetes assets` for a Flatcar stack (stubernetes/flatcar_assets.py): the files, where they
come from, and the signature checks, run for real with gpg and gpgv.

The checks are run on files signed by a key made here (Flatcar's private key is, rightly, not
to be had), with the pinned fingerprint swapped for that key's; that the pinned fingerprint is
Flatcar's own is checked on Flatcar's public key itself, kept in flatcar-signing-key/: a copy
of https://www.flatcar.org/security/image-signing-key/Flatcar_Image_Signing_Key.asc
(flatcar/flatcar-website static/security/image-signing-key/Flatcar_Image_Signing_Key.asc at
08bdee0af54b714e59ac7a3df924a3ffd97202c1), "a GPG key with an ID of E25D9AED0593B34A"
(content/security/image-signing-key.md).

The layout and the kernel's signature name follow poseidon/matchbox scripts/get-flatcar:
`<assets>/flatcar/<version>/`, `flatcar_production_image.vmlinuz.sig` kept as
`flatcar_production_pxe.vmlinuz.sig`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gnupg_home import gnupg_home

from stackconfig import StackConfig, parse_stack_config
from stubernetes import flatcar_assets
from stubernetes.assets import assets_text

RELEASE = "4593.2.5"
FLATCAR_KEY = Path(__file__).resolve().parent / "flatcar-signing-key/Flatcar_Image_Signing_Key.asc"
SERVER = f"https://stable.release.flatcar-linux.net/amd64-usr/{RELEASE}"
# What the release server publishes for a version (get-flatcar's downloads).
NODE_BINARY_DIRS = ("/kubernetes/", "/cni-plugins/", "/cri-tools/")
PUBLISHED = (
    "flatcar_production_pxe.vmlinuz",
    "flatcar_production_image.vmlinuz.sig",
    "flatcar_production_pxe_image.cpio.gz",
    "flatcar_production_pxe_image.cpio.gz.sig",
    "flatcar_production_image.bin.bz2",
    "flatcar_production_image.bin.bz2.sig",
)

needs_gpg = pytest.mark.skipif(
    shutil.which("gpg") is None or shutil.which("gpgv") is None, reason="gpg or gpgv missing"
)


@pytest.fixture
def stack(raw_values: dict[str, Any]) -> StackConfig:
    raw_values["os"] = {"flavor": "flatcar", "channel": "stable", "version": RELEASE}
    return parse_stack_config(raw_values)


def test_assets_names_each_flatcar_file_and_its_source(stack: StackConfig) -> None:
    text = assets_text(stack, "/srv/assets")
    here = f"/srv/assets/flatcar/{RELEASE}"
    for name in ("flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz"):
        assert f"  curl -fL -o {here}/{name} {SERVER}/{name}" in text.splitlines()
        assert f"  curl -fL -o {here}/{name}.sig {SERVER}/" in text
    # flatcar-install -b fetches <base>/<version>/flatcar_production_image.bin.bz2 and .sig
    # (flatcar/init bin/flatcar-install), so both are served.
    assert f"  flatcar/{RELEASE}/flatcar_production_image.bin.bz2.sig" in text.splitlines()
    assert f"{SERVER}/flatcar_production_image.vmlinuz.sig" in text
    assert text.startswith(f"Flatcar {RELEASE} (stable, amd64) and Kubernetes ")


def test_assets_still_lists_the_node_binaries(stack: StackConfig) -> None:
    text = assets_text(stack, "/srv/assets")
    assert "| sha256sum --check" in text
    assert (
        f"/srv/assets/kubernetes/v{stack.cluster.kubernetes_release}/bin/linux/amd64/kubelet"
        in (text)
    )


# ------------------------------------------------------------------ the checks, when run

STAND_IN_CURL = """#!/bin/bash
# curl -fL -o DEST URL, served from $SERVE_DIR by the URL's last path component.
dest=$3; url=$4
source="$SERVE_DIR/${url##*/}"
if [ "$1 $2" != "-fL -o" ] || [ $# -ne 4 ] || [ ! -f "$source" ]; then
  echo "curl: (22) $url" >&2
  exit 22
fi
cp "$source" "$dest"
"""


def flatcar_lines(text: str) -> list[str]:
    """The commands for Flatcar's files: their directory, downloads and signature checks."""
    commands = [line.strip() for line in text.splitlines() if line.startswith("  ")]
    return [
        c
        for c in commands
        if c.split()[0] in ("mkdir", "curl", "test", "gpg", "gpgv")
        and not any(d in c for d in NODE_BINARY_DIRS)
    ]


def make_signed_release(work: Path) -> tuple[Path, str]:
    """A stand-in release server's files for RELEASE, signed by a key made here: the folder
    and the key's fingerprint."""
    home = work / "signer"
    home.mkdir(mode=0o700)
    with gnupg_home(home):
        return _sign_release(work, home)


def _sign_release(work: Path, home: Path) -> tuple[Path, str]:
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    run([*gpg, "--passphrase", "", "--quick-gen-key", "Stand-in <s@example.test>", "ed25519"])
    listed = run([*gpg, "--with-colons", "--list-keys"])
    fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr"))
    serve = work / "serve"
    serve.mkdir()
    (serve / "Flatcar_Image_Signing_Key.asc").write_text(
        run([*gpg, "--armor", "--export", fingerprint])
    )
    for name in PUBLISHED:
        if name.endswith(".sig"):
            continue
        (serve / name).write_bytes(f"stand-in {name}\n".encode())
        signature = name.replace("_pxe.vmlinuz", "_image.vmlinuz") + ".sig"
        run([*gpg, "--output", str(serve / signature), "--detach-sign", str(serve / name)])
    return serve, fingerprint


def run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


def run_checks(lines: list[str], work: Path, serve: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(STAND_IN_CURL)
    (bin_dir / "curl").chmod(0o755)
    home = work / "checker"
    home.mkdir(mode=0o700, exist_ok=True)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SERVE_DIR": str(serve), "GNUPGHOME": str(home)}
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@needs_gpg
def test_signed_files_pass_their_checks(
    stack: StackConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, fingerprint = make_signed_release(tmp_path)
    monkeypatch.setattr(flatcar_assets, "SIGNING_KEY_FINGERPRINT", fingerprint)
    assets = tmp_path / "assets"
    lines = flatcar_lines(assets_text(stack, str(assets)))
    assert sum(line.startswith("gpgv ") for line in lines) == 3
    done = run_checks(lines, tmp_path, serve)
    assert done.returncode == 0, done.stderr
    for name in ("flatcar_production_pxe.vmlinuz", "flatcar_production_image.bin.bz2"):
        assert (assets / f"flatcar/{RELEASE}/{name}").read_bytes() == (serve / name).read_bytes()


@needs_gpg
def test_a_changed_image_fails_its_check(
    stack: StackConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, fingerprint = make_signed_release(tmp_path)
    monkeypatch.setattr(flatcar_assets, "SIGNING_KEY_FINGERPRINT", fingerprint)
    (serve / "flatcar_production_image.bin.bz2").write_bytes(b"not what was signed\n")
    done = run_checks(flatcar_lines(assets_text(stack, str(tmp_path / "assets"))), tmp_path, serve)
    assert done.returncode != 0
    assert "BAD signature" in done.stderr


@needs_gpg
def test_a_key_other_than_flatcars_is_refused(stack: StackConfig, tmp_path: Path) -> None:
    """Signed right, but by another key than the pinned one: stopped at the fingerprint."""
    serve, _ = make_signed_release(tmp_path)
    lines = flatcar_lines(assets_text(stack, str(tmp_path / "assets")))
    done = run_checks(lines, tmp_path, serve)
    assert done.returncode != 0
    assert not (tmp_path / "assets/flatcar/Flatcar_Image_Signing_Key.gpg").exists()


@needs_gpg
def test_the_pinned_fingerprint_is_flatcars_image_signing_key(
    stack: StackConfig, tmp_path: Path
) -> None:
    serve = tmp_path / "serve"
    serve.mkdir()
    shutil.copy(FLATCAR_KEY, serve / FLATCAR_KEY.name)
    lines = flatcar_lines(assets_text(stack, str(tmp_path / "assets")))
    key_lines = [line for line in lines if "Flatcar_Image_Signing_Key" in line]
    key_lines = [line for line in key_lines if not line.startswith("gpgv ")]
    assert [line.split()[0] for line in key_lines] == ["curl", "test", "gpg"]
    done = run_checks([f"mkdir -p {tmp_path}/assets/flatcar", *key_lines], tmp_path, serve)
    assert done.returncode == 0, done.stderr
    assert flatcar_assets.SIGNING_KEY_FINGERPRINT.endswith("E25D9AED0593B34A")
