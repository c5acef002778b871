"""The README and the pages it links: the README stays short enough to skim, every page of docs/ is linked
from it, and every relative link (and its #anchor) leads somewhere."""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "batch_emulator" / "README.md"]
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
README_MAX_LINES = 300   # a newcomer skims it; reference material lives in docs/


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in relative_links(README)}
    assert [p.name for p in PAGES if p.parent.name == "docs" and p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(target)
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(target)
    assert broken == []


def test_the_anchor_rule_is_githubs():
    assert anchor(" Isolated nodes (`--isolation netns`)") == "isolated-nodes---isolation-netns"
    assert anchor("Quota") == "quota"
