"""Completions: delivered jobs recorded done in batches, one bulk update (and one delete) each.

A delivered task is as good as done: its labels went out. Recording that can wait a moment and
share its round trips with the other deliveries of that moment: the batch is written WINDOW
seconds after its first job, or at once when BATCH jobs wait. Should the worker die in
between, the task's lease brings it back and its stored labels are resent (the same
webhook-id): delivered at least once, never lost. The worker's buffered metrics are written
every FLUSH_SECONDS, and at the end.

It only writes: the Settler (hook.worker.settling) owns it and is told what each write came to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pymongo.errors import PyMongoError

from hook.metrics.recorder import Metrics
from hook.store import TaskStore
from hook.worker.job import Job

log = logging.getLogger(__name__)

WINDOW = 0.5  # seconds a delivered job waits for others to share its batch
BATCH = 32  # jobs that make a batch go at once
FLUSH_SECONDS = 1.0  # buffered metrics are written at least this often
RETRY_SECONDS = 1.0  # a batch MongoDB did not take is tried again after this


Recorded = Callable[[Job, "bool | None"], None]  # done, lease lost, or not written


class Completions:
    """A thread that completes delivered jobs in batches, then tells `recorded` of each: True
    (done), False (its lease had passed to another claim) or None (not written: its lease
    brings the task back)."""

    name = "completions"

    def __init__(
        self, store: TaskStore, metrics: Metrics, recorded: Recorded, *, window: float = WINDOW
    ) -> None:
        self.store, self.metrics, self.recorded, self.window = store, metrics, recorded, window
        self.waiting: list[Job] = []
        self.changed = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="completions", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def add(self, job: Job) -> None:
        """A delivered job, to be recorded done with the next batch (once stopping: not at
        all, its lease brings the task back and its stored labels are resent)."""
        with self.changed:
            if not self.closing:
                self.waiting.append(job)
                self.changed.notify()
                return
        self._tell(job, None)

    def stop(self) -> None:
        """Record what waits, then end the thread (after the deliveries have ended)."""
        with self.changed:
            self.closing = True
            self.changed.notify()
        self.thread.join()

    def _run(self) -> None:
        flushed = time.monotonic()
        while (batch := self._next_batch()) is not None:
            if batch:
                try:
                    written = self._complete(batch)
                except Exception:  # a bug must not end the thread: the leases bring tasks back
                    log.exception("completions: a batch of %d could not be recorded", len(batch))
                    written = [None] * len(batch)
                for job, done in zip(batch, written, strict=True):
                    self._tell(job, done)  # each job once, whatever came of the others
            if time.monotonic() - flushed >= FLUSH_SECONDS:
                self._flush()
                flushed = time.monotonic()
        self._flush()

    def _tell(self, job: Job, done: bool | None) -> None:
        try:
            self.recorded(job, done)
        except Exception:
            log.exception("task %s: recorded, but telling the Settler failed", job.task.id)

    def _flush(self) -> None:
        try:
            self.metrics.flush()
        except Exception:  # the figures wait for the next flush; the completions go on
            log.exception("completions: the buffered metrics could not be written")

    def _next_batch(self) -> list[Job] | None:
        """The jobs of the next batch; [] after FLUSH_SECONDS without one; None once closed."""
        with self.changed:
            if not self.waiting and not self.closing:
                self.changed.wait(FLUSH_SECONDS)
            if not self.waiting:
                return None if self.closing else []
            deadline = time.monotonic() + self.window
            while len(self.waiting) < BATCH and not self.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            batch, self.waiting = self.waiting, []
            return batch

    def _complete(self, batch: list[Job]) -> list[bool | None]:
        """Record the batch done, and say per job: done, its lease lost, or not written. While
        MongoDB does not answer, try again every RETRY_SECONDS (the jobs are still held, so
        their leases are renewed once it answers) until closing, when the leases are left to
        bring the tasks back."""
        claims = [
            (job.task.id, job.owner, 0 if job.keep_images else len(job.task.images), job.done_at)
            for job in batch
        ]
        while True:
            try:
                completed = self.store.complete_many(claims)
                break
            except PyMongoError as exc:
                with self.changed:
                    closing = self.closing or self.changed.wait_for(
                        lambda: self.closing, RETRY_SECONDS
                    )
                if closing:
                    log.warning(
                        "%d delivered task(s) could not be recorded done (%s); their "
                        "leases will bring them back",
                        len(batch),
                        type(exc).__name__,
                    )
                    return [None] * len(batch)
                log.warning(
                    "%d delivered task(s) not recorded done yet (%s); trying again",
                    len(batch),
                    type(exc).__name__,
                )
        return [(job.task.id, job.owner) in completed for job in batch]
