"""Modules of a few hundred lines at most: no module over 400 lines, no class over 220."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 220


def sources() -> list[Path]:
    found = [ROOT / "worker.py"]
    for folder in ("hook", "models", "bench", "tests"):
        found += sorted((ROOT / folder).rglob("*.py"))
    scratch = ROOT / "models" / "build"  # unpacked downloads, if any (ruff skips it too)
    return [path for path in found if not path.is_relative_to(scratch)]


def oversized(path: Path) -> list[str]:
    """What in `path` is over the limits, each as `path[:Class]: N lines`."""
    text = path.read_text()
    name = path.relative_to(ROOT).as_posix()
    found = []
    if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in ast.walk(ast.parse(text, filename=name)):
        if not isinstance(node, ast.ClassDef) or node.end_lineno is None:
            continue
        if (lines := node.end_lineno - node.lineno + 1) > MAX_CLASS_LINES:
            found.append(f"{name}:{node.name}: {lines} lines")
    return found


def test_no_module_or_class_is_oversized() -> None:
    assert len(sources()) > 50  # the walk found the code
    assert [entry for path in sources() for entry in oversized(path)] == []
