"""`python -m hook rules check [FILE]`: validate a rules file and say what each entry does.

Run it before pointing HOOK_RULES at a file, or after editing the one in force: the worker keeps
its old rules when a changed file is invalid, so this is where the mistake shows at once.
"""

from __future__ import annotations

from pathlib import Path

from hook.errors import ConfigError
from hook.rules import Rules, describe


def check(path: Path | None) -> str:
    """describe() of the rules file at `path` (FILE, else HOOK_RULES; None: neither is given).

    A ConfigError names what is wrong (file:line: key: problem), or that there is no file.
    """
    if path is None:
        raise ConfigError("no rules file: give one (rules check FILE) or set HOOK_RULES")
    return describe(Rules.load(path))
