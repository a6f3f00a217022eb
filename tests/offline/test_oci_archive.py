"""The lab's OCI archive writer (tests/lab/oci_archive.py), read back as a consumer reads it:
oci-layout, then index.json -> manifest -> config and layer, each blob at the digest and size
its descriptor names (OCI image-spec image-layout.md, descriptor.md)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from lab import oci_archive

NAME = "registry.k8s.io/pause:3.10.2"
BINARY = b"\x7fELF pretend pause binary"


def _write(dest: Path) -> oci_archive.WrittenImage:
    return oci_archive.write_oci_archive(
        dest,
        NAME,
        {"pause": oci_archive.LayerFile(BINARY, 0o755)},
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
    )


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _blob(members: dict[str, bytes], descriptor: dict[str, Any]) -> bytes:
    algorithm, hexdigest = descriptor["digest"].split(":")
    assert algorithm == "sha256"
    data = members[f"blobs/sha256/{hexdigest}"]
    assert hashlib.sha256(data).hexdigest() == hexdigest
    assert len(data) == descriptor["size"]
    return data


def test_index_manifest_config_and_layer_agree(tmp_path: Path) -> None:
    written = _write(tmp_path / "pause.tar")
    members = _members((tmp_path / "pause.tar").read_bytes())
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}

    index = json.loads(members["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == oci_archive.MEDIA_INDEX
    [entry] = index["manifests"]
    assert entry["mediaType"] == oci_archive.MEDIA_MANIFEST
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    # As containerd's exporter names an image: the full name, and the tag alone.
    assert entry["annotations"] == {
        "io.containerd.image.name": NAME,
        "org.opencontainers.image.ref.name": "3.10.2",
    }
    assert entry["digest"] == written.manifest_digest

    manifest = json.loads(_blob(members, entry))
    assert manifest["mediaType"] == oci_archive.MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == oci_archive.MEDIA_CONFIG
    config = json.loads(_blob(members, manifest["config"]))
    [layer_descriptor] = manifest["layers"]
    assert layer_descriptor["mediaType"] == oci_archive.MEDIA_LAYER
    layer = _blob(members, layer_descriptor)
    assert (config["config"], config["os"], config["architecture"]) == (
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "linux",
        "amd64",
    )
    # An uncompressed layer's diff ID is its digest.
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer_descriptor["digest"]]}
    assert (written.config_digest, written.layer_digest) == (
        manifest["config"]["digest"],
        layer_descriptor["digest"],
    )

    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        [pause] = tar.getmembers()
        assert (pause.name, pause.mode, pause.uid, pause.gid, pause.mtime) == (
            "pause",
            0o755,
            0,
            0,
            0,
        )
        assert tar.extractfile(pause).read() == BINARY  # type: ignore[union-attr]
    # Three blobs and nothing else.
    assert sorted(members) == sorted(
        ["index.json", "oci-layout"]
        + [f"blobs/sha256/{d.split(':')[1]}" for d in (entry["digest"], *_digests(manifest))]
    )


def _digests(manifest: dict[str, Any]) -> list[str]:
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def test_the_archive_is_deterministic(tmp_path: Path) -> None:
    _write(tmp_path / "a.tar")
    _write(tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "") for m in members)
    names = [m.name for m in members]
    assert names[:2] == ["blobs", "blobs/sha256"]  # parents before children
    assert names[2:] == sorted(names[2:])
