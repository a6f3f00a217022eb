"""A GnuPG home directory for the tests' own gpg calls, whose agent ends with it: gpg starts a
gpg-agent for a home directory on demand, and the agent outlives gpg until `gpgconf --kill`
ends it (GnuPG's gpg-agent(1))."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _end_agent(home: Path, check: bool) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
        capture_output=True,
        timeout=30,
        check=check,
    )


@contextmanager
def gnupg_home(home: Path) -> Iterator[Path]:
    """`home`, an existing directory, for gpg's --homedir; its agent is ended on leaving (a
    failure to end it fails the block, unless the block already failed)."""
    try:
        yield home
    except BaseException:
        _end_agent(home, check=False)
        raise
    _end_agent(home, check=True)
