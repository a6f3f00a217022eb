"""Go module sources the tests read (charts a project keeps in its module, protobuf files, a
linked dependency's source): `go mod download -json MODULE@VERSION` puts one in the normal module
cache and tells its directory (`go help mod download`). A module a tool's build fetched may be
gone since (`go clean -modcache` empties the cache and leaves the built tools): it is fetched
again here. What cannot be had fails loudly, with what to run."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

GO_TIMEOUT_SECONDS = 600


def module_dir(module: str, version: str) -> Path:
    """`go mod download` of one module version into the normal module cache; its directory."""
    environment = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    argv = ["go", "mod", "download", "-json", f"{module}@{version}"]
    try:
        # Outside any go.mod, so no module of ours decides anything.
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=GO_TIMEOUT_SECONDS,
            check=False,
            env=environment,
            cwd=tempfile.gettempdir(),
        )
    except FileNotFoundError as error:
        raise RuntimeError(f"no go to run {' '.join(argv)}: install Go (scripts/tools)") from error
    answer = json.loads(done.stdout) if done.stdout.strip() else {}
    if done.returncode != 0 or "Error" in answer or "Dir" not in answer:
        raise RuntimeError(
            f"{' '.join(argv)} failed (exit {done.returncode}): "
            f"{answer.get('Error') or done.stderr.strip()}"
        )
    return Path(answer["Dir"])
