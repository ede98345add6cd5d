"""The README and docs/*.md hold together: the README stays a short front door with its two
quick-start commands, every relative link leads to a file and every #anchor to a heading (as
GitHub spells anchors), and every long page starts with a table of contents of its sections."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.factories import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MOST_README_LINES = 260
LONG_PAGE = 60  # lines; a longer page needs a table of contents
COMMANDS = (  # the quick start's, byte for byte: CI runs the second as the README writes it
    "bash scripts/setup.sh && export HOOK_API_KEY=\"${HOOK_API_KEY:-$(python3 -c 'import "
    'secrets; print(secrets.token_urlsafe(24))\')}" && echo "hook URL: '
    'http://${HOOK_BIND:-127.0.0.1:8000}/tasks/$HOOK_API_KEY" && .venv/bin/python -m hook run',
    "bash scripts/setup.sh --test && .venv/bin/python -m pytest",
)

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+).*?\1")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:|^//", re.IGNORECASE)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")


def prose(text: str) -> list[str]:
    """The page's lines with fenced code blocks blanked out (their `#` lines are no headings)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation other than '-' and '_'
    dropped (backticks and emphasis marks included), each space a '-'."""
    text = LINK.sub(lambda m: m.group(1), heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def headings(page: Path) -> list[tuple[int, str]]:
    """(level, anchor) of each heading, repeats numbered as GitHub does (`-1`, `-2`, ...)."""
    seen: Counter[str] = Counter()
    found = []
    for line in prose(page.read_text()):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.append((len(match.group(1)), f"{base}-{seen[base]}" if seen[base] else base))
            seen[base] += 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link and image outside code."""
    found = []
    for number, line in enumerate(prose(page.read_text()), 1):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            found.append((number, match.group(2)))
    return found


def broken_links(page: Path) -> list[str]:
    """What is wrong with the page's relative links: a missing file, or an anchor no heading has."""
    problems = []
    for number, target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        shown = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name
        where = f"{shown}:{number}: {target}"
        if not linked.is_file():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in {a for _, a in headings(linked)}:
            problems.append(f"{where}: {linked.name} has no heading #{anchor}")
    return problems


def table_of_contents(page: Path) -> set[str]:
    """The anchors of the page's own headings listed before its first section (`##`)."""
    listed = set()
    for line in prose(page.read_text()):
        if line.startswith("## "):
            break
        if LIST_ITEM.match(line):
            listed |= {m.group(2)[1:] for m in LINK.finditer(line) if m.group(2).startswith("#")}
    return listed & {anchor for _, anchor in headings(page)}


def test_the_readme_is_a_short_front_door_with_its_two_commands() -> None:
    text = README.read_text()
    lines = len(text.splitlines())
    assert lines <= MOST_README_LINES, f"README.md has {lines} lines; move detail into docs/"
    for command in COMMANDS:
        assert f"```sh\n{command}\n```" in text, f"README.md lacks, byte for byte: {command}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_leads_somewhere(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_long_page_starts_with_its_table_of_contents(page: Path) -> None:
    if len(page.read_text().splitlines()) <= LONG_PAGE:
        pytest.skip(f"{page.name} is {LONG_PAGE} lines or fewer")
    sections = {anchor for level, anchor in headings(page) if level == 2}
    assert sections, f"{page.name} has no sections (## headings)"
    missing = sections - table_of_contents(page)
    assert not missing, f"{page.name}'s table of contents (before its first ##) lacks {missing}"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README)}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_broken_links_and_anchors_are_caught(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Leases, and a `worker` that dies\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Same page\n\n```sh\n# not a heading\n```\n"
        "[ok](other.md#leases-and-a-worker-that-dies) [ok](#same-page) [ok](https://x.org/#y)\n"
        "[gone](missing.md) [bad](other.md#leases) [bad](#not-a-heading) `[code](gone.md)`\n"
    )
    problems = broken_links(page)
    assert [p.split(": ", 2)[1] for p in problems] == [
        "missing.md",
        "other.md#leases",
        "#not-a-heading",
    ]
