"""Snapshots: a labeled job's annotated pictures, made from its decoded images and stored.

Made after the job left the delivery pool (delivered, retried or deferred), so drawing and
encoding never delay a callback, and from the pixels the worker decoded anyway: no second
inference, no original bytes kept. A picture that cannot be made or stored is logged and
skipped; it never fails its task.
"""

from __future__ import annotations

import logging

from pymongo.errors import PyMongoError

from hook.job import Job
from hook.pictures import annotate
from hook.store import TaskStore

log = logging.getLogger(__name__)


class Snapshots:
    """Pictures on (keep time above 0) or off; `take(job)` frees the job's images either way."""

    def __init__(self, store: TaskStore, *, enabled: bool) -> None:
        self.store, self.enabled = store, enabled

    def take(self, job: Job) -> int:
        """Store one picture per image of `job` that was labeled here; how many were stored."""
        made = 0
        try:
            if not self.enabled or not job.images or len(job.kept) != len(job.images):
                return 0
            for index, (image, box, kept) in enumerate(
                zip(job.images, job.boxes, job.kept, strict=True)
            ):
                self.store.save_picture(job.task.id, index, annotate(image, box.source, kept))
                made += 1
        except PyMongoError as exc:
            log.warning("task %s: its pictures were not stored: %s", job.task.id, exc)
        except Exception:  # a picture is a convenience: its trouble is logged, never the task's
            log.exception("task %s: its pictures could not be made", job.task.id)
        finally:
            job.pictured()
        return made
