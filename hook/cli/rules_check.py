"""`python -m hook rules check [FILE]`: validate a rules file and say what each entry does.

Run it before pointing HOOK_RULES at a file, or after editing the one in force: the worker keeps
its old rules when a changed file is invalid, so this is where the mistake shows at once.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from hook.errors import ConfigError
from hook.rules.ruleset import Rules, describe


def check(path: Path | None, known: Collection[str] | str = ()) -> str:
    """describe() of the rules file at `path` (FILE, else HOOK_RULES; None: neither is given).

    `known` is the models' labels, which every label named must be one of; or a string saying
    why they could not be loaded (then names are not checked, and the report says so).
    A ConfigError names what is wrong (file:line: key: problem), or that there is no file.
    """
    if path is None:
        raise ConfigError("no rules file: give one (rules check FILE) or set HOOK_RULES")
    rules = Rules.load(path)
    if isinstance(known, str):
        return f"{describe(rules)}\n(label names not checked against the models: {known})"
    rules.check_labels(known)
    return describe(rules)
