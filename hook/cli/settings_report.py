"""`python -m hook settings`: the settings table (defaults, as in docs/configuration.md) or the
values in force.

`--effective` answers "what will hook use here?" from this environment, with secrets hidden,
and names HOOK_* variables that are no setting (a typo otherwise silently does nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hook.cli.launcher import TRY_IT_HOST
from hook.config import resolved
from hook.config.settings import Settings
from hook.config.table import DEFAULT_MODELS, PROJECT_DIR, SPECS, Spec
from hook.errors import HookError

START, END = "<!-- settings -->", "<!-- /settings -->"
HIDDEN = "<hidden>"
CLI_VARIABLES = {"CAMIO_OAUTH_TOKEN": True, "CAMIO_API_URL": False}  # read by the CLI; secret?
_PASSWORD_IN_URI = re.compile(r"(://[^:/@]*:)[^@/]*@")


def settings_table() -> str:
    """The settings table of docs/configuration.md, in Markdown."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for spec in SPECS:
        shown_models = ",".join(str(m.relative_to(PROJECT_DIR)) for m in DEFAULT_MODELS)
        default = shown_models if spec.field == "models" else spec.default
        shown = "(unset)" if default is None else f"`{default}`" if default else "(empty)"
        rows.append(f"| `{spec.env}` | {shown} | {spec.doc} |")
    return "\n".join(rows)


def update_docs(path: Path) -> None:
    """Replace the table between `<!-- settings -->` and `<!-- /settings -->` in `path`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HookError(f"cannot read {path}: {exc.strerror or exc}") from None
    if START not in text or END not in text.split(START, 1)[1]:
        raise HookError(f"{path} has no {START} ... {END} markers to put the table between")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    try:
        path.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}")
    except OSError as exc:
        raise HookError(f"cannot write {path}: {exc.strerror or exc}") from None


def effective_table(environ: Mapping[str, str]) -> str:
    """Each setting's value in force and where it comes from; a ConfigError if one is invalid."""
    settings = Settings.from_env(environ, require_api_key=False)
    here = resolved.shown(settings, resolved.resolve(settings))
    rows: list[tuple[str, str, str]] = []
    for spec in SPECS:
        given = bool(environ.get(spec.env, "").strip())
        source = "environment" if given else "default"
        if spec.env == "HOOK_CALLBACK_HOSTS" and not given:
            source += f"; `hook run` adds {TRY_IT_HOST} for simulate"
        value = _value(spec, getattr(settings, spec.field))
        if spec.field in here:
            value += f" (here: {here[spec.field]})"
        if spec.field == "api_key" and not given:
            value = "(unset: `run` and `web` need it)"
        rows.append((spec.env, value, source))
    for name, secret in CLI_VARIABLES.items():
        value = environ.get(name, "").strip()
        shown = (HIDDEN if secret else value) if value else "(unset)"
        rows.append((name, shown, "for register, hooks, unregister"))
    width = max(len(name) for name, _, _ in rows) + 1
    lines = [f"{name:<{width}} {value}  ({source})" for name, value, source in rows]
    known = {spec.env for spec in SPECS}
    unknown = sorted(n for n in environ if n.startswith("HOOK_") and n not in known)
    if unknown:
        lines.append(f"not settings, so ignored (a typo?): {', '.join(unknown)}")
    return "\n".join(lines)


def _value(spec: Spec, value: Any) -> str:
    """A parsed value as text, the way one would write it in the environment."""
    if value is None or value == "":
        return "(unset)"
    if spec.hidden:
        return HIDDEN
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    if spec.field == "mongo_uri":
        return _PASSWORD_IN_URI.sub(rf"\1{HIDDEN}@", str(value))
    return str(value)
