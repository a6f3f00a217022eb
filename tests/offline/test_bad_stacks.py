"""One stack file per defect, each refused (or warned about) as a user would need it.

Every file under `bad-stacks/<class>/` beside this file is a whole stack file carrying one
defect, with a header of comments saying what it is and what must be said about it:

    # defect: a MAC that is a multicast address
    # expect: machine 'w1': field 'mac': multicast
    # exit: 2            (the default; 0 for a stack that is only warned about)
    # warn: ...          (a substring of a `warning:` line, for warnings)

`render` must exit with the status given, print every `expect` (each a substring of one
`error:` line) and `warn` line, print nothing that is not an `error:` or `warning:` line (no
traceback), and, when refused, write nothing. The files under `reader/` attack the YAML reader
itself (aliases that expand, deep nesting, foreign bytes, size): they run in a child process
with a time limit, so a hang fails the test instead of the run.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from repo_paths import REPO

from stubernetes.cli import EXIT_BAD_INPUT, main

BAD_STACKS = Path(__file__).resolve().parent / "bad-stacks"
CHILD_PROCESS_CLASSES = ("reader",)
CHILD_TIME_LIMIT_SECONDS = 60


@dataclass(frozen=True)
class Defect:
    path: Path
    description: str
    exit_status: int = EXIT_BAD_INPUT
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def read_defect(path: Path) -> Defect:
    header: dict[str, list[str]] = {}
    with path.open("rb") as stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("#"):
                break
            key, sep, value = line.lstrip("# ").partition(":")
            if sep:
                header.setdefault(key.strip(), []).append(value.strip())
    return Defect(
        path=path,
        description=" ".join(header.get("defect", [])),
        exit_status=int(header.get("exit", [str(EXIT_BAD_INPUT)])[0]),
        errors=tuple(header.get("expect", [])),
        warnings=tuple(header.get("warn", [])),
    )


def all_defects() -> list[Defect]:
    return [read_defect(p) for p in sorted(BAD_STACKS.glob("*/*.yaml"))]


def run_render(path: Path, out: Path) -> tuple[int, str]:
    argv = ["render", "--stack-file", str(path), "--out", str(out)]
    if path.parent.name in CHILD_PROCESS_CLASSES:
        done = subprocess.run(
            [sys.executable, "-m", "stubernetes.cli", *argv],
            capture_output=True,
            text=True,
            timeout=CHILD_TIME_LIMIT_SECONDS,
            cwd=REPO,
            check=False,
        )
        return done.returncode, done.stderr
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, stderr.getvalue()


DEFECTS = all_defects()


def test_every_defect_says_what_it_is() -> None:
    assert len(DEFECTS) > 0
    for defect in DEFECTS:
        assert defect.description, f"{defect.path}: no '# defect:' line"
        assert defect.errors or defect.warnings, f"{defect.path}: no '# expect:' or '# warn:'"
        if defect.exit_status == EXIT_BAD_INPUT:
            assert defect.errors, f"{defect.path}: refused, but no '# expect:' line"


@pytest.mark.parametrize(
    "defect", DEFECTS, ids=[f"{d.path.parent.name}/{d.path.stem}" for d in DEFECTS]
)
def test_bad_stack(defect: Defect, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status, stderr = run_render(defect.path, out)
    lines = stderr.splitlines()
    assert status == defect.exit_status, f"{defect.description}: exit {status}\n{stderr}"
    strays = [line for line in lines if not line.startswith(("error: ", "warning: "))]
    assert not strays, f"{defect.description}: lines that are no error or warning:\n{stderr}"
    errors = [line for line in lines if line.startswith("error: ")]
    warnings = [line for line in lines if line.startswith("warning: ")]
    for expected in defect.errors:
        assert any(expected in line for line in errors), (
            f"{defect.description}: no error line contains {expected!r}:\n{stderr}"
        )
    for expected in defect.warnings:
        assert any(expected in line for line in warnings), (
            f"{defect.description}: no warning line contains {expected!r}:\n{stderr}"
        )
    if defect.exit_status == EXIT_BAD_INPUT:
        assert not out.exists(), f"{defect.description}: a refused stack wrote {out}"
        assert not [line for line in errors if not any(e in line for e in defect.errors)], (
            f"{defect.description}: errors beyond the one defect:\n{stderr}"
        )
