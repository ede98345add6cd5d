"""A task's result as people look at it: the API's GET /tasks/<key>/<id> and `hook show`.

The labels are the very body Camio is sent (or will be: they are stored before the first POST),
so what a person sees here is what the receiver got.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from hook.task import Status, Task, iso


def result(task: Task, pictures: Collection[int], base: str) -> dict[str, Any]:
    """The result document; `base` is the task's URL path, under which its pictures are.

    `pictures` holds the indexes of the images whose annotated picture is kept: the others
    get no URL (not made yet, turned off, or past HOOK_KEEP_PICTURES_HOURS).
    """
    body = json.loads(task.result_json) if task.result_json else None
    return {
        "id": task.id,
        "status": task.status.value,
        "camera": task.camera,
        "user_id": task.user_id,
        "attempts": task.attempts,
        "times": {
            "arrived": iso(task.created_at),
            "labeled": iso(task.labeled_at),
            "delivered": iso(task.finished_at) if task.status is Status.DONE else None,
            "failed": iso(task.finished_at) if task.status is Status.FAILED else None,
            "next_run": iso(task.run_at) if task.status is Status.QUEUED else None,
        },
        "last_error": task.last_error,
        "history": list(task.history),
        "report": task.report.summary() if task.report else None,  # the failure report's state
        "labels": body["labels"] if body else None,
        "dropped": [
            {"timestamp": d.key, "label": d.label, "score": d.score, "why": d.why}
            for d in task.dropped
        ],
        "images": [
            {
                "index": index,
                "timestamp": image.key,
                "width": image.width,
                "height": image.height,
                "format": image.format,
                "bytes": image.bytes,
                "picture": f"{base}/images/{index}.jpg" if index in pictures else None,
            }
            for index, image in enumerate(task.images)
        ],
    }
