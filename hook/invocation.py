"""How to run hook again, as a person would paste it: the venv's `hook` script, not `python`.

A bare `python -m hook` in a hint or an example cannot import hook outside the venv, so the
texts people copy name this interpreter's own script: `.venv/bin/hook` from the checkout it
lives in, its full path from anywhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path


def hook_command(cwd: Path | None = None, executable: str | None = None) -> str:
    """The command that runs hook with this interpreter, relative to `cwd` when inside it."""
    python = Path(executable or sys.executable)
    script = python.parent / "hook"
    chosen = script if script.is_file() else python
    here = (cwd or Path.cwd()).absolute()
    try:
        shown = str(chosen.absolute().relative_to(here))
    except ValueError:
        shown = str(chosen.absolute())
    return shown if chosen is script else f"{shown} -m hook"
