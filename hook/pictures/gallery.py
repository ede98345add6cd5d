"""Gallery: a task's annotated pictures, drawn the first time someone asks and kept for the next.

Pictures used to be drawn and encoded by the worker for every image, costing labeling ~4 ms of
CPU an image (and a larger decode) for a picture few people open. Now the event's original
images stay for HOOK_KEEP_PICTURES_HOURS after labeling (the task's `pictures_until`) and the
stored labels hold every box, so the first look decodes the original at the picture's size,
draws the boxes and stores the JPEG; later looks read it (bench/pictures.py measures both).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pymongo.errors import PyMongoError

from hook.callbacks.labels import detections_in
from hook.errors import BadImage
from hook.intake.images import decode_image
from hook.pictures.drawing import MAX_SIDE, annotate
from hook.store import TaskStore
from hook.task import Task

log = logging.getLogger(__name__)


def shown(task: Task, now: float) -> list[int]:
    """The indexes of the task's images that have a picture to show at `now`: all of a
    labeled task while its originals are kept, none otherwise."""
    until = task.pictures_until
    if task.result_json is None or until is None or until <= now:
        return []
    return list(range(len(task.images)))


class Gallery:
    """Serves pictures from the store: the cached JPEG, or one drawn now and cached."""

    def __init__(
        self, store: TaskStore, *, max_pixels: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.max_pixels, self.clock = store, max_pixels, clock

    def indexes(self, task: Task) -> list[int]:
        return shown(task, self.clock())

    def picture(self, task_id: str, index: int) -> bytes | None:
        """Image `index`'s annotated JPEG; None when the task, its labels or the original
        are not there (never labeled, past keeping, forgotten)."""
        cached = self.store.picture(task_id, index)
        if cached is not None:
            return cached
        task = self.store.get(task_id)
        if task is None or index not in self.indexes(task):
            return None
        data = self.store.original(task_id, index)
        if data is None or task.result_json is None:
            return None
        meta = task.images[index]
        try:
            image, size = decode_image(data, max_pixels=self.max_pixels, fit=(MAX_SIDE, MAX_SIDE))
        except BadImage as exc:  # labeled, so it decoded once: say it, show none
            log.warning("task %s: image %d does not decode for a picture: %s", task_id, index, exc)
            return None
        jpeg = annotate(image, size, detections_in(task.result_json, meta.key, size))
        try:
            self.store.save_picture(task_id, index, jpeg)
        except PyMongoError as exc:  # shown all the same; drawn again next time
            log.warning("task %s: picture %d not kept: %s", task_id, index, exc)
        return jpeg
