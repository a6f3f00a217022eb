"""Write a one-layer OCI image archive (an OCI image layout in a tar), deterministically.

The layout is the OCI image-layout spec's (opencontainers/image-spec image-layout.md):
``oci-layout``, ``index.json`` and ``blobs/sha256/<digest>``; the index names one image
manifest, which names one config and one uncompressed layer
(``application/vnd.oci.image.layer.v1.tar``, whose digest is then also its diff ID).

The image's name is given as containerd's own exporter gives it (containerd v2.2.9
``core/images/archive/exporter.go`` addNameAnnotation): ``io.containerd.image.name`` holds the
full reference and ``org.opencontainers.image.ref.name`` only its tag; ``ctr images import``
takes the first (``client/import.go`` imageName).

Every tar here (layer and archive) has mtime 0, owner 0:0, no user or group names, and its
members sorted, so the same input always gives the same bytes and digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class LayerFile:
    """A regular file of the layer: its bytes and permission bits."""

    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class WrittenImage:
    manifest_digest: str
    config_digest: str
    layer_digest: str


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info)


def layer_tar(files: Mapping[str, LayerFile]) -> bytes:
    """An uncompressed layer holding ``files`` (paths relative to the image root)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            _add(tar, name.strip("/"), files[name].data, files[name].mode)
    return out.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_archive(
    dest: Path,
    name: str,
    files: Mapping[str, LayerFile],
    image_config: Mapping[str, Any],
    architecture: str = "amd64",
    os_name: str = "linux",
) -> WrittenImage:
    """Write the archive of one image named ``name`` (``registry/repo:tag``) to ``dest``.

    ``image_config`` is the config's ``config`` object (Entrypoint, User, ...: the OCI image
    spec's config.md "Properties")."""
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    layer = layer_tar(files)
    config = _canonical_json(
        {
            "architecture": architecture,
            "os": os_name,
            "config": dict(image_config),
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    )
    manifest = _canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": _digest(layer), "size": len(layer)}],
        }
    )
    index = _canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": architecture, "os": os_name},
                    "annotations": {ANNOTATION_CONTAINERD_NAME: name, ANNOTATION_REF_NAME: tag},
                }
            ],
        }
    )
    blobs = {_digest(b).split(":", 1)[1]: b for b in (layer, config, manifest)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Parents before children, the rest sorted.
        for directory in ("blobs", "blobs/sha256"):
            _add_dir(tar, directory)
        for hexdigest in sorted(blobs):
            _add(tar, f"blobs/sha256/{hexdigest}", blobs[hexdigest], 0o644)
        _add(tar, "index.json", index, 0o644)
        _add(tar, "oci-layout", _canonical_json({"imageLayoutVersion": "1.0.0"}), 0o644)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out.getvalue())
    return WrittenImage(_digest(manifest), _digest(config), _digest(layer))
