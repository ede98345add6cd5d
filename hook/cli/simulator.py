"""`python -m hook simulate URL --images DIR`: play Camio for a person trying the server.

Posts one event per photo (JPEGs as they are; PNG, WebP, BMP and GIF converted to JPEG, as
Camio sends JPEGs) with a callback_url on a small HTTP server of its own, 127.0.0.1:8101 by
default (the port `python -m hook run` allows when HOOK_CALLBACK_HOSTS is unset), waits for the
labels and prints a line per photo, then a summary. It stops at the first refusal that every
other photo would get too (a wrong key, a URL the hook does not serve, its callback URL not
allowed) or when the hook cannot be reached, saying what to change. The key in the URL is never
printed.
"""

from __future__ import annotations

import base64
import json
import queue
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

import requests

from hook.cli.photos import as_jpeg
from hook.errors import HookError
from hook.redact import redact

DEFAULT_PORT = 8101
POST_TIMEOUT = 30.0
AFTER_STOP = "not sent after the stop"

Received = tuple[str, Any, float]  # callback path, JSON body, monotonic time of arrival
Say = Callable[[str, "dict[str, Any] | None"], None]  # a line for people, its data for --json


@contextmanager
def callback_server(host: str, port: int) -> Iterator[tuple[str, queue.Queue[Received]]]:
    """An HTTP server collecting POSTed labels: yields its base URL and a queue of arrivals."""
    received: queue.Queue[Received] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                received.put((self.path, json.loads(body), arrived))
                self.send_response(200)
            except ValueError:
                self.send_response(400)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        hint = "; is another simulate running? Pass --port" if port else ""
        raise HookError(
            f"cannot take callbacks on {host}:{port}: {exc.strerror or exc}{hint}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Result:
    """One photo's fate. outcome: labeled, refused, unreadable, failed, timeout or not sent
    (waiting while its labels are expected)."""

    photo: str
    outcome: str = "not sent"
    status: int | None = None  # the hook's HTTP answer to the POST
    labels: dict[str, Any] | None = None  # label -> Camio's entry (probability, count, ...)
    latency_ms: float | None = None  # from the POST to the callback's arrival
    error: str | None = None
    posted: float = 0.0  # monotonic

    def line(self) -> str:
        """The line a person reads."""
        if self.outcome == "labeled":
            timing = f" ({self.latency_ms:.0f} ms)"
            return f"{self.photo}: {describe_labels(self.labels or {})}{timing}"
        return f"{self.photo}: {self.outcome}: {self.error}"

    def data(self) -> dict[str, Any]:
        shown = {k: v for k, v in vars(self).items() if k != "posted"}
        return {k: v for k, v in shown.items() if v is not None}


def describe_labels(labels: dict[str, Any]) -> str:
    """'dog 0.92, person x2 0.81', most likely first; 'no labels' when nothing was found."""
    if not labels:
        return "no labels (nothing found)"
    ranked = sorted(labels.items(), key=lambda kv: -float(kv[1].get("probability", 0)))
    shown = []
    for name, entry in ranked:
        count = int(entry.get("count", 1))
        times = f" x{count}" if count > 1 else ""
        shown.append(f"{name}{times} {float(entry.get('probability', 0)):.2f}")
    return ", ".join(shown)


OUTCOMES = ("labeled", "refused", "unreadable", "failed", "timeout", "not sent")


def summary(results: list[Result], skipped: int) -> dict[str, Any]:
    """Counts by outcome and the latency figures of the labeled photos."""
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in OUTCOMES}
    return {
        "photos": len(results),
        **counts,
        "skipped": skipped,
        "p50_ms": round(statistics.median(latencies)) if latencies else None,
        "max_ms": round(max(latencies)) if latencies else None,
    }


def summary_line(figures: dict[str, Any]) -> str:
    photos = figures["photos"]
    parts = [f"{photos} photo{'' if photos == 1 else 's'}", f"{figures['labeled']} labeled"]
    parts += [f"{figures[o]} {o}" for o in OUTCOMES[1:] if figures[o]]
    if figures["skipped"]:
        parts.append(f"{figures['skipped']} other files skipped")
    line = "summary: " + ", ".join(parts)
    if figures["p50_ms"] is not None:
        line += f"; latency p50 {figures['p50_ms']} ms, max {figures['max_ms']} ms"
    return line


def simulate(
    hook_url: str,
    photos: list[Path],
    *,
    listen: str,
    port: int,
    camera: str,
    timeout: float,
    out: TextIO,
    skipped: Sequence[Path] = (),
    as_json: bool = False,
) -> int:
    """Post, wait, print; 0 when every photo was labeled, else 1."""

    def say(text: str, data: dict[str, Any] | None) -> None:
        print(json.dumps(data) if as_json else text, file=out, flush=True)

    if skipped:
        names = [p.name for p in skipped]
        say(f"skipped (not a picture simulate sends): {', '.join(names)}", {"skipped": names})
    results = [Result(p.name) for p in photos]
    with callback_server(listen, port) as (base, received):
        run = Simulation(hook_url, base, camera, say)
        run.post_all(photos, results)
        if run.expected:
            waiting = f"posted {len(run.expected)} photo(s) to {run.shown}; waiting up to"
            say(f"{waiting} {timeout:g} s for their labels", {"posted": len(run.expected)})
        run.collect(received, timeout)
    unsent = [r for r in results if r.error == AFTER_STOP]
    if as_json:
        for result in unsent:
            say("", result.data())
    elif unsent:
        say(f"{AFTER_STOP}: {', '.join(r.photo for r in unsent)}", None)
    figures = summary(results, len(skipped))
    say(summary_line(figures), {"summary": figures})
    return 0 if figures["labeled"] == len(results) else 1


