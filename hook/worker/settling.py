"""Settling a job: a delivery's outcome or an error in; complete, reschedule or fail out.

One place decides what becomes of a task after an attempt, counts it in the metrics and
writes the task's log line. Every store call acts only while the job's claim holds the lease;
a lease lost, or MongoDB failing to record the settlement, leaves the task to its lease (it
comes back to the queue, and its stored labels are resent), never to a second attempt here:
what may have been delivered is not retried.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError

from hook.callbacks.post import Outcome, Verdict
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Target
from hook.worker.job import Job

if TYPE_CHECKING:  # hook.worker.completions imports this module
    from hook.worker.completions import Completions

log = logging.getLogger(__name__)


class Settlement(StrEnum):
    """What settling came to."""

    DONE = "done"
    RESCHEDULED = "rescheduled"
    FAILED = "failed"
    PENDING = "pending"  # delivered; recorded done with the next batch (hook.worker.completions)
    LOST = "lost"  # the lease had passed to another claim: nothing written
    UNRECORDED = "unrecorded"  # MongoDB did not answer: the lease will bring the task back


class Settler:
    """Settles jobs against the store, with the retry policy; stateless between jobs."""

    def __init__(
        self,
        store: TaskStore,
        metrics: Metrics,
        policy: RetryPolicy,
        *,
        report: Sequence[Target] = (),
        completions: Completions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.metrics, self.policy, self.clock = store, metrics, policy, clock
        self.report = tuple(report)  # where a task failed for good is reported (none: off)
        self.completions = completions  # delivered jobs recorded done in batches, if given

    def delivery(self, job: Job, outcome: Outcome) -> Settlement:
        """A POST's outcome: delivered is done, refused fails, retry is retried with backoff."""
        if outcome.verdict is Verdict.DELIVERED:
            self._count(job, outcome, "delivered")
            self.metrics.observe_latency(self.clock() - job.task.created_at)
            return self.complete(job)
        if outcome.verdict is Verdict.REFUSED:
            self._count(job, outcome, "refused")
            return self.fail(job, outcome.reason)
        gave_up = self.policy.exhausted(job.task.attempts)
        self._count(job, outcome, "gave_up" if gave_up else "retried")
        return self.retry(job, outcome.reason, at_least=outcome.retry_after or 0.0)

    def _count(self, job: Job, outcome: Outcome, counted_as: str) -> None:
        """Counted overall and for the callback's host, with the POST's seconds."""
        self.metrics.delivery(job.task.callback_url, counted_as, outcome.elapsed, self.clock())

    def complete(self, job: Job) -> Settlement:
        """Done; PENDING when completions are batched (their `finished` is told later)."""
        job.settle()
        if self.completions is not None:
            self.completions.add(job)
            return Settlement.PENDING
        try:
            if not self.store.complete(job.task.id, job.owner):
                return self._lost(job)
        except PyMongoError as exc:
            return self._unrecorded(job, "delivered", exc)
        done_line(job)
        return Settlement.DONE

    def fail(self, job: Job, reason: str) -> Settlement:
        """Failed for good with `reason` (a bad image, a refusal, attempts used up), owing a
        failure report when reporting is on (recorded in the same update)."""
        job.settle()
        task = job.task
        try:
            if not self.store.fail(task.id, job.owner, reason, report=self.report):
                return self._lost(job)
        except PyMongoError as exc:
            return self._unrecorded(job, reason, exc)
        log.warning("task %s failed: camera=%r images=%d attempt %d: %s (%.0f ms)", task.id,
                    task.camera, len(task.images), task.attempts, reason,
                    _elapsed_ms(job))  # fmt: skip
        return Settlement.FAILED

    def retry(self, job: Job, reason: str, *, at_least: float = 0.0) -> Settlement:
        """The next attempt after the policy's backoff, or failed if attempts are used up.

        `at_least` is the callback's own Retry-After, honoured up to the policy's cap.
        """
        task = job.task
        if self.policy.exhausted(task.attempts):
            return self.fail(job, f"gave up after {task.attempts} attempts; last: {reason}")
        job.settle()
        delay = max(self.policy.next_delay(task.attempts), min(at_least, self.policy.cap))
        try:
            if not self.store.reschedule(task.id, job.owner, self.clock() + delay, reason):
                return self._lost(job)
        except PyMongoError as exc:
            return self._unrecorded(job, reason, exc)
        log.warning("task %s: attempt %d failed (%s); retry in %.1f s", task.id, task.attempts,
                    reason, delay)  # fmt: skip
        return Settlement.RESCHEDULED

    def _lost(self, job: Job) -> Settlement:
        lost_line(job)
        return Settlement.LOST

    def _unrecorded(self, job: Job, what: str, exc: PyMongoError) -> Settlement:
        log.warning("task %s: %s, but MongoDB could not record it (%s); its lease will bring "
                    "it back", job.task.id, what, type(exc).__name__)  # fmt: skip
        return Settlement.UNRECORDED


def done_line(job: Job) -> None:
    """The log line of a task done: what was found, how fast."""
    task = job.task
    how = f"infer {job.infer_ms:.0f} ms" if job.infer_ms else "stored labels resent"
    log.info("task %s done: camera=%r images=%d attempt %d, %s, claim-to-done %.0f ms; "
             "objects: %s", task.id, task.camera, len(task.images), task.attempts, how,
             _elapsed_ms(job), objects_summary(job.body))  # fmt: skip


def lost_line(job: Job) -> None:
    log.warning("task %s: lease lost before it could be settled", job.task.id)


def objects_summary(body: str | None) -> str:
    """'car 2, person 1': objects found per label over all the task's images, for the log line."""
    counts: Counter[str] = Counter()
    for entry in json.loads(body or "{}").get("labels", {}).values():
        for label, found in entry.items():
            counts[label] += int(found.get("count", 1))
    return ", ".join(f"{label} {n}" for label, n in sorted(counts.items())) or "none"


def _elapsed_ms(job: Job) -> float:
    return (time.monotonic() - job.claimed) * 1000
