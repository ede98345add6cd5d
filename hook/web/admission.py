"""Admission: how many large events one web process takes in at once.

An event's body, its JSON and its decoded images are in memory together while it is taken in:
about 110 MB for a maximum-size body (HOOK_MAX_BODY). gunicorn's gevent workers accept up to
1,000 connections a process, so without a bound eight such bodies at once took 898 MB. Bodies
over LARGE_BYTES take a slot of AT_ONCE; beyond that the POST is answered 503 with Retry-After
at once, before its body is read, and Camio sends it again. Small events (the usual few hundred
KB) never wait. Once a large body is taken in, the C heap's free pages go back to the system.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hook import heap
from hook.errors import Busy

LARGE_BYTES = 1_000_000  # a body this large or more takes a slot
AT_ONCE = 4  # large bodies one process takes in at once: about 450 MB at the most


class LargeBodies:
    """The slots for large bodies in this process (a gevent worker's greenlets share them)."""

    def __init__(self, at_once: int = AT_ONCE, large: int = LARGE_BYTES) -> None:
        self.at_once, self.large = at_once, large
        self.slots = threading.BoundedSemaphore(at_once)

    @contextmanager
    def admitted(self, environ: dict[str, Any]) -> Iterator[None]:
        """Take the request in (a slot held meanwhile if its body is large), or Busy."""
        if _length(environ) < self.large:
            yield
            return
        if not self.slots.acquire(blocking=False):
            raise Busy(
                f"this server is taking in {self.at_once} large events already; "
                "send it again in a second",
                field="body",
            )
        try:
            yield
        finally:
            self.slots.release()
            heap.give_back()


def _length(environ: dict[str, Any]) -> int:
    """The body's declared length; a body of unknown length (chunked) counts as large."""
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return LARGE_BYTES
