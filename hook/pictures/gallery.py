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
from typing import Any

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


def draw(data: bytes, key: str, labels: str, max_pixels: int) -> bytes:
    """The picture of one image: decoded at the picture's size, its labels' boxes drawn.
    Pure CPU (Pillow lets the GIL go while it decodes and encodes); BadImage if it does not
    decode."""
    fit = (MAX_SIDE, MAX_SIDE)  # the picture's size, whichever way the image is turned
    image, size = decode_image(data, max_pixels=max_pixels, fit=fit)
    return annotate(image, size, detections_in(labels, key, size))


def here(fn: Callable[..., bytes], *args: Any) -> bytes:
    return fn(*args)


class Gallery:
    """Serves pictures from the store: the cached JPEG, or one drawn now and cached. `run`
    calls `draw` (the web hands it to a thread, off its event loop)."""

    def __init__(
        self,
        store: TaskStore,
        *,
        max_pixels: int,
        clock: Callable[[], float] = time.time,
        run: Callable[..., bytes] = here,
    ) -> None:
        self.store, self.max_pixels, self.clock, self.run = store, max_pixels, clock, run

    def indexes(self, task: Task) -> list[int]:
        return shown(task, self.clock())

    def latest(self, camera: str) -> tuple[Task, int] | None:
        """The camera's newest picture to show: its last labeled event's last image."""
        task = self.store.latest_of_camera(camera, self.clock())
        indexes = self.indexes(task) if task is not None else []
        return (task, indexes[-1]) if task is not None and indexes else None

    def picture(self, task_id: str, index: int) -> bytes | None:
        """Image `index`'s annotated JPEG; None when the task, its labels or the original
        are not there (never labeled, past keeping, forgotten). A picture drawn before is
        served only while the task shows it, and only if drawn from the labels it has now."""
        task = self.store.get(task_id)
        return None if task is None else self.picture_of(task, index)

    def picture_of(self, task: Task, index: int) -> bytes | None:
        """`picture` for a task already read (a camera's latest: no second read of it)."""
        task_id = task.id
        if index not in self.indexes(task) or task.result_json is None:
            return None
        cached = self.store.picture(task_id, index, labeled_at=task.labeled_at)
        if cached is not None:
            return cached
        data = self.store.original(task_id, index)
        if data is None:
            return None
        key = task.images[index].key
        try:
            jpeg = self.run(draw, data, key, task.result_json, self.max_pixels)
        except BadImage as exc:  # labeled, so it decoded once: say it, show none
            log.warning("task %s: image %d does not decode for a picture: %s", task_id, index, exc)
            return None
        try:
            self.store.save_picture(task_id, index, jpeg, task.labeled_at)
            if self.store.get(task_id) is None:  # forgotten meanwhile: keep nothing of it
                self.store.drop_pictures([task_id])
        except PyMongoError as exc:  # shown all the same; drawn again next time
            log.warning("task %s: picture %d not kept: %s", task_id, index, exc)
        return jpeg
