"""scripts/tools builds every tool the tests ask for: its list (`scripts/tools --list`, which a
fresh machine's `./scripts/test` builds in full) names every tool tests/real/tool_cache.py
knows, at the same version. A tool the tests use but the list leaves out would pass on a
machine that happens to have it cached and fail on a fresh one."""

from __future__ import annotations

import subprocess

from repo_paths import REPO
from tool_cache import TOOL_VARIABLES, tool_version


def test_the_tools_script_builds_every_tool_the_tests_use() -> None:
    listed = subprocess.run(
        [str(REPO / "scripts/tools"), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    versions = dict(line.split(" ", 1) for line in listed)
    assert sorted(versions) == sorted(TOOL_VARIABLES)
    assert versions == {tool: tool_version(tool) for tool in TOOL_VARIABLES}
