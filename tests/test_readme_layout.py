"""The README's layout table matches the tree: every path it names exists, every module is named."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout_paths() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [path for row in rows for path in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def test_every_path_in_the_layout_table_exists() -> None:
    missing = [path for path in _layout_paths() if not (ROOT / path).exists()]
    assert missing == []


def test_every_module_of_the_package_is_in_the_layout_table() -> None:
    named = _layout_paths()
    folders = tuple(path for path in named if path.endswith("/"))
    modules = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "hook").rglob("*.py"))]
    unnamed = [
        m
        for m in modules
        if m not in named and not m.startswith(folders) and not m.endswith("__init__.py")
    ]
    assert unnamed == []
