"""A stand-in for Camio's callback endpoint: a real HTTP server on 127.0.0.1 that records POSTs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Request:
    """A POST as it came: its headers and the body's bytes, and which secret verified it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: int | None  # index into Receiver.secrets; None: not verified (or no secrets)


class Receiver:
    """Answers each path with scripted statuses (then 200), optionally after a delay or a gate.

    With `secrets`, every POST is checked as a receiver would, by the official Standard
    Webhooks library (not hook's own code): one that none of them verifies is answered 401.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        secrets: Sequence[str] = (),
        keep_alive: bool = False,
        latency: float = 0.0,
        after: Callable[[str], None] | None = None,
    ) -> None:
        """`keep_alive`: HTTP/1.1 connections a sender may reuse, as Camio's HTTPS endpoint
        allows (the benchmarks'); else one connection per POST (HTTP/1.0). `latency`: seconds
        every answer takes, as a far endpoint's does (Camio's, across the internet: ~0.1 s).
        `after`: called with the path once a POST's answer is out (a fault test's trigger)."""
        self.secrets = list(secrets)
        self.requests: list[Request] = []  # every POST with its headers and raw body
        self.received: list[tuple[str, Any]] = []
        self.arrivals: list[tuple[str, float]] = []  # (path, time.monotonic()) per POST
        self.script: dict[str, list[int]] = defaultdict(list)
        self.delay: dict[str, float] = {}  # a path's own delay, on top of `latency`
        self.latency = latency
        self.headers: dict[str, dict[str, str]] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            # the answer (status line, headers, body) goes out in one write at the flush
            # after each request, and with Nagle off: a two-part answer on a reused
            # connection would wait for the sender's delayed ACK (~40 ms a POST)
            wbufsize = 64 * 1024

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    return
                headers = dict(self.headers.items())
                verified_by = receiver.verify(headers, body)
                with receiver.cond:
                    receiver.arrivals.append((self.path, time.monotonic()))
                    receiver.requests.append(Request(self.path, headers, body, verified_by))
                    receiver.received.append((self.path, json.loads(body or b"null")))
                    receiver.cond.notify_all()
                    statuses = receiver.script[self.path]
                    status = statuses.pop(0) if statuses else 200
                if receiver.secrets and verified_by is None:
                    status = 401
                time.sleep(receiver.latency + receiver.delay.get(self.path, 0))
                extra = receiver.headers.get(self.path, {})
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                answer = json.dumps({"status": status}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                if after is not None:
                    self.wfile.flush()
                    after(self.path)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def verify(self, headers: dict[str, str], body: bytes) -> int | None:
        """The index of the first secret whose signature the POST carries, if any."""
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except (WebhookVerificationError, ValueError):  # a malformed header: ValueError
                continue
            return index
        return None

    def requests_to(self, path: str) -> list[Request]:
        with self.cond:
            return [request for request in self.requests if request.path == path]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def bodies(self, path: str) -> list[Any]:
        with self.cond:
            return [body for p, body in self.received if p == path]

    def wait_for(self, path: str, count: int, timeout: float = 60) -> list[Any]:
        """Block until `path` got `count` POSTs; AssertionError with what came if it did not."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(got := [b for p, b in self.received if p == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{path}: {len(got)} of {count} callbacks in {timeout} s")
                self.cond.wait(left)
            return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
