"""Pictures: a labeled job's annotated pictures, made from its decoded images and stored.

Taken the moment the labels are stored, before the POST: a thread of its own draws and
encodes them while the detector goes on and the callback is under way, so pictures never delay
labeling or delivery, and a job lost later (a crash, a lease gone) still has them. They come
from the pixels the worker decoded anyway: no second inference, no original bytes kept. At most
BACKLOG jobs' images wait; past that the labeling thread waits too, so memory stays bounded.
The encoded JPEGs are stored in batches (one round trip for those of WINDOW seconds, and one
to drop those of tasks forgotten meanwhile). A picture that cannot be made or stored is
logged and skipped; it never fails its task.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from PIL import Image
from pymongo.errors import PyMongoError

from hook.detect.detection import Detection
from hook.store import TaskStore
from hook.worker.drawing import annotate
from hook.worker.job import Job

log = logging.getLogger(__name__)

BACKLOG = 4  # jobs whose pictures may wait to be made
WINDOW = 0.5  # seconds the first picture made waits for others to share its round trip
BATCH = 32  # pictures that go at once


@dataclass(frozen=True)
class Unmade:
    """One job's pictures to make: the decoded images, their full sizes, what was delivered."""

    task_id: str
    images: list[Image.Image]
    sources: list[tuple[int, int]]
    kept: list[list[Detection]]


class PictureMaker:
    """Makes the pictures, on (keep time above 0) or off; `take(job)` frees the job's images
    either way."""

    name = "pictures"

    def __init__(self, store: TaskStore, *, enabled: bool, window: float = WINDOW) -> None:
        self.store, self.enabled, self.window = store, enabled, window
        self.waiting: queue.Queue[Unmade | None] = queue.Queue()
        self.room = threading.BoundedSemaphore(BACKLOG)
        self.thread = threading.Thread(target=self._run, name="pictures", daemon=True)

    def start(self) -> None:
        if self.enabled:
            self.thread.start()

    def take(self, job: Job) -> None:
        """Queue the pictures of a job labeled here; frees its images from the job at once."""
        if self.enabled and job.images and len(job.kept) == len(job.images):
            unmade = Unmade(job.task.id, job.images, [b.source for b in job.boxes], job.kept)
            self.room.acquire()
            self.waiting.put(unmade)
        job.pictured()

    def stop(self) -> None:
        """Make and store the pictures queued so far, then end the thread."""
        if self.enabled:
            self.waiting.put(None)
            self.thread.join()

    def _run(self) -> None:
        made: list[tuple[str, int, bytes]] = []
        deadline = 0.0
        while True:
            try:
                wait = max(0.0, deadline - time.monotonic()) if made else None
                unmade = self.waiting.get(timeout=wait)
            except queue.Empty:  # the window is over: store what was made
                made = self._store(made)
                continue
            if unmade is None:
                self._store(made)
                return
            if not made:
                deadline = time.monotonic() + self.window
            made.extend(self._make(unmade))
            if len(made) >= BATCH or time.monotonic() >= deadline:
                made = self._store(made)

    def _make(self, unmade: Unmade) -> list[tuple[str, int, bytes]]:
        try:
            return [
                (unmade.task_id, index, annotate(image, source, kept))
                for index, (image, source, kept) in enumerate(
                    zip(unmade.images, unmade.sources, unmade.kept, strict=True)
                )
            ]
        except Exception:  # a picture is a convenience: its trouble is logged, never the task's
            log.exception("task %s: its pictures could not be made", unmade.task_id)
            return []
        finally:
            self.room.release()

    def _store(self, made: list[tuple[str, int, bytes]]) -> list[tuple[str, int, bytes]]:
        """Store the pictures made; drop those of tasks forgotten meanwhile. [] for the next."""
        if not made:
            return []
        tasks = sorted({task_id for task_id, _, _ in made})
        try:
            self.store.save_pictures(made)
            gone = set(tasks) - self.store.existing(tasks)
            if gone:
                self.store.drop_pictures(sorted(gone))
        except PyMongoError as exc:
            log.warning("tasks %s: their pictures were not stored: %s", ", ".join(tasks), exc)
        except Exception:  # a bug must not end the thread: a picture is a convenience
            log.exception("tasks %s: their pictures could not be stored", ", ".join(tasks))
        return []
