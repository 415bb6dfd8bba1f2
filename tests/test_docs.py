"""The README stays short and every relative link in it and in docs/ leads somewhere.

The site itself is checked by building it (`make docs`, run by `make test`, warnings as
errors); these checks are the cheap ones a plain `pytest` also runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code: the target up to its closing parenthesis
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")


def relative_links(page: Path) -> list[str]:
    """The relative link targets of a Markdown page (code spans and blocks skipped)."""
    text = _CODE.sub("", _FENCE.sub("", page.read_text(encoding="utf-8")))
    targets = [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]
    return [t.split("#", 1)[0] for t in targets]


def test_readme_has_at_most_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move sections to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_link_finder_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "[a](there.md#x) [b](https://e.org) [c](#top) `[d](no.md)`\n"
        "```\n[e](no.md)\n```\n[f](../up.ipynb)\n"
    )
    assert relative_links(page) == ["there.md", "../up.ipynb"]


def test_every_docs_page_is_in_the_site():
    """A page left out of docs/index.md's tables of contents is never built into the site."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([\w-]+)$", index, re.M))
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")} - {"index"}
    assert pages <= listed, f"not in docs/index.md: {sorted(pages - listed)}"
