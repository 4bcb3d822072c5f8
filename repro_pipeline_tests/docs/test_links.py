"""The README's "Where next" list and the docs link only to files and sections that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repro_pipeline_tests.conftest import PROJECT_ROOT

DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    text = markdown.read_text(encoding="utf-8")
    headings = {_github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    explicit = set(re.findall(r'<a id="([^"]+)"></a>', text))
    return headings | explicit


def broken_links(markdown: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(markdown.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (markdown.parent / path_part).resolve() if path_part else markdown
        if not linked.exists() or (
            bool(anchor) and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    return broken


def test_the_readme_links_every_doc_on_its_first_screen() -> None:
    first_screen = "\n".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen
    for doc in DOCS:
        assert f"(docs/{doc.name})" in first_screen, doc.name


@pytest.mark.parametrize("markdown", [PROJECT_ROOT / "README.md", *DOCS], ids=lambda path: path.name)
def test_links_resolve(markdown: Path) -> None:
    assert broken_links(markdown) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# A heading\n", encoding="utf-8")
    page.write_text("[a](other.md#a-heading) [b](missing.md) [c](other.md#nowhere)\n", encoding="utf-8")
    assert broken_links(page) == ["missing.md", "other.md#nowhere"]
