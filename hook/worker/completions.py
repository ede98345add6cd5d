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
        """A delivered job, to be recorded done with the next batch."""
        with self.changed:
            self.waiting.append(job)
            self.changed.notify()

    def stop(self) -> None:
        """Record what waits, then end the thread (after the deliveries have ended)."""
        with self.changed:
            self.closing = True
            self.changed.notify()
        self.thread.join()

    def _run(self) -> None:
        flushed = time.monotonic()
        while (batch := self._next_batch()) is not None:
            try:
                if batch:
                    self._complete(batch)
                if time.monotonic() - flushed >= FLUSH_SECONDS:
                    self.metrics.flush()
                    flushed = time.monotonic()
            except Exception:  # a bug must not end the thread: the leases bring tasks back
                log.exception("completions: a batch of %d could not be settled", len(batch))
                for job in batch:
                    self.recorded(job, None)
        self.metrics.flush()

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

    def _complete(self, batch: list[Job]) -> None:
        """Record the batch done; while MongoDB does not answer, try again every RETRY_SECONDS
        (the jobs are still held, so their leases are renewed once it answers) until closing,
        when the leases are left to bring the tasks back."""
        claims = [(job.task.id, job.owner, len(job.task.images)) for job in batch]
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
                    for job in batch:
                        self.recorded(job, None)
                    return
                log.warning(
                    "%d delivered task(s) not recorded done yet (%s); trying again",
                    len(batch),
                    type(exc).__name__,
                )
        for job in batch:
            self.recorded(job, (job.task.id, job.owner) in completed)
