"""`retry`, `forget` and `show`: an operator's hands on single tasks, straight in MongoDB.

Like `status`, they read HOOK_MONGO_URI and HOOK_MONGO_DB (or the embedded server's address) and
never start the embedded MongoDB; with MongoDB down they say so in one line. They need no API
key and never print one: result URLs show `<api_key>` in its place.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo.errors import ConnectionFailure, PyMongoError

from hook.config.mongo import check_answering, connect, not_answering
from hook.config.settings import Settings
from hook.errors import HookError, NotFound
from hook.logs import configure
from hook.pictures.gallery import Gallery
from hook.result import result
from hook.store import TaskStore
from hook.store.operations import ForgetOutcome, Forgotten, Retried, RetryOutcome
from hook.task import Task

KEY = "<api_key>"  # stands for the key in the URLs `show` prints


def retry_command(args: argparse.Namespace) -> int:
    if args.failed == bool(args.task_ids):
        raise HookError("name the failed tasks to retry, or give --failed for all (not both)")
    with _store("hook-retry") as store:
        report = store.retry_failed(None if args.failed else args.task_ids)
    if args.failed:  # a count, and the ones that could not be: there may be thousands
        resent = sum(e.outcome is RetryOutcome.RESEND for e in report.entries)
        note = f" ({resent} to send their stored labels again: images gone)" if resent else ""
        print(f"requeued {report.requeued} failed task(s){note}")
        refused = [e for e in report.entries if e.outcome is RetryOutcome.IMAGES_GONE]
        for entry in refused:
            print(retry_line(entry))
        return 1 if refused else 0
    for entry in report.entries:
        print(retry_line(entry))
    return 0 if all(entry.requeued for entry in report.entries) else 1


def retry_line(entry: Retried) -> str:
    why = {
        RetryOutcome.REQUEUED: "requeued, to be labeled again",
        RetryOutcome.RESEND: "requeued, to send its stored labels again (its images are gone, "
        "so it cannot be labeled again)",
        RetryOutcome.NOT_FAILED: f"not retried: it is {entry.status}, not failed",
        RetryOutcome.UNKNOWN: "not retried: no such task",
        RetryOutcome.IMAGES_GONE: "not retried: its images are gone and it has no labels "
        "stored, so there is nothing to label or send",
    }
    return f"{entry.task_id}: {why[entry.outcome]}"


def forget_command(args: argparse.Namespace) -> int:
    with _store("hook-forget") as store:
        report = store.forget(args.task_ids, force=args.force)
    for entry in report.entries:
        print(forget_line(entry))
    return 0 if report.removed == len(report.entries) else 1


def forget_line(entry: Forgotten) -> str:
    if entry.outcome is ForgetOutcome.UNKNOWN:
        return f"{entry.task_id}: not removed: no such task"
    if entry.outcome is ForgetOutcome.RUNNING:
        return (
            f"{entry.task_id}: not removed: a worker ({entry.worker}) is on it and would "
            "still deliver its labels; --force removes it anyway"
        )
    line = f"{entry.task_id}: removed, with {entry.images} image(s) and {entry.pictures} picture(s)"
    if entry.worker:
        line += (
            f"; it was running on {entry.worker}, which now finds nothing to settle "
            "(a callback it had begun may still arrive)"
        )
    return line


def show_command(args: argparse.Namespace) -> int:
    with _store("hook-show") as store:
        task = store.get(args.task_id)
        if task is None:
            raise NotFound(f"no task {args.task_id!r}", field="task_id")
        gallery = Gallery(
            store, max_pixels=Settings.from_env(require_api_key=False).max_image_pixels
        )
        document = result(task, gallery.indexes(task), base=f"/tasks/{KEY}/{task.id}")
        saved = _save_pictures(gallery, task, args.save) if args.save else []
    if args.json:
        print(
            json.dumps(
                {**document, "saved": [str(p) for p in saved]} if args.save else document, indent=2
            )
        )
    else:
        print(describe(document))
        for path in saved:
            print(f"saved {path}")
    if args.save and not saved:
        print(f"hook show: {_no_pictures(document)}", file=sys.stderr)
        return 1
    return 0


def _save_pictures(gallery: Gallery, task: Task, folder: Path) -> list[Path]:
    """Write each annotated picture of the task as FOLDER/<task id>-<index>.jpg (drawn now,
    if nobody looked before)."""
    saved = []
    task_id = task.id
    for index in gallery.indexes(task):
        data = gallery.picture(task_id, index)
        if data is None:  # expired between the two reads
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{task_id}-{index}.jpg"
            path.write_bytes(data)
        except OSError as exc:
            raise HookError(f"cannot write into {folder}: {exc.strerror or exc}") from None
        saved.append(path)
    return saved


def _no_pictures(document: dict[str, Any]) -> str:
    if document["times"]["labeled"] is None:
        return "no annotated pictures to save: the task is not labeled yet (they show its labels)"
    return (
        "no annotated pictures to save: its images are not kept (with "
        "HOOK_KEEP_PICTURES_HOURS=0 none are; else they were older than that and removed)"
    )


def describe(document: dict[str, Any]) -> str:
    """The result document as lines for a person."""
    lines = [f"task {document['id']}: {document['status']}"]
    lines.append(f"  camera: {document['camera']!r}, user: {document['user_id']!r}")
    times = [f"{name} {at}" for name, at in document["times"].items() if at is not None]
    lines.append("  " + ", ".join(times).replace("next_run", "next run"))
    lines.append(f"  attempts: {document['attempts']}")
    if document["last_error"]:
        lines.append(f"  last error: {document['last_error']}")
    if document["history"]:
        lines.append("  earlier failures:")
        lines += [f"    {entry}" for entry in document["history"]]
    if report := document.get("report"):
        lines.append("  " + _report_line(report))
    labels = document["labels"]
    if labels is None:
        lines.append(f"  labels: {'none' if document['status'] == 'failed' else 'not made yet'}")
    for image in document["images"]:
        lines += _image_lines(image, labels, document["dropped"])
    return "\n".join(lines)


def _report_line(report: dict[str, Any]) -> str:
    """E.g. 'failure report: due after 1 attempt(s); next attempt ...; failure_url: ...'."""
    said = [f"failure report: {report['state']} after {report['attempts']} attempt(s)"]
    if report["delivered"]:
        said.append(f"sent to {', '.join(report['delivered'])}")
    if report["next_attempt_at"]:
        said.append(f"next attempt {report['next_attempt_at']}")
    if report["last_error"]:
        said.append(report["last_error"])
    return "; ".join(said)


def _image_lines(
    image: dict[str, Any], labels: dict[str, Any] | None, dropped: list[dict[str, Any]]
) -> list[str]:
    stamp = image["timestamp"]
    lines = [
        f"  image {image['index']}: {stamp}, {image['width']}x{image['height']} "
        f"{image['format']}, {_size(image['bytes'])}"
    ]
    if labels is not None:
        found = labels.get(stamp) or {}
        named = [_label(name, entry) for name, entry in found.items()]
        lines.append(f"    labels: {', '.join(named) if named else 'nothing found'}")
    gone = [
        f"{d['label']} {d['score']:.2f} ({d['why']})" for d in dropped if d["timestamp"] == stamp
    ]
    if gone:
        lines.append(f"    dropped by the rules: {', '.join(gone)}")
    lines.append(f"    picture: {image['picture'] or 'none kept'}")
    return lines


def _label(name: str, entry: dict[str, Any]) -> str:
    text = f"{name} {entry['probability']:.2f}"
    count = int(entry.get("count") or 1)
    if count > 1:
        scores = " ".join(f"{box['probability']:.2f}" for box in entry.get("boxes") or ())
        text += f" ({count} boxes: {scores})"
    return text


def _size(count: int) -> str:
    return f"{count} bytes" if count < 1024 else f"{count / 1024:.1f} KB"


@contextmanager
def _store(app_name: str) -> Iterator[TaskStore]:
    """A store on the configured MongoDB (never started here); its errors become one line."""
    settings = Settings.from_env(require_api_key=False)
    configure(settings.log_level)
    check_answering(settings)
    db = connect(settings, app_name=app_name, start_embedded=False)
    try:
        yield TaskStore(db)
    except ConnectionFailure:
        raise HookError(not_answering(settings)) from None
    except PyMongoError as exc:
        raise HookError(f"MongoDB refused: {type(exc).__name__}: {exc}") from None
    finally:
        db.client.close()
