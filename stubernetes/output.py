"""Writing a render's output tree."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

RENDER_MARKER = ".stubernetes-render"


def write_tree(files: dict[Path, bytes], out: Path) -> None:
    """Write every file or none: build the tree beside `out`, then swap it in.

    `out` is replaced whole, so it must be empty, absent, or an earlier render (marked).
    """
    if out.exists() and any(out.iterdir()) and not (out / RENDER_MARKER).exists():
        raise FileExistsError(f"{out} is not empty and is not an earlier render; not replacing it")
    files = {**files, Path(RENDER_MARKER): b"written by stubernetes render\n"}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for relative, contents in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(contents)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(retired / out.name)
            shutil.rmtree(retired)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
