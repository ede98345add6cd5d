"""gunicorn's gevent worker, which also lets the app close a connection (hook.web.connection)."""

from __future__ import annotations

from typing import Any

from gunicorn.workers.ggevent import GeventWorker

from hook.web.connection import current_request


class ClosingGeventWorker(GeventWorker):
    """A connection is a greenlet (slow clients hold no thread); see hook.cli.argv."""

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        token = current_request.set(req)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            current_request.reset(token)
