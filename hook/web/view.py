"""The live page, GET /tasks/<api_key>/view: events (filtered, paged), failures, the queue, the
workers.

`page_data` gathers what the page shows as plain JSON-able data (also served as view.json, which
the page's script polls on the first page to refresh itself); `render` is the same data as HTML,
so the page is useful with scripts off. Links are relative to the page's folder
(/tasks/<api_key>/), so the key appears nowhere in the page, only in its address. Filters and
the paging cursor are query parameters: ?camera=...&label=...&status=...&before=<task id>
(older) or &after=<task id> (newer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from hook.errors import Invalid
from hook.pictures.gallery import shown
from hook.store import Heartbeat, TaskStore
from hook.task import Status, Task, iso
from hook.web.html import action, e, label_chips, page, row, seconds, section, table, time

PER_PAGE = 20  # events on a page
FAILURES = 10
GONE_AFTER = 3  # beats missed: a worker silent for three of its intervals is gone
REFRESH_SECONDS = 10  # the page reloads itself this often when scripts are off
TASK_ID = re.compile(r"[0-9a-f]{24}")  # str(ObjectId()), as the store makes them
MOST_CHARS = 200  # of a camera or label filter


@dataclass(frozen=True)
class Filters:
    """What the list shows: a camera's events, with a label, in a status; and where it is."""

    camera: str | None = None
    label: str | None = None
    status: Status | None = None
    before: str | None = None  # the next older page: events older than this task id
    after: str | None = None  # the next newer page

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """From the page's query parameters; Invalid (400) names a bad one."""
        words = {}
        for name in ("camera", "label"):
            value = (query.get(name) or "").strip()
            if len(value) > MOST_CHARS:
                raise Invalid(f"{name} is over {MOST_CHARS} characters", field=name)
            words[name] = value or None
        status = (query.get("status") or "").strip().lower()
        if status and status not in {s.value for s in Status}:
            raise Invalid(
                f"status {status[:40]!r} is not one of {', '.join(s.value for s in Status)}",
                field="status",
            )
        cursors = {}
        for name in ("before", "after"):
            value = query.get(name) or ""
            if value and not TASK_ID.fullmatch(value):
                raise Invalid(f"{name} {value[:40]!r} is not a task id", field=name)
            cursors[name] = value or None
        return cls(status=Status(status) if status else None, **words, **cursors)

    @property
    def paged(self) -> bool:
        return self.before is not None or self.after is not None

    def query(self, **cursor: str) -> str:
        """These filters (and `cursor`: before= or after=) as a query string, '' for none."""
        shown_filters = replace(self, before=None, after=None)
        pairs = [(k, v) for k, v in vars(shown_filters).items() if v is not None]
        pairs += list(cursor.items())
        return f"?{urlencode(pairs)}" if pairs else ""


