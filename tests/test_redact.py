"""The API key out of log lines: plain, and percent-encoded however a client spells the path."""

from __future__ import annotations

import logging
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hook.redact import DECODINGS, RedactFilter, redact

KEY = "k3y-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "path",
    [
        f"/tasks/{KEY}/view",
        f"/%74asks/{KEY}/view",  # any letter of "tasks" encoded
        f"/t%61%73k%73/{KEY}",
        f"/%54asks/{KEY}",  # not a route (case), but a key all the same
        f"/tasks%2F{KEY}%2Fview",  # the slashes encoded
        f"%2ftasks%2f{KEY}",
        f"/%2574asks/{KEY}/view",  # encoded twice over
        f"/%252574asks/{KEY}",  # three times
        f"/tasks/{KEY[:5]}%2D{KEY[6:]}/view",  # the key itself encoded in part
    ],
)
def test_the_key_is_redacted_however_the_path_is_encoded(path: str) -> None:
    line = f'127.0.0.1 - - "GET {path} HTTP/1.1" 200 17 "-" "curl"'
    cleaned = redact(line)
    assert KEY not in cleaned and KEY[6:] not in cleaned, cleaned
    assert "<key>" in cleaned and '" 200 17 "-" "curl"' in cleaned


KEYS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=16)


@st.composite
def spelled(draw: st.DrawFn, key: str) -> str:
    """/tasks/<key>/view with "tasks" in any case and each character as it is or
    percent-encoded once or twice over (%XX, %25XX)."""
    path = "/" + "".join(draw(st.sampled_from((c.lower(), c.upper()))) for c in "tasks")
    out = []
    for char in f"{path}/{key}/view":
        times = draw(st.integers(0, 2))
        out.append(f"%{ord(char):02X}" if times else char)
        if times == 2:
            out[-1] = "%25" + out[-1][1:]
    return "".join(out)


@given(st.data(), KEYS)
def test_no_spelling_of_the_path_lets_the_key_through(data: st.DataObject, key: str) -> None:
    """Whatever a client sends, the line as logged, decoded as often as anyone may, holds no key."""
    line = f'127.0.0.1 - - "GET {data.draw(spelled(key))} HTTP/1.1" 200 17 "-" "curl"'
    seen = redact(line)
    for _ in range(DECODINGS + 1):
        assert key not in seen, (line, redact(line))
        seen = unquote(seen)


def test_lines_without_a_key_are_left_as_they_are() -> None:
    for line in ("GET /tasks/ HTTP/1.1", "GET /metrics?x=%41 HTTP/1.1", "50% done", "a %zz b"):
        assert redact(line) == line


def test_the_filter_formats_a_record_once_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", (f"/%74asks/{KEY}",), None)
    assert RedactFilter().filter(record)
    assert record.getMessage() == "GET /tasks/<key>" and KEY not in record.getMessage()


def test_a_shell_variable_in_a_hint_is_no_key() -> None:
    """A key is URL-safe characters: a path naming $HOOK_API_KEY is a hint to paste, kept."""
    hint = 'simulate "http://127.0.0.1:8000/tasks/$HOOK_API_KEY" --images tests/data'
    assert redact(hint) == hint
    assert redact(f"/tasks/{KEY}$HOOK_API_KEY") == "/tasks/<key>"
