"""Housekeeping: the queue's chores that no single task owns, run by every worker in turn.

    sweep   tasks whose lease ran out (their worker died or hung) back to the queue, or
            failed when out of attempts (owing a failure report, when reporting is on):
            every few seconds
    purge   finished tasks past retention, images whose task never appeared (a failed
            enqueue), done tasks' images and annotated pictures past their keep time and the
            heartbeats of workers gone a day; and events labeled before their label list was
            stored given it (the page's label filter): every hour

Each worker does both in a thread of its own (never between claims, so a long purge delays no
claim), so they go on while any worker runs; all are idempotent, so workers doing them at once
do no harm. A chore that fails stays due and is tried again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from pymongo.errors import ConnectionFailure, PyMongoError

from hook.store import TaskStore
from hook.task import Target

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0  # at most this between sweeps for expired leases (less with short leases)
PURGE_SECONDS = 3600.0  # between purges; also how old an orphan image must be to go
FORGET_WORKERS_SECONDS = 86400.0  # heartbeats of workers gone a day are dropped


class Housekeeper:
    """Runs the chores that are due; `clock` is wall time, `monotonic` paces the chores."""

    def __init__(
        self,
        store: TaskStore,
        *,
        lease_seconds: float,
        retention_seconds: float,
        max_attempts: int,
        keep_pictures_seconds: float,
        report: Sequence[Target] = (),
        report_attempts: int,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.clock, self.monotonic = store, clock, monotonic
        self.retention_seconds, self.max_attempts = retention_seconds, max_attempts
        self.keep_pictures_seconds = keep_pictures_seconds  # 0: pictures are off, and any left go
        self.report = tuple(report)  # what a task failed by the sweep owes (none: reporting off)
        self.report_attempts = report_attempts
        self.sweep_every = min(SWEEP_SECONDS, lease_seconds / 4)
        self.next_sweep = self.next_purge = 0.0  # both due at once

    def run(self, stopping: threading.Event) -> None:
        """Do the chores as they fall due until `stopping`; trouble is logged, never fatal."""
        tick = min(1.0, self.sweep_every)
        while not stopping.is_set():
            try:
                self.run_due()
            except ConnectionFailure as exc:  # the fetch thread says the outage; here, a line
                log.debug("housekeeping waits for MongoDB: %s", exc)
            except PyMongoError as exc:  # refused: it stays due, and must not go unseen
                log.warning("housekeeping: MongoDB refused a chore (%s); it is tried again", exc)
            except Exception:  # a bug in a chore must not end the others
                log.exception("housekeeping failed; it is tried again")
            stopping.wait(tick)

    def run_due(self) -> None:
        """Do the chores that are due; PyMongoError (or a bug) leaves them due."""
        now = self.monotonic()
        if now >= self.next_sweep:
            self.store.requeue_expired(self.max_attempts, self.report)
            # a dead sender's report comes back even where reporting is off now (it stays due
            # for a worker that sends, or is kept), never left "sending" for good
            self.store.requeue_expired_reports(self.report_attempts)
            self.next_sweep = now + self.sweep_every
        if now >= self.next_purge:
            self.purge()
            self.next_purge = now + PURGE_SECONDS

    def purge(self) -> tuple[int, int, int, int]:
        """Remove what is past keeping: (finished tasks, orphan images, old heartbeats, old
        pictures)."""
        now = self.clock()
        removed = self.store.purge(before=now - self.retention_seconds)
        orphans = self.store.purge_orphans(before=now - PURGE_SECONDS)
        forgotten = self.store.forget_workers(before=now - FORGET_WORKERS_SECONDS)
        # 0 turns pictures off: the images and pictures kept before go too, none is shown
        off = self.keep_pictures_seconds <= 0
        kept = self.store.drop_kept_images(before=math.inf if off else now)
        pictures = self.store.purge_pictures(before=now - self.keep_pictures_seconds)
        labeled = self.store.backfill_labels()  # events labeled before, for the label filter
        if labeled:
            log.info("%d event(s) labeled before given their label list", labeled)
        if removed or orphans or kept or pictures:
            log.info(
                "purged %d finished task(s) past retention, %d orphan image(s), the images "
                "of %d task(s) and %d picture(s) past keeping",
                removed,
                orphans,
                kept,
                pictures,
            )
        return removed, orphans, forgotten, pictures
