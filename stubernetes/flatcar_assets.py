"""`stubernetes assets` for a Flatcar stack: the files `cachedInstall` has Matchbox serve under
`<assets-path>/flatcar/<version>/`, where they come from, and how to check them.

The layout is poseidon/matchbox scripts/get-flatcar's (`$DEST_DIR/flatcar/$VERSION`), the one
Typhoon's cached profiles boot from (`/assets/flatcar/<version>/...`, bare-metal/flatcar-linux/
kubernetes/profiles.tf) and `flatcar-install -b <httpEndpoint>/assets/flatcar` installs from: it
downloads `<base>/<version>/flatcar_production_image.bin.bz2` and its `.sig` (flatcar/init
bin/flatcar-install), so the image's signature is served too.

Checks: Flatcar signs every file with the Flatcar image signing key, "a GPG key with an ID of
E25D9AED0593B34A", published at https://www.flatcar.org/security/image-signing-key/
Flatcar_Image_Signing_Key.asc (flatcar/flatcar-website content/security/image-signing-key.md),
each file beside a detached `.sig` "that must be passed to gpg --verify" (notes-for-distributors
.md). The commands pin the key's full fingerprint, F88CFEDEFF29A5B4D9523864E25D9AED0593B34A (from
that .asc, `gpg --show-keys`), then check each file with gpgv against a keyring of that key
alone. The kernel's signature is published as `flatcar_production_image.vmlinuz.sig` (the PXE
kernel is the image's kernel) and kept as `flatcar_production_pxe.vmlinuz.sig`, as get-flatcar
does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ignition.flatcar_install import (
    FLATCAR_IMAGE,
    FLATCAR_INITRD,
    FLATCAR_KERNEL,
    FLATCAR_RELEASES,
)
from ignition.node_binaries import node_downloads
from stackconfig import StackConfig

SIGNING_KEY_URL = "https://www.flatcar.org/security/image-signing-key/Flatcar_Image_Signing_Key.asc"
SIGNING_KEY_FINGERPRINT = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A"
SIGNING_KEY = "Flatcar_Image_Signing_Key.asc"
KEYRING = "Flatcar_Image_Signing_Key.gpg"
# Each signed file, and the name its signature is published under.
SIGNED_FILES = (
    (FLATCAR_KERNEL, "flatcar_production_image.vmlinuz.sig"),
    (FLATCAR_INITRD, f"{FLATCAR_INITRD}.sig"),
    (FLATCAR_IMAGE, f"{FLATCAR_IMAGE}.sig"),
)


@dataclass(frozen=True)
class FlatcarFile:
    relative: str  # under Matchbox's -assets-path
    url: str  # where it is downloaded from
    signs: str | None = None  # a detached signature: the name of the file it signs


def flatcar_files(stack: StackConfig) -> list[FlatcarFile]:
    os = stack.os
    source = f"{FLATCAR_RELEASES.format(channel=os.flatcar_channel)}/{os.version}"
    here = f"flatcar/{os.version}"
    files = []
    for name, published_sig in SIGNED_FILES:
        files.append(FlatcarFile(f"{here}/{name}", f"{source}/{name}"))
        files.append(FlatcarFile(f"{here}/{name}.sig", f"{source}/{published_sig}", name))
    return files


def flatcar_assets_text(stack: StackConfig, assets_path: str) -> str:
    os = stack.os
    http = stack.matchbox.http_endpoint
    state = (
        "on: the profiles boot, and flatcar-install installs, from Matchbox's /assets/"
        if os.cached_install
        else f"off: the profiles boot, and flatcar-install installs, from "
        f"{os.flatcar_channel}.release.flatcar-linux.net (with cachedInstall: true, from "
        "Matchbox's /assets/ instead)"
    )
    files = flatcar_files(stack)
    binaries = node_downloads(stack)
    here = f"{assets_path}/flatcar/{os.version}"
    key, keyring = f"{assets_path}/flatcar/{SIGNING_KEY}", f"{assets_path}/flatcar/{KEYRING}"
    lines = [
        f"Flatcar {os.version} ({os.flatcar_channel}, amd64) and Kubernetes "
        f"{stack.cluster.kubernetes_release}'s node binaries; cachedInstall is {state}.",
        f"Files under Matchbox's -assets-path ({assets_path}), served at {http}/assets/:",
        *(f"  {f.relative}" for f in files),
        *(f"  {b.asset}" for b in binaries),
        "Fetch them on the Matchbox host:",
    ]
    directories = sorted({f"flatcar/{os.version}", *(b.asset.rpartition("/")[0] for b in binaries)})
    lines += [f"  mkdir -p {shlex.quote(f'{assets_path}/{d}')}" for d in directories]
    lines += [
        f"  curl -fL -o {shlex.quote(f'{assets_path}/{f.relative}')} {shlex.quote(f.url)}"
        for f in files
    ]
    lines += [
        f"  curl -fL -o {shlex.quote(f'{assets_path}/{b.asset}')} {shlex.quote(b.official_url)}"
        for b in binaries
    ]
    lines += [
        "Check Flatcar's files against the Flatcar image signing key (its fingerprint pinned):",
        f"  curl -fL -o {shlex.quote(key)} {SIGNING_KEY_URL}",
        # One primary key in the file, and it is Flatcar's: the fingerprint line after `pub`.
        f'  test "$(gpg --show-keys --with-colons {shlex.quote(key)} '
        '| awk -F: \'$1 == "pub" {getline; print $10}\')" = ' + SIGNING_KEY_FINGERPRINT,
        f"  gpg --dearmor < {shlex.quote(key)} > {shlex.quote(keyring)}",
    ]
    lines += [
        f"  gpgv --keyring {shlex.quote(keyring)} {shlex.quote(f'{assets_path}/{f.relative}')} "
        f"{shlex.quote(f'{here}/{f.signs}')}"
        for f in files
        if f.signs is not None
    ]
    lines.append("Check the binaries against the digests the nodes' Ignition will ask for:")
    lines += [
        f"  printf '%s  %s\\n' {b.sha256} {shlex.quote(f'{assets_path}/{b.asset}')} "
        "| sha256sum --check"
        for b in binaries
    ]
    return "\n".join(lines)
