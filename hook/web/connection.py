"""Asking the server to close a request's connection after its answer.

An error answer may leave the request's body partly unread; the connection must then carry no
further request. WSGI forbids the app a `Connection` header (gunicorn drops it), so the app
says so here and hook.web.gevent_worker, which serves each connection in its own greenlet (its
own contextvars), marks gunicorn's request for closing.
"""

from __future__ import annotations

import contextvars
from typing import Any

current_request: contextvars.ContextVar[Any] = contextvars.ContextVar("request", default=None)


def close_after_answer() -> None:
    """Close this request's connection once its answer is sent (no-op outside gunicorn)."""
    request = current_request.get()
    if request is not None:
        request.must_close = True
