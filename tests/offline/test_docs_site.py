"""The documentation site builds with no warning, and every relative link in README.md and
docs/ resolves on GitHub as it does in the site.

The site is MkDocs with the Material theme (mkdocs.yml); README.md is its front page
(docs/hooks/front_page.py). `mkdocs build --strict` turns every warning into a failure, and
mkdocs.yml makes a broken link, a broken anchor and a page left out of the navigation warnings
(MkDocs 1.6 `validation`; some are only `info` by default: mkdocs `mkdocs/config/defaults.py`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import REPO

MKDOCS = Path(sys.executable).parent / "mkdocs"
README = REPO / "README.md"
DOCS = REPO / "docs"
# The site's own sources besides docs/: copied for a build of a deliberately broken copy.
SITE_SOURCES = ["mkdocs.yml", "README.md"]

# A Markdown link or image `[text](target)` or `[text](target "title")`, and a reference
# definition `[name]: target`.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)", re.M)
FENCE = re.compile(r"^ *```.*?^ *```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def mkdocs_build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def warning_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """MkDocs' warnings: its log lines `WARNING -  ...` (colours aside). Material's notice of its
    end of life, which names `NO_MKDOCS_2_WARNING`, is no such line."""
    output = ANSI.sub("", result.stdout + result.stderr)
    return [line for line in output.splitlines() if re.match(r"\s*WARNING\b", line)]


def documentation() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The Markdown without its code: fenced blocks and inline code spans."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return INLINE_LINK.findall(body) + REFERENCE_LINK.findall(body)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, without punctuation but `-` and
    `_`, each space a `-` (github-slugger, which github.com uses). MkDocs' own anchors are
    checked by the strict build."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        name, count = base, 0
        while name in found:  # a repeated heading: `-1`, `-2`, ...
            count += 1
            name = f"{base}-{count}"
        found.add(name)
    return found


def broken_links(path: Path) -> list[str]:
    broken: list[str] = []
    for target in links(path.read_text()):
        if SCHEME.match(target):
            continue  # a URL: not this repository's
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(f"{path.relative_to(REPO)}: {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{path.relative_to(REPO)}: {target}: no such heading")
    return broken


def test_the_site_builds_strictly_with_no_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = mkdocs_build(REPO, site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert warning_lines(result) == []
    front = (site / "index.html").read_text()
    assert "Two commands for a newcomer" in front, "README.md is the front page"
    for page in DOCS.rglob("*.md"):
        relative = page.relative_to(DOCS).with_suffix("")
        built = site / (relative.parent if relative.name == "index" else relative) / "index.html"
        assert built.is_file(), f"{page.relative_to(REPO)} is not in the site"


@pytest.mark.parametrize(
    "defect",
    ["[a missing page](no-such-page.md)", "[a missing heading](network.md#no-such-heading)"],
)
def test_a_broken_link_fails_the_strict_build(tmp_path: Path, defect: str) -> None:
    """The build above would catch a broken link: a copy of the site with one fails."""
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    for name in SITE_SOURCES:
        shutil.copy2(REPO / name, copy / name)
    page = copy / "docs" / "getting-started.md"
    page.write_text(page.read_text() + f"\n{defect}\n")
    result = mkdocs_build(copy, tmp_path / "site")
    assert result.returncode != 0
    target = defect.split("(", 1)[1].rstrip(")")
    assert any(target in line for line in warning_lines(result)), result.stderr


def test_every_relative_link_resolves() -> None:
    found = {str(path): links(path.read_text()) for path in documentation()}
    assert found[str(README)], "README.md links into the site"
    assert sum(map(len, found.values())) > 20
    broken = [line for path in documentation() for line in broken_links(path)]
    assert broken == []


def test_the_readme_links_into_every_page_of_the_site_or_its_index() -> None:
    """Every docs page is reachable from the front page on GitHub too: linked from README.md,
    or from a page README.md links to."""
    reached: set[Path] = set()
    frontier = [README]
    while frontier:
        path = frontier.pop()
        for target in links(path.read_text()):
            file_part = target.partition("#")[0]
            if SCHEME.match(target) or not file_part.endswith(".md"):
                continue
            resolved = (path.parent / file_part).resolve()
            if resolved.is_file() and resolved not in reached:
                reached.add(resolved)
                frontier.append(resolved)
    unreached = [p.relative_to(REPO) for p in DOCS.rglob("*.md") if p.resolve() not in reached]
    assert unreached == []


def test_slug_is_githubs() -> None:
    assert slug("`pulumi up`, and what it prints while it waits") == (
        "pulumi-up-and-what-it-prints-while-it-waits"
    )
    assert slug("DHCP and TFTP: chain-loading into iPXE") == "dhcp-and-tftp-chain-loading-into-ipxe"


def two_commands(text: str) -> str:
    """The section `## Two commands for a newcomer`: the commands and their measured times."""
    start = text.index("## Two commands for a newcomer\n")
    end = text.find("\n\n", text.index("\n```\n", start) + 5)
    return text[start:end]


def test_the_front_pages_two_commands_open_getting_started() -> None:
    """README.md's two commands and their times are the ones the getting-started page opens
    with, word for word but the front page's link to that page, where the getting-started page
    says `(below)`."""
    front = two_commands(README.read_text()).replace(
        "(see\n[Getting started](docs/getting-started.md)).", "(below)."
    )
    started = two_commands((DOCS / "getting-started.md").read_text())
    assert "```sh\n./scripts/setup" in started and "Measured on" in started
    assert front == started
