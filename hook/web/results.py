"""Looking at what hook saw, over HTTP: a task's result, its annotated pictures, the live page.

    GET /tasks/<api_key>/<task_id>                    the result (JSON)
    GET /tasks/<api_key>/<task_id>/images/<n>.jpg     image n's annotated picture (drawn
                                                      on the first look: hook.pictures)
    GET /tasks/<api_key>/view                         the live page (HTML), and beside it
        view.json (its data, polled by its script), view.css and view.js
    GET /tasks/<api_key>/cameras/<camera>/latest.jpg  the camera's newest picture, for a
                                                      dashboard's <img> (ETag: 304 when polled)

Each takes HOOK_API_KEY or a HOOK_VIEW_KEY (`check_key` is the app's viewer check).

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
from hook.web.answers import json_answer
from hook.web.view import page_data, render

TASK_ID = re.compile(r"[0-9a-f]{24}")  # str(ObjectId()), as the store makes them
PICTURE = re.compile(r"(0|[1-9][0-9]{0,5})\.jpg")
STATIC = {"view.css": "text/css; charset=utf-8", "view.js": "text/javascript; charset=utf-8"}
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **NOSNIFF,
    "Content-Security-Policy": "default-src 'self'; img-src 'self'",
    "Referrer-Policy": "no-referrer",  # the key is in the page's address
    "Cache-Control": "no-store",
}
PICTURE_CACHE = "private, max-age=300"  # drawn anew only when the task is labeled again
LATEST_CACHE = "private, no-cache"  # asked again each time: 304 while it is the same picture


def install(
    app: Bottle, store: TaskStore, gallery: Gallery, check_key: Callable[[str], None]
) -> None:
    """Add the routes to `app`; `check_key` raises WrongKey for anything but this hook's key."""
    assets = {name: (resources.files("hook.web") / "static" / name).read_bytes() for name in STATIC}

    @app.get("/tasks/<api_key>/view")
    def view(api_key: str) -> HTTPResponse:
        check_key(api_key)
        headers = {**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}
        return HTTPResponse(body=render(page_data(store)), status=200, headers=headers)

    @app.get("/tasks/<api_key>/view.json")
    def view_data(api_key: str) -> HTTPResponse:
        check_key(api_key)
        return json_answer(200, page_data(store), NOSNIFF)

    @app.get("/tasks/<api_key>/<name:re:view\\.(?:css|js)>")
    def asset(api_key: str, name: str) -> HTTPResponse:
        check_key(api_key)
        headers = {**NOSNIFF, "Content-Type": STATIC[name], "Cache-Control": "private, max-age=300"}
        return HTTPResponse(body=assets[name], status=200, headers=headers)

    @app.get("/tasks/<api_key>/cameras/<camera:path>/latest.jpg")
    def latest(api_key: str, camera: str) -> HTTPResponse:
        check_key(api_key)
        found = gallery.latest(camera)
        tag = f'"{found[0].id}-{found[1]}-{found[0].labeled_at}"' if found else ""
        headers = {**NOSNIFF, "ETag": tag, "Cache-Control": LATEST_CACHE}
        if found and tag in request.get_header("If-None-Match", ""):
            return HTTPResponse(status=304, headers=headers)  # a poll: nothing read or drawn
        jpeg = gallery.picture(found[0].id, found[1]) if found else None
        if jpeg is None:
            raise NotFound(
                f"no picture of camera {camera[:80]!r}: no labeled event of it whose images are "
                "still kept (HOOK_KEEP_PICTURES_HOURS), or no such camera",
                field="camera",
            )
        headers["Content-Type"] = "image/jpeg"
        return HTTPResponse(body=jpeg, status=200, headers=headers)

    @app.get("/tasks/<api_key>/<task_id>")
    def task_result(api_key: str, task_id: str) -> HTTPResponse:
        check_key(api_key)
        task = store.get(task_id) if TASK_ID.fullmatch(task_id) else None
        if task is None:
            raise NotFound(f"no task {task_id[:40]!r}", field="task_id")
        document = result(task, gallery.indexes(task), base=f"/tasks/{api_key}/{task.id}")
        return json_answer(200, {"ok": True, **document}, NOSNIFF)

    @app.get("/tasks/<api_key>/<task_id>/images/<name>")
    def picture(api_key: str, task_id: str, name: str) -> HTTPResponse:
        check_key(api_key)
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