@dataclass
class Simulation:
    """One run's posting and matching of callbacks to photos."""

    hook_url: str
    base: str  # the callback server's URL
    camera: str
    say: Say
    expected: dict[str, Result] = field(default_factory=dict)  # by callback path

    @property
    def shown(self) -> str:
        return redact(self.hook_url)

    def post_all(self, photos: list[Path], results: list[Result]) -> None:
        """POST each photo as an event, until the end or a stop (403, the hook unreachable)."""
        start = datetime.now(UTC).replace(tzinfo=None)
        for n, (path, result) in enumerate(zip(photos, results, strict=True)):
            stamp = (start + timedelta(seconds=n)).isoformat(timespec="microseconds")
            if not self._post(path, result, stamp):
                break
        for result in results:
            if result.outcome == "not sent" and result.error is None:
                result.error = AFTER_STOP

    def _post(self, path: Path, result: Result, stamp: str) -> bool:
        """Send one photo; False when nothing more should be sent."""
        try:
            jpeg = as_jpeg(path)
        except HookError as exc:
            result.outcome, result.error = "unreadable", str(exc)
            self.say(result.line(), result.data())
            return True
        cb = f"/labels/{uuid.uuid4().hex}"
        image = {
            "type": "image/jpeg",
            "timestamp": stamp,
            "image_b64": base64.b64encode(jpeg).decode(),
        }
        event = {
            "callback_url": self.base + cb,
            "camera": self.camera,
            "user_id": "simulate",
            "images": [image],
        }
        result.posted = time.monotonic()
        try:
            answer = requests.post(self.hook_url, json=event, timeout=POST_TIMEOUT)
        except requests.RequestException as exc:
            result.error = unreachable(self.hook_url, exc)
            self.say(result.line(), result.data())
            self.say("stopped: nothing more is sent", {"stopped": "the hook cannot be reached"})
            return False
        result.status = answer.status_code
        if answer.ok:
            result.outcome = "waiting"
            self.expected[cb] = result
            return True
        result.outcome, result.error = "refused", f"{answer.status_code} {_reason(answer)}"
        self.say(result.line(), result.data())
        stop = repeating(answer, self.base)
        if stop is not None:
            why, what_to_do = stop
            line = f"stopped: {why}, so it would refuse every photo; {what_to_do}"
            self.say(line, {"stopped": why})
            return False
        return True

    def collect(self, received: queue.Queue[Received], timeout: float) -> None:
        """Match callbacks to photos until all came or `timeout` seconds after the last POST."""
        deadline = time.monotonic() + timeout
        while self.expected:
            try:
                cb, body, arrived = received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            result = self.expected.pop(cb, None)
            if result is None:
                continue  # a repeat, or not ours
            result.latency_ms = round((arrived - result.posted) * 1000, 1)
            entries = body.get("labels") if isinstance(body, dict) else None
            if isinstance(entries, dict) and body.get("status") == "success":
                result.outcome, result.labels = "labeled", next(iter(entries.values()), {})
            else:
                result.outcome, result.error = "failed", f"the hook called back with {body!r:.200}"
            self.say(result.line(), result.data())
        for result in self.expected.values():
            result.outcome, result.error = "timeout", f"no labels within {timeout:g} s"
            self.say(result.line(), result.data())
        self.expected.clear()


def repeating(answer: requests.Response, callbacks: str) -> tuple[str, str] | None:
    """Why a refusal would come for every photo, and what to do about it; None if it is the
    photo's own (too large, say)."""
    status = answer.status_code
    if status in (401, 403):
        return (
            f"the hook refused the key in the URL ({status})",
            "check it against the server's HOOK_API_KEY",
        )
    if status in (404, 405):
        return (
            f"the hook does not take events at this URL ({status})",
            "give it as http://HOST:8000/tasks/<api_key>, the key the server runs with",
        )
    if status < 500 and _field(answer) == "callback_url":
        return (
            f"the hook does not allow simulate's callback URL, {callbacks}",
            "start the server with that host and port in HOOK_CALLBACK_HOSTS (`hook run` "
            f"allows 127.0.0.1:{DEFAULT_PORT} when it is unset), or pass --listen and --port "
            "to take callbacks where it allows them",
        )
    return None


def unreachable(url: str, exc: requests.RequestException) -> str:
    """Why the hook at `url` could not be reached, said for a person (the key redacted)."""
    shown = redact(url)
    if isinstance(exc, requests.exceptions.SSLError):
        if "WRONG_VERSION_NUMBER" in str(exc).upper().replace(" ", "_"):
            plain = redact("http" + url.removeprefix("https"))
            return (
                f"{shown} answers plain HTTP, not HTTPS: use {plain}, or give the server "
                "HOOK_TLS_CERT and HOOK_TLS_KEY"
            )
        return f"cannot reach {shown}: the TLS handshake failed ({redact(str(exc))})"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{shown} did not answer within {POST_TIMEOUT:g} s"
    hint = "is it running? (`hook run` starts it)"
    if url.startswith("http://"):
        hint += "; if it serves HTTPS (HOOK_TLS_CERT), use https://"
    return f"cannot reach {shown} ({type(exc).__name__}); {hint}"


def _field(answer: requests.Response) -> str | None:
    try:
        return str(answer.json().get("field"))
    except (ValueError, AttributeError):
        return None


def _reason(answer: requests.Response) -> str:
    """The hook's JSON error message, or the start of whatever it answered (redacted)."""
    try:
        return str(answer.json().get("error"))
    except (ValueError, AttributeError):
        return redact(" ".join(answer.text.split())[:200])
