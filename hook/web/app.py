"""The HTTP face of the hook: Camio POSTs events here; operators list tasks and check health.

Every answer is JSON, errors included (404, 405, 413 and even an unexpected 500), and no
answer ever carries a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from bottle import Bottle, HTTPError, HTTPResponse, request, response
from prometheus_client import CONTENT_TYPE_LATEST
from pymongo.errors import ConnectionFailure, PyMongoError

from hook import __version__
from hook.callbacks.hosts import HostAllowList
from hook.config.settings import Settings
from hook.errors import (
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    TooLarge,
    TooSlow,
    WrongKey,
)
from hook.intake.event import Limits, parse_event
from hook.metrics.recorder import EVENTS, Metrics, exposition, rejection_reason
from hook.pictures.gallery import Gallery
from hook.store import TaskStore
from hook.task import PENDING, Status
from hook.wakeup import Doorbell
from hook.web.admission import LargeBodies
from hook.web.answers import json_answer
from hook.web.connection import close_after_answer
from hook.web.keys import KeyKind, Keys
from hook.web.offload import offload
from hook.web.results import install as install_results

log = logging.getLogger(__name__)

MAX_LIST = 1000
READ_CHUNK = 64 * 1024
STATUS_OF: tuple[tuple[type[Refused], int], ...] = (
    (TooLarge, 413),
    (WrongKey, 403),
    (Forbidden, 403),
    (Conflict, 409),
    (TooSlow, 408),
    (Busy, 503),
    (Invalid, 400),
    (NotFound, 404),
)
STATUS_CHOICES = {"pending": PENDING, **{s.value: (s,) for s in Status}}


def create_app(
    settings: Settings,
    store: TaskStore,
    metrics: Metrics | None = None,
    doorbell: Doorbell | None = None,
    large_bodies: LargeBodies | None = None,
) -> Bottle:
    """Build the WSGI app; it holds no state but what it is given. `doorbell` wakes this
    machine's idle workers after each new task (default: those of settings.data_dir)."""
    metrics = metrics or Metrics(store)
    doorbell = doorbell or Doorbell(settings.data_dir)
    large_bodies = large_bodies or LargeBodies()
    app = Bottle(catchall=True)
    app.default_error_handler = _error_page
    app.install(_json_errors)
    hosts = HostAllowList(settings.callback_hosts)
    limits = Limits(
        max_images=settings.max_images,
        max_image_pixels=settings.max_image_pixels,
        max_image_bytes=settings.max_image_bytes,
    )
    keys = Keys(settings.api_key, settings.view_keys)

    def check_key(given: str) -> None:
        keys.ingest(_key_segment(given), request.remote_addr or "?")

    def check_viewer(given: str) -> KeyKind:
        return keys.viewer(_key_segment(given), request.remote_addr or "?")

    def check_actor(given: str) -> None:
        keys.ingest(_key_segment(given), request.remote_addr or "?", doing="retry and forget")

    @app.get("/tasks")
    @app.get("/tasks/")
    def health() -> HTTPResponse:
        try:
            store.ping()
        except PyMongoError as exc:
            return json_answer(
                503,
                {
                    "ok": False,
                    "mongo": "down",
                    "version": __version__,
                    "error": f"MongoDB does not answer: {type(exc).__name__}",
                },
                {"Retry-After": "5"},
            )
        return json_answer(200, {"ok": True, "mongo": "up", "version": __version__})

    @app.post("/tasks/<api_key>")
    def enqueue(api_key: str) -> HTTPResponse:
        started = time.perf_counter()
        with large_bodies.admitted(request.environ):  # Busy (503) past its slots
            try:
                check_key(api_key)
                body = read_body(request.environ, settings.max_body, settings.body_timeout)
                try:
                    event = parse_event(body, hosts=hosts, limits=limits)
                except Refused as exc:
                    log.info("rejected an event (%d bytes): %s", len(body), exc)
                    raise
            except Refused as exc:
                metrics.count(EVENTS, f"rejected:{rejection_reason(exc.field, status_for(exc))}")
                raise
            task_id, created = store.enqueue(event)
        if created:  # a duplicate is a task some worker has or had already
            doorbell.ring()
        metrics.count(EVENTS, "accepted" if created else "duplicate")
        log.info(
            "task %s %s: camera=%r images=%d body=%d bytes in %.1f ms",
            task_id,
            "queued" if created else "already known (duplicate delivery)",
            event.camera,
            len(event.images),
            len(body),
            (time.perf_counter() - started) * 1000,
        )
        return json_answer(200, {"ok": True, "task_id": task_id, "duplicate": not created})

    @app.get("/metrics")
    def prometheus() -> HTTPResponse:
        return HTTPResponse(
            body=exposition(store), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.get("/tasks/<api_key>")
    def listing(api_key: str) -> HTTPResponse:
        check_viewer(api_key)
        statuses = _statuses(request.query.get("status", "pending"))
        limit = _limit(request.query.get("limit", "100"))
        tasks = store.pending(statuses, limit)
        return json_answer(
            200,
            {
                "status": [s.value for s in statuses],
                "count": len(tasks),
                "tasks": [
                    {**task.summary(), "result": f"/tasks/{api_key}/{task.id}"} for task in tasks
                ],
            },
        )

    gallery = Gallery(store, max_pixels=settings.max_image_pixels, run=offload)
    install_results(app, store, gallery, check_viewer, check_actor)
    return app


def _key_segment(given: str) -> bytes:
    """The key as sent: the raw path segment after /tasks/ (Bottle's decoded one silently
    drops invalid bytes)."""
    raw = request.environ.get("bottle.raw_path", "").encode("latin-1", "replace")
    after = raw.split(b"/tasks/", 1)[-1] if b"/tasks/" in raw else given.encode()
    return after.split(b"/", 1)[0]  # /tasks/<api_key>/<task_id>...: the key's alone


def read_body(environ: dict[str, Any], limit: int, timeout: float) -> bytes:
    """The request body within `timeout` seconds in all, refusing one over `limit` unread (413).

    Each read waits at most what is left of the deadline (the client's socket gets that as
    its timeout), so a body trickled a byte at a time gets a 408 like one that stalls.
    """
    body = _Body(environ, time.monotonic() + timeout)
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.strip():
        try:
            length = int(declared)
        except ValueError:
            raise Invalid(f"Content-Length {declared[:40]!r} is not a number") from None
        if length > limit:
            raise TooLarge(_too_large(limit, length), field="body")
        parts, size = [], 0
        while size < length and (chunk := body.read(min(READ_CHUNK, length - size))):
            parts.append(chunk)
            size += len(chunk)
        if size < length:
            raise Invalid(f"the body ended after {size} of {length} bytes", field="body")
        return b"".join(parts)
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""
    parts, size = [], 0
    while chunk := body.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(_too_large(limit), field="body")
        parts.append(chunk)
    return b"".join(parts)


class _Body:
    """wsgi.input read against one deadline for the whole body.

    gunicorn's reader gathers a read's bytes from as many socket reads as it takes, so a
    timeout per socket read never ends a body trickled a byte at a time: at the deadline a
    timer shuts the socket for reading, which ends the read, and the client gets its 408.
    """

    def __init__(self, environ: dict[str, Any], deadline: float) -> None:
        self.stream, self.deadline = environ["wsgi.input"], deadline
        self.sock = environ.get("gunicorn.socket")
        self.cut = threading.Event()

    def read(self, size: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TooSlow("the body did not arrive in time", field="body")
        timer = None
        if self.sock is not None:
            self.sock.settimeout(left)
            timer = threading.Timer(left, self._cut)
            timer.start()
        try:
            data = self.stream.read(size)
        except TimeoutError:
            raise TooSlow("the body did not arrive in time", field="body") from None
        except Exception as exc:  # the server's own parse errors: bad chunk sizes, cut-off bodies
            if self.cut.is_set():
                raise TooSlow("the body did not arrive in time", field="body") from None
            raise Invalid(
                f"the body could not be read: {type(exc).__name__}", field="body"
            ) from None
        finally:
            if timer is not None:
                timer.cancel()
        if self.cut.is_set():
            raise TooSlow("the body did not arrive in time", field="body")
        return data

    def _cut(self) -> None:
        self.cut.set()
        with contextlib.suppress(OSError):
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RD)


def _too_large(limit: int, length: int | None = None) -> str:
    size = f"{length} bytes, " if length is not None else ""
    return f"the body is {size}over the limit of {limit} bytes (HOOK_MAX_BODY)"


def _statuses(raw: str) -> tuple[Status, ...]:
    wanted: list[Status] = []
    for name in (part.strip().lower() for part in raw.split(",")):
        if name not in STATUS_CHOICES:
            raise Invalid(
                f"status {name!r} is not one of {', '.join(sorted(STATUS_CHOICES))}",
                field="status",
            )
        wanted.extend(s for s in STATUS_CHOICES[name] if s not in wanted)
    return tuple(wanted)


def _limit(raw: str) -> int:
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(
            f"limit must be a whole number from 1 to {MAX_LIST}, not {raw[:40]!r}", field="limit"
        )
    return limit


def _json_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Bottle plugin: our exceptions become JSON answers with the right status."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Refused as exc:
            body: dict[str, Any] = {"ok": False, "error": str(exc)}
            if exc.field:
                body["field"] = exc.field
            close_after_answer()  # the body may be partly unread: no further request on it
            retry = {"Retry-After": "1"} if isinstance(exc, Busy) else None
            return json_answer(status_for(exc), body, retry)
        except PyMongoError as exc:
            reason = _store_trouble(exc)
            log.warning("answering 503: %s", reason)
            trouble = {"ok": False, "error": f"{reason}; nothing was stored, retry later"}
            return json_answer(503, trouble, {"Retry-After": "5"})

    return wrapper


def status_for(exc: Refused) -> int:
    """The HTTP status a refusal becomes: the one place domain errors meet HTTP."""
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return status
    return 400


def _store_trouble(exc: PyMongoError) -> str:
    """What went wrong with MongoDB, in words: unreachable, or refusing writes (disk full...)."""
    if isinstance(exc, ConnectionFailure):
        return "the task store (MongoDB) is not answering"
    details = getattr(exc, "details", None) or {}
    errors = details.get("writeErrors") or [details]
    message = errors[0].get("errmsg") if isinstance(errors[0], dict) else None
    return f"the task store (MongoDB) refused the write: {message or type(exc).__name__}"


def _error_page(error: HTTPError) -> str:
    """Bottle's own errors (404, 405, an unexpected 500) as JSON, never an HTML traceback."""
    if error.status_code >= 500:
        log.error("unexpected error: %r", error.exception, exc_info=error.exception)
        message = "internal error; it has been logged"
    elif error.status_code == 405:
        allowed = error.headers.get("Allow")
        message = f"method {request.method} is not allowed here; allowed: {allowed}"
    elif error.status_code == 404:
        message = "no such endpoint; the hook is at /tasks/<api_key>"
    else:
        message = str(error.body or error.status_line)
    response.content_type = "application/json"
    response.set_header("Cache-Control", "no-store")
    return json.dumps({"ok": False, "error": message})
