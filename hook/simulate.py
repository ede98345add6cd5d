"""`python -m hook simulate URL --images DIR`: play Camio for a person trying the server.

Posts one event per image (JPEG/PNG in DIR) to the hook URL, with a callback_url pointing at a
small HTTP server of its own on this machine, waits for the labels and prints them. The hook
server must allow that callback host: HOOK_CALLBACK_HOSTS must list it (e.g. 127.0.0.1).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

SUFFIXES = {".jpg", ".jpeg", ".png"}


@contextmanager
def callback_server(host: str, port: int) -> Iterator[tuple[str, queue.Queue]]:
    """An HTTP server collecting POSTed labels: yields its base URL and a queue of (path, body)."""
    received: queue.Queue[tuple[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                received.put((self.path, json.loads(body)))
                self.send_response(200)
            except ValueError:
                self.send_response(400)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def images_in(directory: Path) -> list[Path]:
    found = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES)
    if not found:
        raise ValueError(f"no .jpg, .jpeg or .png files in {directory}")
    return found


def simulate(
    hook_url: str,
    images: list[Path],
    *,
    listen: str,
    port: int,
    camera: str,
    timeout: float,
    out: Any,
) -> int:
    """Post, wait, print; the number of images whose labels did not come back in time."""
    with callback_server(listen, port) as (base, received):
        expected: dict[str, Path] = {}
        refused = 0
        start = datetime.now(UTC).replace(tzinfo=None)
        for n, path in enumerate(images):
            cb = f"/labels/{uuid.uuid4().hex}"
            stamp = (start + timedelta(seconds=n)).isoformat(timespec="microseconds")
            event = {
                "callback_url": base + cb,
                "camera": camera,
                "user_id": "simulate",
                "images": [
                    {
                        "type": mimetypes.guess_type(path.name)[0] or "image/jpeg",
                        "timestamp": stamp,
                        "image_b64": base64.b64encode(path.read_bytes()).decode(),
                    }
                ],
            }
            answer = requests.post(hook_url, json=event, timeout=30)
            print(f"{path.name}: POST {answer.status_code} {answer.text.strip()}", file=out)
            if answer.ok:
                expected[cb] = path
            else:
                refused += 1
        deadline = time.monotonic() + timeout
        while expected and time.monotonic() < deadline:
            try:
                cb, body = received.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if cb in expected:
                path = expected.pop(cb)
                print(f"{path.name}: labels {json.dumps(body.get('labels', body))}", file=out)
        for path in expected.values():
            print(f"{path.name}: no labels within {timeout:g} s", file=out)
        return 1 if expected or refused else 0
