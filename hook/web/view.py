"""The live page, GET /tasks/<api_key>/view: recent events, failures, the queue, the workers.

`page_data` gathers what the page shows as plain JSON-able data (also served as view.json, which
the page's script polls to refresh itself); `render` is the same data as HTML, so the page is
useful with scripts off. Links are relative to the page's folder (/tasks/<api_key>/), so the key
appears nowhere in the page, only in its address. Every value is escaped: camera names, labels
and error messages come from outside.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from html import escape
from typing import Any

from hook.pictures.gallery import shown
from hook.store import Heartbeat, TaskStore
from hook.task import Status, Task, iso

RECENT = 20  # events on the page
FAILURES = 10
GONE_AFTER = 3  # beats missed: a worker silent for three of its intervals is gone
REFRESH_SECONDS = 10  # the page reloads itself this often when scripts are off


def page_data(store: TaskStore, now: float | None = None) -> dict[str, Any]:
    """Everything the page shows, as of `now` (default: the store's clock)."""
    now = store.clock() if now is None else now
    events = [event_row(task, shown(task, now)) for task in store.recent(RECENT)]
    return {
        "now": iso(now),
        "queue": {**store.stats(), "retrying": store.retrying()},
        "workers": [worker_row(beat, now) for beat in store.workers()],
        "events": events,
        "failures": [failure_row(t) for t in store.pending((Status.FAILED,), FAILURES)],
    }


def event_row(task: Task, pictures: Collection[int]) -> dict[str, Any]:
    """One event as the page lists it; `pictures` are the indexes of those it can show."""
    first = min(pictures) if pictures else None
    return {
        "id": task.id,
        "camera": task.camera,
        "status": task.status.value,
        "images": len(task.images),
        "attempts": task.attempts,
        "arrived": iso(task.created_at),
        "labeled_after": _after(task.created_at, task.labeled_at),
        "finished_after": _after(task.created_at, task.finished_at),
        "labels": labels_of(task),
        "last_error": task.last_error,
        "thumbnail": f"{task.id}/images/{first}.jpg" if first is not None else None,
    }


def labels_of(task: Task) -> list[dict[str, Any]]:
    """Each label in the event's labels once: its best score and most boxes in one image."""
    body = json.loads(task.result_json) if task.result_json else {}
    best: dict[str, tuple[float, int]] = {}
    for found in (body.get("labels") or {}).values():
        for label, entry in found.items():
            score, count = float(entry.get("probability", 0)), int(entry.get("count", 1))
            old_score, old_count = best.get(label, (0.0, 0))
            best[label] = (max(score, old_score), max(count, old_count))
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
    return [{"label": k, "score": round(s, 2), "count": n} for k, (s, n) in ranked]


def failure_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
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


def _after(start: float, end: float | None) -> float | None:
    return None if end is None else round(max(0.0, end - start), 2)


# The HTML. view.js builds the same markup from view.json; keep the two in step.


def render(data: dict[str, Any]) -> str:
    """The whole page for `data` (from page_data)."""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>hook: live</title>",
            '<link rel="stylesheet" href="view.css"><script src="view.js" defer></script>',
            f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>',
            "</head><body>",
            '<header><h1>hook</h1><p class="asof">as of '
            f'<span id="now">{_time(data["now"])}</span> UTC <span id="live"></span></p></header>',
            "<main>",
            _section("Queue", f'<div id="queue" class="queue">{queue_html(data["queue"])}</div>'),
            _section(
                "Workers",
                _table(
                    "workers",
                    WORKER_HEADS,
                    map(worker_html, data["workers"]),
                    "no worker has reported yet",
                ),
            ),
            _section(
                "Recent events",
                _table("events", EVENT_HEADS, map(event_html, data["events"]), "no events yet"),
            ),
            _section(
                "Failures",
                _table(
                    "failures", FAILURE_HEADS, map(failure_html, data["failures"]), "no failures"
                ),
            ),
            "</main></body></html>",
        ]
    )


EVENT_HEADS = ("picture", "camera", "labels", "status", "arrived", "labeled", "finished", "")
FAILURE_HEADS = ("failed", "camera", "attempts", "reason", "")
WORKER_HEADS = ("host", "pid", "state", "last seen", "started", "done", "in flight")
QUEUE_ORDER = ("queued", "retrying", "running", "done", "failed")


def queue_html(queue: dict[str, int]) -> str:
    return "".join(
        f'<div class="count {e(name)}"><b>{int(queue.get(name, 0))}</b> {e(name)}</div>'
        for name in QUEUE_ORDER
    )


def event_html(row: dict[str, Any]) -> str:
    thumb = (
        f'<a href="{e(row["thumbnail"])}"><img class="thumb" src="{e(row["thumbnail"])}" '
        f'alt="annotated picture"></a>'
        if row["thumbnail"]
        else '<span class="none">no picture</span>'
    )
    labels = "".join(
        f'<span class="label">{e(found["label"])} <b>{found["score"]:.2f}</b>'
        + (f" &times;{int(found['count'])}" if found["count"] > 1 else "")
        + "</span>"
        for found in row["labels"]
    ) or ('<span class="none">nothing found</span>' if row["labeled_after"] is not None else "")
    status = f'<span class="status {e(row["status"])}">{e(row["status"])}</span>'
    if row["last_error"] and row["status"] != Status.DONE.value:
        status += f'<div class="why">{e(row["last_error"])}</div>'
    cells = (
        thumb,
        e(row["camera"] or ""),
        labels,
        status,
        _time(row["arrived"]),
        _seconds(row["labeled_after"]),
        _seconds(row["finished_after"]),
        f'<a href="{e(row["id"])}">result</a>',
    )
    return _row(row["id"], cells)


def failure_html(row: dict[str, Any]) -> str:
    cells = (
        _time(row["failed"]),
        e(row["camera"] or ""),
        str(int(row["attempts"])),
        f'<span class="why">{e(row["reason"] or "")}</span>',
        f'<a href="{e(row["id"])}">result</a>',
    )
    return _row(row["id"], cells)


def worker_html(row: dict[str, Any]) -> str:
    cells = (
        e(row["host"]),
        str(int(row["pid"])),
        f'<span class="state {e(row["state"])}">{e(row["state"])}</span>',
        f"{float(row['seen_ago']):.0f} s ago",
        _time(row["started"]),
        str(int(row["done"])),
        str(int(row["in_flight"])),
    )
    return _row(None, cells)


def e(value: Any) -> str:
    """Text for HTML, quotes included (it also goes into attributes)."""
    return escape(str(value), quote=True)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{e(title)}</h2>{body}</section>"


def _table(name: str, heads: Iterable[str], rows: Iterable[str], empty: str) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in heads)
    body = "".join(rows)
    return (
        f'<table id="{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f'<p class="empty" id="{name}-empty"{"" if not body else " hidden"}>{e(empty)}</p>'
    )


def _row(row_id: str | None, cells: Iterable[str]) -> str:
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr data-id="{e(row_id)}">{tds}</tr>' if row_id else f"<tr>{tds}</tr>"


def _time(stamp: str | None) -> str:
    """An ISO time as the page shows it: 2026-11-23 12:19:19 (UTC), machine-readable inside."""
    if not stamp:
        return ""
    return f'<time datetime="{e(stamp)}">{e(stamp[:10])} {e(stamp[11:19])}</time>'


def _seconds(after: float | None) -> str:
    return "" if after is None else f'<span class="after">+{after:.2f} s</span>'
