"""Deadline: one HTTP exchange bounded in time from connect to the last byte, status line and
headers included.

requests and http.client bound each socket read, not the exchange: a receiver that sends its
status line or headers a byte at a time, each within the read timeout, holds a POST open as
long as it likes (60-90 s against a 5 s HOOK_CALLBACK_TIMEOUT), and the delivery slot with it.
So a session's connections (`DeadlineAdapter`) tell the exchange under way in their thread
(`watching`) which socket they are about to read the answer from; when the deadline passes
first, a timer shuts that socket down, the blocked read returns at once, and the exchange ends
as timed out (`Watch.fired`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()  # the Watch of the exchange under way in this thread, if any


class Watch:
    """One exchange's deadline: arms a timer on the socket its answer is read from."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self, sock: socket.socket | None) -> None:
        """Shut `sock` down at the deadline, unless the exchange ends first."""
        if sock is None:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(
                max(0.0, self.deadline - time.monotonic()), self._fire, (sock,)
            )
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        with self._lock:
            self.fired = True
        with contextlib.suppress(OSError):  # closed meanwhile: nothing to cut
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns; the pool drops it

    def disarm(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


@contextmanager
def watching(deadline: float) -> Iterator[Watch]:
    """Bound the exchanges this thread makes meanwhile (through a DeadlineAdapter) by
    `deadline` (time.monotonic)."""
    watch = Watch(deadline)
    _local.watch = watch
    try:
        yield watch
    finally:
        _local.watch = None
        watch.disarm()


class _Noting:
    """A connection that arms the thread's Watch before it reads an answer."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.arm(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Noting, HTTPConnection):
    pass


class _HTTPSConnection(_Noting, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections honour `watching` (both schemes)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def bounded_session() -> requests.Session:
    """A requests session whose exchanges `watching` can bound (http and https)."""
    client = requests.Session()
    for scheme in ("http://", "https://"):
        client.mount(scheme, DeadlineAdapter())
    return client
