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


def trickler(answer: bytes, every: float) -> tuple[str, socket.socket]:
    """A one-shot server that sends `answer` a byte every `every` seconds: each read of the
    sender gets a byte well within its read timeout, and the whole never comes in time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        for byte in answer:
            time.sleep(every)
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # the sender gave up and hung up: what the test wants
                break
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/drip", server
