"""HTTP on 127.0.0.1 inside the test process: free ports, a WSGI app served in a thread, and a
server that trickles its answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, make_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(app: Callable) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class Trickler:
    """A server that sends `answer` a byte every `every` seconds on every connection: each
    read of the sender gets a byte well within its read timeout, and the whole never comes in
    time. `held` is how long each sender kept its connection before hanging up."""

    def __init__(self, answer: bytes, every: float) -> None:
        self.answer, self.every = answer, every
        self.held: list[float] = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/drip"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        opened = time.monotonic()
        with conn:
            conn.recv(65536)
            for byte in self.answer:
                time.sleep(self.every)
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the sender gave up and hung up: what the tests want
                    self.held.append(time.monotonic() - opened)
                    return

    def close(self) -> None:
        self.server.close()


def trickler(answer: bytes, every: float) -> tuple[str, socket.socket]:
    """A Trickler's URL and listening socket (close it to stop)."""
    trickling = Trickler(answer, every)
    return trickling.url, trickling.server