def page_data(
    store: TaskStore,
    filters: Filters | None = None,
    *,
    can_act: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as of `now` (default: the store's clock). `can_act`: the key
    that opened it may retry and forget (HOOK_API_KEY, not a view key)."""
    filters = filters or Filters()
    now = store.clock() if now is None else now
    found = store.page(
        camera=filters.camera,
        label=filters.label,
        status=filters.status,
        before=filters.before,
        after=filters.after,
        limit=PER_PAGE,
    )
    return {
        "now": iso(now),
        "queue": {**store.stats(), "retrying": store.retrying()},
        "workers": [worker_row(beat, now) for beat in store.workers()],
        "filters": {
            "camera": filters.camera,
            "label": filters.label,
            "status": filters.status.value if filters.status else None,
        },
        "events": [event_row(task, shown(task, now)) for task in found.tasks],
        "older": f"view{filters.query(before=found.older)}" if found.older else None,
        "newer": f"view{filters.query(after=found.newer)}" if found.newer else None,
        "failures": [failure_row(t) for t in store.pending((Status.FAILED,), FAILURES)],
        "can_act": can_act,
    }


def event_row(task: Task, pictures: Collection[int]) -> dict[str, Any]:
    """One event as the page lists it; `pictures` are the indexes of those it can show."""
    first = min(pictures) if pictures else None
    return {
        "id": task.id,
        "page": f"{task.id}/view",
        "camera": task.camera,
        "status": task.status.value,
        "images": len(task.images),
        "attempts": task.attempts,
        "arrived": iso(task.created_at),
        "labeled_after": after(task.created_at, task.labeled_at),
        "finished_after": after(task.created_at, task.finished_at),
        "labels": labels_of(task),
        "last_error": task.last_error,
        "thumbnail": f"{task.id}/images/{first}.jpg" if first is not None else None,
    }


def labels_of(task: Task) -> list[dict[str, Any]]:
    """Each label in the event's labels once: its best score and most boxes in one image."""
    body = json.loads(task.result_json) if task.result_json else {}
    return summed((body.get("labels") or {}).values())


def summed(per_image: Collection[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Label -> best score and most boxes over these images' label entries, best first."""
    best: dict[str, tuple[float, int]] = {}
    for found in per_image:
        for label, entry in found.items():
            score, count = float(entry.get("probability", 0)), int(entry.get("count", 1))
            old_score, old_count = best.get(label, (0.0, 0))
            best[label] = (max(score, old_score), max(count, old_count))
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
    return [{"label": k, "score": round(s, 2), "count": n} for k, (s, n) in ranked]


def failure_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "page": f"{task.id}/view",
        "camera": task.camera,
        "failed": iso(task.finished_at),
        "attempts": task.attempts,
        "reason": task.last_error,
    }


def worker_row(beat: Heartbeat, now: float) -> dict[str, Any]:
    """A worker's heartbeat; "gone" when it stopped beating without saying it stopped."""
    silent = max(0.0, now - beat.seen_at)
    gone = beat.state != "stopped" and silent > GONE_AFTER * beat.every
    return {
        "host": beat.host,
        "pid": beat.pid,
        "state": "gone" if gone else beat.state,
        "seen_ago": round(silent, 1),
        "started": iso(beat.started_at),
        "done": beat.done,
        "in_flight": beat.in_flight,
    }


def after(start: float, end: float | None) -> float | None:
    return None if end is None else round(max(0.0, end - start), 2)


# The HTML. view.js builds the same markup from view.json; keep the two in step.

EVENT_HEADS = ("picture", "camera", "labels", "status", "arrived", "labeled", "finished", "")
FAILURE_HEADS = ("failed", "camera", "attempts", "reason", "")
WORKER_HEADS = ("host", "pid", "state", "last seen", "started", "done", "in flight")
QUEUE_ORDER = ("queued", "retrying", "running", "done", "failed")


def render(data: dict[str, Any]) -> str:
    """The whole page for `data` (from page_data)."""
    filters = data["filters"]
    query = Filters(
        camera=filters["camera"],
        label=filters["label"],
        status=Status(filters["status"]) if filters["status"] else None,
    ).query()
    paged = bool(data["newer"])  # a page below the first: not refreshed
    poll = "" if paged else f' data-poll="view.json{e(query)}"'
    events = table("events", EVENT_HEADS, map(event_html, data["events"]), "no events")
    failures = table(
        "failures",
        FAILURE_HEADS,
        (failure_html(f, data["can_act"]) for f in data["failures"]),
        "no failures",
    )
    workers = table(
        "workers", WORKER_HEADS, map(worker_html, data["workers"]), "no worker has reported yet"
    )
    body = (
        f'<body class="list"{poll}{" data-can-act" if data["can_act"] else ""}>'
        '<header><h1><a href="view">hook</a></h1><p class="asof">as of '
        f'<span id="now">{time(data["now"])}</span> <span id="live"></span></p></header><main>'
        + section("Queue", f'<div id="queue" class="queue">{queue_html(data["queue"])}</div>')
        + section("Events", filter_form(filters) + events + pager(data), ' class="events"')
        + section("Failures", failures)
        + section("Workers", workers)
        + "</main></body>"
    )
    return page("hook: live", "", body, refresh=None if paged else REFRESH_SECONDS)


def filter_form(filters: dict[str, Any]) -> str:
    options = "".join(
        f'<option value="{e(value)}"{" selected" if value == (filters["status"] or "") else ""}>'
        f"{e(value or 'any status')}</option>"
        for value in ("", *(s.value for s in Status))
    )
    clear = '<a href="view">clear</a>' if any(filters.values()) else ""
    return (
        '<form class="filters" method="get" action="view">'
        f'<input name="camera" placeholder="camera" value="{e(filters["camera"] or "")}">'
        f'<input name="label" placeholder="label" value="{e(filters["label"] or "")}">'
        f'<select name="status">{options}</select>'
        f'<button type="submit">filter</button>{clear}</form>'
    )


def pager(data: dict[str, Any]) -> str:
    newer = f'<a id="newer" href="{e(data["newer"])}">&larr; newer</a>' if data["newer"] else ""
    older = f'<a id="older" href="{e(data["older"])}">older &rarr;</a>' if data["older"] else ""
    return f'<nav class="pager">{newer}{older}</nav>'


def queue_html(queue: dict[str, int]) -> str:
    return "".join(
        f'<div class="count {e(name)}"><b>{int(queue.get(name, 0))}</b> {e(name)}</div>'
        for name in QUEUE_ORDER
    )


def event_html(event: dict[str, Any]) -> str:
    thumb = (
        f'<a href="{e(event["page"])}"><img class="thumb" src="{e(event["thumbnail"])}" '
        f'alt="annotated picture"></a>'
        if event["thumbnail"]
        else '<span class="none">no picture</span>'
    )
    labels = label_chips(event["labels"]) or (
        '<span class="none">nothing found</span>' if event["labeled_after"] is not None else ""
    )
    status = f'<span class="status {e(event["status"])}">{e(event["status"])}</span>'
    if event["last_error"] and event["status"] != Status.DONE.value:
        status += f'<div class="why">{e(event["last_error"])}</div>'
    camera = event["camera"] or ""
    cells = (
        thumb,
        f'<a href="view{e(Filters(camera=camera).query())}">{e(camera)}</a>' if camera else "",
        labels,
        status,
        time(event["arrived"]),
        seconds(event["labeled_after"]),
        seconds(event["finished_after"]),
        f'<a class="details" href="{e(event["page"])}">details</a>',
    )
    return row(event["id"], EVENT_HEADS, cells)


def failure_html(failure: dict[str, Any], can_act: bool) -> str:
    retry = action(f"{failure['id']}/retry", "retry") if can_act else ""
    cells = (
        time(failure["failed"]),
        e(failure["camera"] or ""),
        str(int(failure["attempts"])),
        f'<span class="why">{e(failure["reason"] or "")}</span>',
        f'<a class="details" href="{e(failure["page"])}">details</a>{retry}',
    )
    return row(failure["id"], FAILURE_HEADS, cells)


def worker_html(worker: dict[str, Any]) -> str:
    cells = (
        e(worker["host"]),
        str(int(worker["pid"])),
        f'<span class="state {e(worker["state"])}">{e(worker["state"])}</span>',
        f"{float(worker['seen_ago']):.0f} s ago",
        time(worker["started"]),
        str(int(worker["done"])),
        str(int(worker["in_flight"])),
    )
    return row(None, WORKER_HEADS, cells)
