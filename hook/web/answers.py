"""JSON answers: how every route of the web app answers in JSON, errors included."""

from __future__ import annotations

import json
from typing import Any

from bottle import HTTPResponse


def json_answer(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> HTTPResponse:
    """`payload` as JSON with `status`; never cached (queue state changes by the second)."""
    return HTTPResponse(
        body=json.dumps(payload),
        status=status,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            **(headers or {}),
        },
    )
