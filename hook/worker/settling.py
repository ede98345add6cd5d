"""Settling: what becomes of a job, decided and recorded in one place.

Every way a job leaves this worker's hands goes through the Settler: done (a delivery; recorded
in batches by hook.worker.completions), rescheduled with backoff, failed for good with the
reason, given back unstarted (a warm stop, a busy callback host), lost (the lease passed to
another claim), or left to its lease (MongoDB did not answer). The Settler counts it in the
metrics, writes the task's log line and then tells `finished`, once per job, which is how the
worker lets a job go. Every store call acts only while the job's claim holds the lease; a
lease lost, or MongoDB failing to record the settlement, leaves the task to its lease (it comes
back to the queue, and its stored labels are resent), never to a second attempt here: what may
have been delivered is not retried.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Concatenate, ParamSpec

from pymongo.errors import PyMongoError

from hook.callbacks.post import Outcome, Verdict
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Target
from hook.worker.completions import Completions
from hook.worker.job import Job

log = logging.getLogger(__name__)


class Settlement(StrEnum):
    """What settling came to: the one word `finished` is told of each job."""

    DONE = "done"
    RESCHEDULED = "rescheduled"
    FAILED = "failed"
    GIVEN_BACK = "given back"  # released unstarted, its attempt not counted
    LOST = "lost"  # the lease had passed to another claim: nothing written
    UNRECORDED = "unrecorded"  # MongoDB did not answer: the lease will bring the task back


Finished = Callable[[Job, Settlement], None]
P = ParamSpec("P")


def _guarded(
    settle: Callable[Concatenate[Settler, Job, P], None],
) -> Callable[Concatenate[Settler, Job, P], None]:
    """The one barrier: whatever goes wrong while settling, the job is let go (its lease
    brings the task back), so no job is held, and its lease renewed, for ever."""

    @functools.wraps(settle)
    def guarded(self: Settler, job: Job, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            settle(self, job, *args, **kwargs)
        except Exception:
            log.exception(
                "task %s: could not be settled; its lease will bring it back", job.task.id
            )
            job.settle()
            self._tell(job, Settlement.UNRECORDED)

    return guarded


def _nobody(job: Job, settlement: Settlement) -> None:
    """A Settler's `finished` when no one needs telling (tests, tools)."""


