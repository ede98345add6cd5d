"""Looking at what hook saw, over HTTP: a task's result, its annotated pictures, the live page.

    GET /tasks/<api_key>/<task_id>                    the result (JSON)
    GET /tasks/<api_key>/<task_id>/images/<n>.jpg     image n's annotated picture (drawn
                                                      on the first look: hook.pictures)
    GET /tasks/<api_key>/view                         the live page (HTML; ?camera= &label=
        &status= filter it, &before= &after= page it), and beside it view.json (its data,
        polled by its script, same parameters), view.css and view.js
    GET /tasks/<api_key>/<task_id>/view               one event's page (HTML)
    POST /tasks/<api_key>/<task_id>/retry, .../forget the page's actions (hook.web.actions)
    GET /tasks/<api_key>/cameras/<camera>/latest.jpg  the camera's newest picture, for a
                                                      dashboard's <img> (ETag: 304 when polled)

Each GET takes HOOK_API_KEY or a HOOK_VIEW_KEY (`check_viewer`, which says which); the
actions take HOOK_API_KEY only (`check_actor`), and only HOOK_API_KEY's pages show them.

Installed on the app by hook.web.app.create_app, whose plugin turns refusals into JSON answers.
Every route checks the key first (403), then says 404 for what is not there, a malformed id
included. The page's routes come first, so "view" is never taken for a task id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources

from bottle import Bottle, HTTPResponse, request

from hook.errors import NotFound
from hook.pictures.gallery import Gallery
from hook.result import result
from hook.store import TaskStore
from hook.task import Task
from hook.web.actions import install as install_actions
from hook.web.answers import json_answer
from hook.web.keys import KeyKind
from hook.web.task_page import render_task, task_data
from hook.web.view import TASK_ID, Filters, page_data, render

PICTURE = re.compile(r"(0|[1-9][0-9]{0,5})\.jpg")
STATIC = {"view.css": "text/css; charset=utf-8", "view.js": "text/javascript; charset=utf-8"}
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **NOSNIFF,
    "Content-Security-Policy": "default-src 'self'; img-src 'self'",
    # the key is in the page's address: no other site gets it; this one's own requests carry
    # it, so a form's POST has its Origin (with no-referrer a browser sends "Origin: null")
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PICTURE_CACHE = "private, max-age=300"  # drawn anew only when the task is labeled again
LATEST_CACHE = "private, no-cache"  # asked again each time: 304 while it is the same picture


def install(
    app: Bottle,
    store: TaskStore,
    gallery: Gallery,
    check_viewer: Callable[[str], KeyKind],
    check_actor: Callable[[str], None],
) -> None:
    """Add the routes to `app`; `check_viewer` raises WrongKey for anything but this hook's
    keys and says which it is, `check_actor` for anything but HOOK_API_KEY."""
    assets = {name: (resources.files("hook.web") / "static" / name).read_bytes() for name in STATIC}
    html = {**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}

    def known(task_id: str) -> Task:
        """The task of that id, or NotFound (a malformed id too: never a store query)."""
        task = store.get(task_id) if TASK_ID.fullmatch(task_id) else None
        if task is None:
            raise NotFound(f"no task {task_id[:40]!r}", field="task_id")
        return task

    def listed(api_key: str) -> dict[str, object]:
        can_act = check_viewer(api_key) is KeyKind.INGEST
        return page_data(store, Filters.from_query(request.query), can_act=can_act)

    @app.get("/tasks/<api_key>/view")
    def view(api_key: str) -> HTTPResponse:
        return HTTPResponse(body=render(listed(api_key)), status=200, headers=html)

    @app.get("/tasks/<api_key>/view.json")
    def view_data(api_key: str) -> HTTPResponse:
        return json_answer(200, listed(api_key), NOSNIFF)

    @app.get("/tasks/<api_key>/<name:re:view\\.(?:css|js)>")
    def asset(api_key: str, name: str) -> HTTPResponse:
        check_viewer(api_key)
        headers = {**NOSNIFF, "Content-Type": STATIC[name], "Cache-Control": "private, max-age=300"}
        return HTTPResponse(body=assets[name], status=200, headers=headers)

    @app.get("/tasks/<api_key>/cameras/<camera:path>/latest.jpg")
    def latest(api_key: str, camera: str) -> HTTPResponse:
        check_viewer(api_key)
        found = gallery.latest(camera)
        tag = f'"{found[0].id}-{found[1]}-{found[0].labeled_at}"' if found else ""
        headers = {**NOSNIFF, "ETag": tag, "Cache-Control": LATEST_CACHE}
        if found and tag in request.get_header("If-None-Match", ""):
            return HTTPResponse(status=304, headers=headers)  # a poll: nothing read or drawn
        jpeg = gallery.picture_of(*found) if found else None
        if jpeg is None:
            raise NotFound(
                f"no picture of camera {camera[:80]!r}: no labeled event of it whose images are "
                "still kept (HOOK_KEEP_PICTURES_HOURS), or no such camera",
                field="camera",
            )
        headers["Content-Type"] = "image/jpeg"
        return HTTPResponse(body=jpeg, status=200, headers=headers)

    @app.get("/tasks/<api_key>/<task_id>/view")
    def task_view(api_key: str, task_id: str) -> HTTPResponse:
        can_act = check_viewer(api_key) is KeyKind.INGEST
        task = known(task_id)
        document = result(task, gallery.indexes(task), base=".")
        page = render_task(task_data(task, document, can_act=can_act))
        return HTTPResponse(body=page, status=200, headers=html)

    @app.get("/tasks/<api_key>/<task_id>")
    def task_result(api_key: str, task_id: str) -> HTTPResponse:
        check_viewer(api_key)
        task = known(task_id)
        document = result(task, gallery.indexes(task), base=f"/tasks/{api_key}/{task.id}")
        return json_answer(200, {"ok": True, **document}, NOSNIFF)

    @app.get("/tasks/<api_key>/<task_id>/images/<name>")
    def picture(api_key: str, task_id: str, name: str) -> HTTPResponse:
        check_viewer(api_key)
        index = PICTURE.fullmatch(name)
        jpeg = (
            gallery.picture(task_id, int(index[1]))
            if index and TASK_ID.fullmatch(task_id)
            else None
        )
        if jpeg is None:
            raise NotFound(
                f"no picture {name[:40]!r} of task {task_id[:40]!r}: no such task or image, "
                "not labeled yet, or past HOOK_KEEP_PICTURES_HOURS",
                field="picture",
            )
        headers = {**NOSNIFF, "Content-Type": "image/jpeg", "Cache-Control": PICTURE_CACHE}
        return HTTPResponse(body=jpeg, status=200, headers=headers)

    install_actions(app, store, check_actor)
