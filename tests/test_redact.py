"""The API key out of log lines: plain, and percent-encoded however a client spells the path."""

from __future__ import annotations

import logging

import pytest

from hook.redact import RedactFilter, redact

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


def test_lines_without_a_key_are_left_as_they_are() -> None:
    for line in ("GET /tasks/ HTTP/1.1", "GET /metrics?x=%41 HTTP/1.1", "50% done", "a %zz b"):
        assert redact(line) == line


def test_the_filter_formats_a_record_once_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", (f"/%74asks/{KEY}",), None)
    assert RedactFilter().filter(record)
    assert record.getMessage() == "GET /tasks/<key>" and KEY not in record.getMessage()