class Settler:
    """Settles jobs against the store with the retry policy, and tells `finished` of each."""

    def __init__(
        self,
        store: TaskStore,
        metrics: Metrics,
        policy: RetryPolicy,
        *,
        finished: Finished = _nobody,
        report: Sequence[Target] = (),
        batched: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.metrics, self.policy, self.clock = store, metrics, policy, clock
        self.finished = finished
        self.report = tuple(report)  # where a task failed for good is reported (none: off)
        # delivered jobs recorded done in batches (a thread, started and stopped with the
        # worker), or each at once
        self.completions = Completions(store, metrics, self._recorded) if batched else None

    @property
    def parts(self) -> tuple[Completions, ...]:
        """What runs beside the worker for the Settler (hook.worker.parts): the completions."""
        return (self.completions,) if self.completions else ()

    @_guarded
    def delivery(self, job: Job, outcome: Outcome) -> None:
        """A POST's outcome: delivered is done, refused fails, retry is retried with backoff."""
        if outcome.verdict is Verdict.DELIVERED:
            job.done_at = done = self.clock()  # the task's finish, not its batch's write
            self._count(job, outcome, "delivered")
            self.metrics.observe_latency(done - job.task.created_at)
            if job.infer_ms:  # 0: labels of an earlier try, resent
                images = max(1, len(job.task.images))
                self.metrics.observe_inference(job.infer_ms / 1000 / images, images)
            self.complete(job)
            return
        if outcome.verdict is Verdict.REFUSED:
            self._count(job, outcome, "refused")
            self.fail(job, outcome.reason)
            return
        gave_up = self.policy.exhausted(job.task.attempts)
        self._count(job, outcome, "gave_up" if gave_up else "retried")
        self.retry(job, outcome.reason, retry_after=outcome.retry_after)

    def _count(self, job: Job, outcome: Outcome, counted_as: str) -> None:
        """Counted overall and for the callback's host, with the POST's seconds."""
        self.metrics.delivery(job.task.callback_url, counted_as, outcome.elapsed, self.clock())

    @_guarded
    def complete(self, job: Job) -> None:
        """Done: with the next batch when batched (`finished` is told once it is written)."""
        job.settle()
        if self.completions is not None:
            self.completions.add(job)
            return
        if self._written(
            job,
            "delivered",
            lambda: self.store.complete(
                job.task.id, job.owner, keep_images=job.keep_images, finished_at=job.done_at
            ),
        ):
            self._recorded(job, True)

    @_guarded
    def _recorded(self, job: Job, done: bool | None) -> None:
        """A completion written (True), refused for a lost lease (False), or not written."""
        if done is None:
            self._tell(job, Settlement.UNRECORDED)
        elif done:
            done_line(job)
            self._tell(job, Settlement.DONE)
        else:
            self.lost(job)

    @_guarded
    def fail(self, job: Job, reason: str) -> None:
        """Failed for good with `reason` (a bad image, a refusal, attempts used up), owing a
        failure report when reporting is on (recorded in the same update)."""
        job.settle()
        task = job.task
        if not self._written(
            job, reason, lambda: self.store.fail(task.id, job.owner, reason, report=self.report)
        ):
            return
        log.warning(
            "task %s failed: camera=%r images=%d attempt %d: %s (%.0f ms)",
            task.id,
            task.camera,
            len(task.images),
            task.attempts,
            reason,
            _elapsed_ms(job),
        )
        self._tell(job, Settlement.FAILED)

    @_guarded
    def retry(self, job: Job, reason: str, *, retry_after: float | None = None) -> None:
        """The next attempt after the policy's delay (the receiver's Retry-After honoured up to
        its cap), or failed if attempts are used up."""
        task = job.task
        if self.policy.exhausted(task.attempts):
            self.fail(job, f"gave up after {task.attempts} attempts; last: {reason}")
            return
        job.settle()
        delay = self.policy.delay(task.attempts, retry_after)
        run_at = self.clock() + delay
        if not self._written(
            job, reason, lambda: self.store.reschedule(task.id, job.owner, run_at, reason)
        ):
            return
        log.warning(
            "task %s: attempt %d failed (%s); retry in %.1f s",
            task.id,
            task.attempts,
            reason,
            delay,
        )
        self._tell(job, Settlement.RESCHEDULED)

    @_guarded
    def crashed(self, job: Job, doing: str, exc: Exception) -> None:
        """An unexpected error (a bug, or trouble nothing else caught) while `doing` the job:
        logged with its traceback and the task id, and the task retried, saying so."""
        log.error("task %s: unexpected error while %s", job.task.id, doing, exc_info=exc)
        self.retry(job, f"unexpected error while {doing}: {type(exc).__name__}: {exc}")

    @_guarded
    def give_back(self, job: Job, why: str, *, after: float = 0.0) -> None:
        """Released unstarted, its attempt not counted: due again at once (another worker takes
        it), or `after` seconds from now. Stored labels are resent when it comes back."""
        job.settle()
        run_at = self.clock() + after if after else None
        if not self._written(
            job, f"given back ({why})", lambda: self.store.release(job.task.id, job.owner, run_at)
        ):
            return
        log.info(
            "task %s: given back (%s)%s",
            job.task.id,
            why,
            f"; due again in {after:.0f} s" if after else "",
        )
        self._tell(job, Settlement.GIVEN_BACK)

    @_guarded
    def lost(self, job: Job) -> None:
        """The lease passed to another claim (this worker was too slow, or MongoDB swept it):
        nothing more is written for this claim."""
        job.settle()
        log.warning("task %s: lease lost before it could be settled", job.task.id)
        self._tell(job, Settlement.LOST)

    def _written(self, job: Job, what: str, write: Callable[[], bool]) -> bool:
        """One store write for the job's claim; False when it was not made, the job then
        settled as such: its lease lost to another claim, or MongoDB not answering."""
        try:
            if write():
                return True
            self.lost(job)
        except PyMongoError as exc:
            self._unrecorded(job, what, exc)
        return False

    def _unrecorded(self, job: Job, what: str, exc: PyMongoError) -> None:
        log.warning(
            "task %s: %s, but MongoDB could not record it (%s); its lease will bring it back",
            job.task.id,
            what,
            type(exc).__name__,
        )
        self._tell(job, Settlement.UNRECORDED)

    def _tell(self, job: Job, settlement: Settlement) -> None:
        """Let the job go: `finished` is told once per job, whatever is settled after."""
        if job.let_go:
            log.error("task %s: settled %s after it was let go; ignored", job.task.id, settlement)
            return
        job.let_go = True
        try:
            self.finished(job, settlement)
        except Exception:  # the settlement stands; a bug in the listener must not undo it
            log.exception(
                "task %s: settled %s, but telling the worker failed", job.task.id, settlement
            )


def done_line(job: Job) -> None:
    """The log line of a task done: what was found, how fast."""
    task = job.task
    how = f"infer {job.infer_ms:.0f} ms" if job.infer_ms else "stored labels resent"
    log.info(
        "task %s done: camera=%r images=%d attempt %d, %s, claim-to-done %.0f ms; objects: %s",
        task.id,
        task.camera,
        len(task.images),
        task.attempts,
        how,
        _elapsed_ms(job),
        objects_summary(job.body),
    )


def objects_summary(body: str | None) -> str:
    """'car 2, person 1': objects found per label over all the task's images, for the log line."""
    counts: Counter[str] = Counter()
    for entry in json.loads(body or "{}").get("labels", {}).values():
        for label, found in entry.items():
            counts[label] += int(found.get("count", 1))
    return ", ".join(f"{label} {n}" for label, n in sorted(counts.items())) or "none"


def _elapsed_ms(job: Job) -> float:
    return (time.monotonic() - job.claimed) * 1000
