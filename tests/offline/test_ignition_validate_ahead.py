"""ignition.validate.validated_ahead: the render's ignition-validate runs, worked out ahead a
process per processor at a time, give each check the verdict it would have reached itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from ignition.validate import InvalidIgnition, check_with_ignition_validate, validated_ahead

# A stand-in ignition-validate: logs each config it reads (one line in one write, as two may run
# at once), and complains about one holding BAD as the real one does (a line, exit status 1).
STAND_IN = """#!/bin/sh
printf '%s\n' "$(cat "$1")" >> "$(dirname "$0")/runs.log"
if grep -q BAD "$1"; then echo "error at line 1: BAD is not a key"; exit 1; fi
"""

CONFIGS = [(f"matchbox/ignition/lab-w{i}.ign", f'{{"machine": "w{i}"}}'.encode()) for i in range(6)]
BAD = ("matchbox/ignition/lab-bad.ign", b'{"BAD": true}')


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tool = tmp_path / "ignition-validate"
    tool.write_text(STAND_IN)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path('/usr/bin')}:{Path('/bin')}")
    return tmp_path / "runs.log"


def logged(runs: Path) -> list[str]:
    return runs.read_text().splitlines() if runs.exists() else []


def test_each_config_is_run_once_and_passes_as_it_would(runs: Path) -> None:
    with validated_ahead(CONFIGS):
        for name, config in CONFIGS:
            check_with_ignition_validate(name, config)
    assert sorted(logged(runs)) == sorted(config.decode() for _, config in CONFIGS)


def test_a_refusal_reads_as_it_does_without_working_ahead(runs: Path) -> None:
    with pytest.raises(InvalidIgnition) as alone:
        check_with_ignition_validate(*BAD)
    with pytest.raises(InvalidIgnition) as ahead, validated_ahead([*CONFIGS, BAD]):
        for name, config in [*CONFIGS, BAD]:
            check_with_ignition_validate(name, config)
    assert str(ahead.value) == str(alone.value)
    assert str(alone.value) == (
        "matchbox/ignition/lab-bad.ign: ignition-validate: error at line 1: BAD is not a key"
    )


def test_verdicts_not_taken_in_the_block_are_dropped_with_it(runs: Path) -> None:
    with validated_ahead([BAD]):
        pass
    before = len(logged(runs))
    assert before <= 1  # cancelled, or already run
    with pytest.raises(InvalidIgnition):
        check_with_ignition_validate(*BAD)
    assert len(logged(runs)) == before + 1
