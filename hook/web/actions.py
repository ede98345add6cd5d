"""The page's actions: retry a failed task, forget any, from a form on the page.

    POST /tasks/<api_key>/<task_id>/retry     queued again (store.retry_failed, as `hook retry`)
    POST /tasks/<api_key>/<task_id>/forget    removed with its images and pictures (as `hook
                                              forget`; a task a worker has is left alone)

They change things, so they take HOOK_API_KEY only (a view key gets 403), and only a form
posted from this hook's own page: the request's Origin (or, without one, its Referer) must be
this host, http or https, and the body a form's, so another site's page cannot make a visitor's
browser send them (no CSRF). Done, each answers 303 to the task's page (forget: to the list);
each is logged with its task id, never the key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from bottle import Bottle, HTTPResponse, request

from hook.errors import Conflict, Forbidden, Invalid, NotFound
from hook.store import TaskStore
from hook.store.operations import ForgetOutcome, RetryOutcome
from hook.web.view import TASK_ID

log = logging.getLogger(__name__)

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
NOT_RETRIED = {
    RetryOutcome.NOT_FAILED: "only a failed task is retried; this one is {status}",
    RetryOutcome.IMAGES_GONE: "its images are gone and it has no labels stored: there is "
    "nothing to label or send",
}


def install(app: Bottle, store: TaskStore, check_key: Callable[[str], None]) -> None:
    """Add the action routes; `check_key` raises WrongKey for anything but HOOK_API_KEY."""

    @app.post("/tasks/<api_key>/<task_id>/retry")
    def retry(api_key: str, task_id: str) -> HTTPResponse:
        _admit(api_key, task_id, check_key)
        (entry,) = store.retry_failed([task_id]).entries
        log.info("task %s: retry from the page: %s", task_id, entry.outcome.value)
        if entry.outcome is RetryOutcome.UNKNOWN:
            raise NotFound(f"no task {task_id!r}", field="task_id")
        if not entry.requeued:
            why = NOT_RETRIED[entry.outcome].format(status=entry.status)
            raise Conflict(f"task {task_id} not retried: {why}", field="task_id")
        return _see_other(f"/tasks/{quote(api_key, safe='')}/{task_id}/view")

    @app.post("/tasks/<api_key>/<task_id>/forget")
    def forget(api_key: str, task_id: str) -> HTTPResponse:
        _admit(api_key, task_id, check_key)
        (entry,) = store.forget([task_id]).entries
        log.info("task %s: forget from the page: %s", task_id, entry.outcome.value)
        if entry.outcome is ForgetOutcome.UNKNOWN:
            raise NotFound(f"no task {task_id!r}", field="task_id")
        if entry.outcome is ForgetOutcome.RUNNING:
            raise Conflict(
                f"task {task_id} not forgotten: a worker is on it and would still deliver its "
                "labels (`hook forget --force` removes it anyway)",
                field="task_id",
            )
        return _see_other(f"/tasks/{quote(api_key, safe='')}/view")


def _admit(api_key: str, task_id: str, check_key: Callable[[str], None]) -> None:
    """The key that writes, a form from this host's page, a task id; else a refusal."""
    check_key(api_key)
    same_origin()
    kind = (request.get_header("Content-Type") or "").split(";", 1)[0].strip().lower()
    if kind not in FORMS:
        raise Invalid(
            f"a form's POST is expected ({FORMS[0]}), not {kind[:60] or 'no content type'!r}",
            field="content_type",
        )
    if not TASK_ID.fullmatch(task_id):
        raise NotFound(f"no task {task_id[:40]!r}", field="task_id")


def same_origin() -> None:
    """Forbidden unless the request comes from a page of this very host (Origin, or Referer
    when a browser sends no Origin)."""
    host = (request.get_header("Host") or "").strip().lower()
    mine = {f"http://{host}", f"https://{host}"}
    origin = request.get_header("Origin")
    if origin is not None:
        if origin.strip().lower() not in mine or not host:
            raise Forbidden(
                f"refused: sent from another origin ({origin[:80]!r}), not this hook's page",
                field="origin",
            )
        return
    referer = request.get_header("Referer")
    if referer is None:
        raise Forbidden(
            "refused: neither Origin nor Referer says the request comes from this hook's page",
            field="origin",
        )
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}".lower() not in mine or not host:
        raise Forbidden(
            "refused: the Referer is another origin's page, not this hook's", field="origin"
        )


def _see_other(path: str) -> HTTPResponse:
    return HTTPResponse(status=303, headers={"Location": path, "Cache-Control": "no-store"})
