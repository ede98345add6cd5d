"""Hypothesis against the rules file: whatever an operator writes, the file is read into rules
or refused with one ConfigError line naming the file, never anything else (a traceback stops
the worker at start-up, and `rules check` promises one line and exit 2)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hook.errors import ConfigError
from hook.rules.camera import KEYS
from hook.rules.ruleset import Rules

LABELS = ("person", "car", "dog", "persn", "", "Person", "truck")
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(LABELS),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from((*LABELS, *KEYS)), inner, max_size=4),
    ),
    max_leaves=20,
)
entries = st.dictionaries(st.sampled_from((*KEYS, "matches", "zones")), values, max_size=6)


def toml(value: Any) -> str:
    """A value as TOML writes it inline (JSON's strings are TOML's basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) and "e" not in repr(value) else f"{value:.6f}"
    if isinstance(value, int | str):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


def document(cameras: list[dict[str, Any]]) -> str:
    blocks = ["[[camera]]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in c.items()) for c in cameras]
    return "\n".join(blocks)


def assert_read_or_refused_in_one_line(path: Path) -> None:
    try:
        Rules.load(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(entries, max_size=3))
def test_any_entries_are_rules_or_one_line(tmp_path: Path, cameras: list[dict[str, Any]]) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(document(cameras))
    assert_read_or_refused_in_one_line(path)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(alphabet="[]{}=,.\"'#\n camera match 0.5", max_size=200))
def test_any_bytes_are_rules_or_one_line(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_read_or_refused_in_one_line(path)
