"""Snapshots: a labeled job's annotated pictures, made from its decoded images and stored.

Taken the moment the labels are stored, before the POST: a thread of its own draws and
encodes them while the detector goes on and the callback is under way, so pictures never delay
labeling or delivery, and a job lost later (a crash, a lease gone) still has them. They come
from the pixels the worker decoded anyway: no second inference, no original bytes kept. At most
BACKLOG jobs' images wait; past that the labeling thread waits too, so memory stays bounded.
A picture that cannot be made or stored is logged and skipped; it never fails its task.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image
from pymongo.errors import PyMongoError

from hook.detector import Detection
from hook.job import Job
from hook.pictures import annotate
from hook.store import TaskStore

log = logging.getLogger(__name__)

BACKLOG = 4  # jobs whose pictures may wait to be made


@dataclass(frozen=True)
class Sitting:
    """One job's pictures to make: the decoded images, their full sizes, what was delivered."""

    task_id: str
    images: list[Image.Image]
    sources: list[tuple[int, int]]
    kept: list[list[Detection]]


class Snapshots:
    """Pictures on (keep time above 0) or off; `take(job)` frees the job's images either way."""

    def __init__(self, store: TaskStore, *, enabled: bool) -> None:
        self.store, self.enabled = store, enabled
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="pictures")
        self.room = threading.BoundedSemaphore(BACKLOG)

    def take(self, job: Job) -> None:
        """Queue the pictures of a job labeled here; frees its images from the job at once."""
        if self.enabled and job.images and len(job.kept) == len(job.images):
            sitting = Sitting(job.task.id, job.images, [b.source for b in job.boxes], job.kept)
            self.room.acquire()
            self.pool.submit(self._make, sitting)
        job.pictured()

    def close(self) -> None:
        """Wait for the pictures queued so far."""
        self.pool.shutdown(wait=True)

    def _make(self, sitting: Sitting) -> int:
        made = 0
        try:
            for index, (image, source, kept) in enumerate(
                zip(sitting.images, sitting.sources, sitting.kept, strict=True)
            ):
                self.store.save_picture(sitting.task_id, index, annotate(image, source, kept))
                made += 1
            if made and self.store.get(sitting.task_id) is None:  # forgotten meanwhile
                self.store.drop_pictures([sitting.task_id])
                made = 0
        except PyMongoError as exc:
            log.warning("task %s: its pictures were not stored: %s", sitting.task_id, exc)
        except Exception:  # a picture is a convenience: its trouble is logged, never the task's
            log.exception("task %s: its pictures could not be made", sitting.task_id)
        finally:
            self.room.release()
        return made
