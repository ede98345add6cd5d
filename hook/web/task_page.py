"""One event's page, GET /tasks/<api_key>/<task_id>/view: its pictures large, what was found in
each, its times, attempts, history, the rules' drops, the delivery and the failure report.

`task_data` is built from the result document (hook.result, what the JSON result and `hook
show` say) and the task it came from, read once; `render_task` is it as HTML. Links are
relative to the page (/tasks/<api_key>/<task_id>/): pictures under images/, the style sheet
and script one folder up, so the key is in no page.
"""

from __future__ import annotations

from typing import Any

from hook.task import Status, Task, iso
from hook.web.html import action, e, label_chips, page, seconds, section, time
from hook.web.view import after, summed


def task_data(task: Task, document: dict[str, Any], *, can_act: bool) -> dict[str, Any]:
    """The page's data: `document` is result(task, ..., base=".") for this very task."""
    labels = document["labels"]

    def found_in(stamp: str) -> list[dict[str, Any]] | None:
        return None if labels is None else summed([labels.get(stamp) or {}])

    return {
        "id": task.id,
        "camera": task.camera,
        "status": task.status.value,
        "attempts": task.attempts,
        "times": {
            "arrived": iso(task.created_at),
            "labeled": iso(task.labeled_at),
            "labeled_after": after(task.created_at, task.labeled_at),
            "finished": iso(task.finished_at),
            "finished_after": after(task.created_at, task.finished_at),
            "next_run": document["times"]["next_run"],
        },
        "delivery": delivery(task),
        "last_error": task.last_error,
        "history": document["history"],
        "report": document["report"],
        "images": [
            {
                **image,
                "labels": found_in(image["timestamp"]),
                "dropped": [d for d in document["dropped"] if d["timestamp"] == image["timestamp"]],
            }
            for image in document["images"]
        ],
        "can_act": can_act,
    }


def delivery(task: Task) -> str:
    """The callback's outcome in words."""
    if task.status is Status.DONE:
        return "delivered: the callback took the labels"
    if task.status is Status.FAILED:
        return f"failed for good after {task.attempts} attempt(s)"
    if task.status is Status.RUNNING:
        return f"a worker is on it (attempt {task.attempts})"
    if task.attempts:
        return f"waiting for attempt {task.attempts + 1} (the last one failed)"
    return "queued: not tried yet"


def render_task(data: dict[str, Any]) -> str:
    """The whole page for `data` (from task_data)."""
    status = data["status"]
    title = f"{data['camera'] or 'an event'}: {status}"
    actions = ""
    if data["can_act"]:
        retry = action("retry", "retry", "label it again") if status == "failed" else ""
        actions = f'<div class="actions">{retry}{action("forget", "forget", "remove it")}</div>'
    body = (
        '<body class="task"><header><h1><a href="../view">hook</a></h1>'
        '<p class="asof"><a href="../view">&larr; all events</a> '
        f'<a href="../{e(data["id"])}">JSON</a></p></header><main>'
        f'<h2 class="title">{e(data["camera"] or "(no camera)")} '
        f'<span class="status {e(status)}">{e(status)}</span></h2>{actions}'
        + facts(data)
        + section(
            "Pictures", f'<div class="images">{"".join(map(image_html, data["images"]))}</div>'
        )
        + report_html(data["report"])
        + history_html(data["history"])
        + "</main></body>"
    )
    return page(f"hook: {title}", "../", body)


def facts(data: dict[str, Any]) -> str:
    times = data["times"]
    rows = [
        ("event", f"<code>{e(data['id'])}</code>"),
        ("camera", e(data["camera"] or "")),
        ("arrived", time(times["arrived"])),
        ("labeled", f"{time(times['labeled'])} {seconds(times['labeled_after'])}".strip()),
        ("finished", f"{time(times['finished'])} {seconds(times['finished_after'])}".strip()),
        ("next attempt", time(times["next_run"])),
        ("attempts", str(int(data["attempts"]))),
        ("delivery", e(data["delivery"])),
        ("last error", why(data["last_error"])),
    ]
    return fact_list(rows)


def image_html(image: dict[str, Any]) -> str:
    picture = (
        f'<a href="{e(image["picture"])}"><img class="picture" src="{e(image["picture"])}" '
        f'alt="image {int(image["index"])}, annotated" width="{int(image["width"])}" '
        f'height="{int(image["height"])}"></a>'
        if image["picture"]
        else '<p class="none nopicture">no picture kept (not labeled yet, pictures off, or '
        "past HOOK_KEEP_PICTURES_HOURS)</p>"
    )
    labels = image["labels"]
    if labels is None:
        found = '<span class="none">not labeled</span>'
    else:
        boxes = sum(int(found["count"]) for found in labels)
        found = (label_chips(labels) or '<span class="none">nothing found</span>') + (
            f' <span class="boxes">{boxes} box{"es" if boxes != 1 else ""}</span>'
        )
    dropped = "".join(
        f"<li>{e(d['label'])} {float(d['score']):.2f}: {e(d['why'])}</li>" for d in image["dropped"]
    )
    dropped_html = (
        f'<div class="dropped">dropped by the rules:<ul>{dropped}</ul></div>' if dropped else ""
    )
    return (
        f'<figure class="image">{picture}<figcaption>'
        f'<div class="stamp">image {int(image["index"])}: {e(image["timestamp"])}, '
        f"{int(image['width'])}&times;{int(image['height'])} {e(image['format'])}</div>"
        f'<div class="found">{found}</div>{dropped_html}</figcaption></figure>'
    )


def report_html(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    rows = [
        ("state", f'<span class="report {e(report["state"])}">{e(report["state"])}</span>'),
        ("attempts", str(int(report["attempts"]))),
        ("sent to", e(", ".join(report["delivered"]))),
        ("still owed to", e(", ".join(report["pending"]))),
        ("next attempt", time(report["next_attempt_at"])),
        ("settled", time(report["settled_at"])),
        ("last error", why(report["last_error"])),
    ]
    return section("Failure report", fact_list(rows))


def fact_list(rows: list[tuple[str, str]]) -> str:
    """Name and value pairs as a definition list, leaving out those with nothing to show."""
    shown = "".join(f"<dt>{e(name)}</dt><dd>{value}</dd>" for name, value in rows if value)
    return f'<dl class="facts">{shown}</dl>'


def why(error: str | None) -> str:
    """An error's text, marked as a reason; nothing when there is none."""
    return f'<span class="why">{e(error)}</span>' if error else ""


def history_html(history: list[str]) -> str:
    if not history:
        return ""
    items = "".join(f'<li class="why">{e(entry)}</li>' for entry in history)
    return section("Earlier failures", f'<ol class="history">{items}</ol>')
