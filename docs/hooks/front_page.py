"""MkDocs hook: the site's front page is the repository's README.md.

README.md links into the site as `docs/<page>.md`, so the links work on GitHub; the hook adds
it to the site as `index.md` with those links made relative to the docs folder, where the
site's pages are. MkDocs runs a `hooks:` script's `on_files` once the docs folder is read
(mkdocs 1.6.1 `mkdocs/config/defaults.py`, `mkdocs/plugins.py`), and `File.generated` makes a
page of in-memory content (`mkdocs/structure/files.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

README = "README.md"
# `](docs/page.md)` or `](docs/page.md#anchor)`: a Markdown link target into the docs folder.
INTO_DOCS = re.compile(r"\]\(docs/")


def front_page(readme: str) -> str:
    """README.md's text as the site's index.md: its links into docs/ made docs-relative."""
    return INTO_DOCS.sub("](", readme)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    text = (root / README).read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=front_page(text)))
    return files
