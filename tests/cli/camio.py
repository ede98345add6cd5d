"""Camio's hooks API, stood in for on 127.0.0.1: the one part of the world that cannot run here."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.factories import API_KEY

TOKEN = "camio-oauth-token-123"


class FakeCamio:
    """Camio's /api/users/me/hooks as far as the CLI uses it; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": body,
                        "auth": self.headers.get("Authorization"),
                    }
                )
                status: int
                payload: Any
                if fake.fail_with:
                    status, payload = fake.fail_with, {"error": "token not valid"}
                elif self.headers.get("Authorization") != f"token {TOKEN}":
                    status, payload = 401, {"error": "unauthorized"}
                elif self.command == "POST" and self.path == "/api/users/me/hooks":
                    status, payload = 200, {"id": "hook-42", **(body or {})}
                elif self.command == "GET" and self.path == "/api/users/me/hooks":
                    status, payload = (
                        200,
                        [
                            {
                                "id": "hook-42",
                                "type": "query_match",
                                "parsed_query": "camera == 'porch'",
                                "callback_url": f"https://h:8000/tasks/{API_KEY}",
                            }
                        ],
                    )
                elif self.command == "DELETE" and self.path == "/api/users/me/hooks/hook-42":
                    status, payload = 204, None
                else:
                    status, payload = 404, {"error": "no such thing"}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
