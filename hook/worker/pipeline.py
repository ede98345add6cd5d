"""Worker: claimed tasks in, Camio labels out at their callback_url.

Three stages overlap, so the detectors are busy while the rest waits on I/O or decodes:

    fetch thread   claim due tasks, read their images' bytes (one query a batch) -> ready queue
    lane threads   decode and letterbox, run a detector, build the labels,
                   store them with the task                                  -> delivery pool
    delivery pool  POST to callback_url; done, retry later, or failed with the reason

Each lane has detectors (model sessions) of its own, so lanes label different tasks side by
side: on a CPU, one single-threaded session per core does more images a second than one
session spread over the cores (`lanes` plans how many). A lane may take the images of several
ready tasks in one run (`batch_images`), which a GPU wants.

A job's stage (`job`) says where it is; one settled early (a bad image, a lease lost, an
unexpected error) leaves the pipeline where that happened and takes no delivery slot. Loading
is `loading`'s, a lane's run `labeling`'s, the pool `delivery`'s; what becomes of a job is
`settling`'s alone (delivered jobs recorded done in batches by `completions`); the queue's
chores are `housekeeping`'s, failure reports `reporting`'s (a thread of their own, so
labeling never waits on them).

MongoDB round trips are what a busy worker spends besides the model: CLAIM_BATCH due tasks are
claimed in one go and their images read in one query, completions and counters are written in
batches (bench/worker.py counts the round trips per task). Labeling draws no pictures: the
images stay a while and the web draws a picture when someone looks (hook.pictures).

An idle worker waits for a ring (hook.wakeup: the web's datagram the moment it stores a task,
or hook.worker.change_feed's change stream where MongoDB has one) and polls MongoDB as the fallback.

Every task in flight is leased to this worker; a keeper thread renews the leases while they
last, so a long task is not taken by another worker, and a dead worker's tasks return to the
queue when their leases run out. Labels are stored before the first POST, so every retry (by
this worker or another) sends the very same labels.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from pymongo.errors import PyMongoError

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import session as callback_session
from hook.detect.detection import Detects
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.store.round_trips import RoundTrips
from hook.wakeup import WakeUp
from hook.worker.change_feed import ChangeFeed
from hook.worker.delivery import DeliveryPool
from hook.worker.housekeeping import Housekeeper
from hook.worker.job import Job, Stage
from hook.worker.labeling import Labeler
from hook.worker.leases import Holding, LeaseKeeper
from hook.worker.loading import Loader
from hook.worker.parts import Loop, Parts
from hook.worker.reporting import ReportConfig, Reporter
from hook.worker.settling import Settlement, Settler

log = logging.getLogger(__name__)

IDLE_FIRST, IDLE_MAX = 0.01, 0.25  # idle polling: from 10 ms, doubling, up to 250 ms
READY_PER_LANE = 2  # read tasks waiting for a lane, per lane
CLAIM_BATCH = 4  # tasks claimed (and their images read) in one go, when that many are due


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs from settings (hook.worker.main builds it; nothing here has a
    default of its own but the extra headers, which are none unless set)."""

    lease_seconds: float
    callback_timeout: float
    retention_seconds: float
    max_image_pixels: int
    policy: RetryPolicy
    hosts: HostAllowList
    keep_pictures_seconds: float  # how long a labeled task's images stay for its pictures (0: off)
    reports: ReportConfig  # failure reports (off when it owes none)
    batch_images: int  # most images of ready tasks a lane runs together (1: a task a run)
    outbound: Outbound = field(default_factory=Outbound)  # headers beside each callback's body


class Worker:
    """One worker process's loop; `run()` returns after `stop()` once its tasks are settled."""

    def __init__(
        self,
        store: TaskStore,
        detectors: Sequence[Detects],
        config: WorkerConfig,
        *,
        http: requests.Session | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        rules: RulesFile | None = None,
        round_trips: RoundTrips | None = None,
        wake: WakeUp | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not detectors:
            raise ValueError("a worker needs a detector for each lane, and one lane at least")
        self.store, self.lanes, self.config = store, tuple(detectors), config
        reports = config.reports
        self.rules = rules or RulesFile.open(None)
        self.round_trips = round_trips
        self.wake = wake or WakeUp(None, None)  # rung by the web, the change feed and stop()
        self.http = http or callback_session()
        self.metrics = metrics or Metrics(store, buffered=True)
        self.settler = Settler(
            store,
            self.metrics,
            config.policy,
            finished=self._let_go,
            report=reports.targets,
            batched=True,
            clock=clock,
        )
        self.loader = Loader(  # one lane: decoded beside its runs, by the fetch thread
            store,
            self.settler,
            self.lanes[0],
            max_pixels=config.max_image_pixels,
            decode_on_read=len(self.lanes) == 1,
        )
        self.labeler = Labeler(
            store, self.settler, self.rules, keep_pictures_seconds=config.keep_pictures_seconds
        )
        self.deliveries = DeliveryPool(
            store,
            self.settler,
            self.http,
            hosts=config.hosts,
            timeout=config.callback_timeout,
            outbound=config.outbound,
            clock=clock,
        )
        self.housekeeper = housekeeper_for(store, config, clock)
        self.done = 0
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.fetch_failed = False
        self.ready: queue.Queue[Job | None] = queue.Queue(
            maxsize=READY_PER_LANE * len(self.lanes) + CLAIM_BATCH
        )
        self.in_flight: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.claims = itertools.count(1)
        self.keeper = LeaseKeeper(
            store, self.id, config.lease_seconds, self._holding, self.stopping, started_at=clock()
        )
        self.reporter = Reporter(
            store,
            reports,
            hosts=config.hosts,
            timeout=config.callback_timeout,
            lease_seconds=config.lease_seconds,
            worker_id=self.id,
            stopping=self.stopping,
            outbound=config.outbound,
            metrics=self.metrics,
            clock=clock,
        )
        self.parts = Parts(
            [  # hook.worker.parts: started in this order, stopped in reverse
                self.keeper,
                Loop("reports", self.reporter.run),
                Loop("change-feed", ChangeFeed(store, self.wake, self.stopping).run),
                Loop("housekeeping", lambda: self.housekeeper.run(self.stopping)),
                Loop("rules", lambda: self.rules.watch(self.stopping)),
                *self.settler.parts,
            ]
        )

    def stop(self) -> None:
        """Warm stop: claim nothing more and give back what is not labeled yet; deliver and
        settle what is (labeled, or in delivery); then return from run()."""
        self.stopping.set()
        self.wake.ring()

    # -- the stages --------------------------------------------------------------------------
    def run(self) -> None:
        log.info(
            "worker %s started (lease %.0f s, %d lane(s))",
            self.id,
            self.config.lease_seconds,
            len(self.lanes),
        )
        fetch = threading.Thread(target=self._fetch_loop, name="fetch", daemon=True)
        lanes = [
            threading.Thread(target=self._lane, args=(detector,), name=f"lane_{n}")
            for n, detector in enumerate(self.lanes)
        ]
        started: list[threading.Thread] = []
        try:
            self.parts.start()
            for thread in [fetch, *lanes]:
                thread.start()
                started.append(thread)
        finally:  # normally the lanes end once the fetch thread has stopped claiming
            if len(started) < 1 + len(lanes):  # a start failed: stop what did start
                self.stopping.set()
                self.ready.put(None)
            for thread in started:
                thread.join()
            self.deliveries.close()  # every delivery under way settled
            self.stopping.set()  # the loops among the parts end on it
            self.parts.stop()
            self.wake.close()
        log.info("worker %s stopped", self.id)
        if self.fetch_failed:  # the process exits 1, so systemd starts it again
            raise RuntimeError("the fetch thread failed (its traceback is logged above)")

    def _lane(self, detector: Detects) -> None:
        """Label what the fetch thread made ready until it says there is no more."""
        while jobs := take_ready(self.ready, self.config.batch_images):
            self._advance(jobs, detector)

    def _advance(self, jobs: list[Job], detector: Detects) -> None:
        """Jobs from the ready queue: given back (stopping), decoded, labeled, sent for
        delivery; one that cannot be handed on (a bug) is let go, its lease brings it back."""
        for job in jobs:
            if job.stage not in (Stage.READ, Stage.LOADED):
                continue
            if self.stopping.is_set():  # not started: another worker takes it at once
                self.settler.give_back(job, "the worker is stopping")
            elif job.stage is Stage.READ:
                self.loader.load(job, job.data)  # decoded here, where the cores are
        try:
            self.labeler.label([job for job in jobs if job.stage is Stage.LOADED], detector)
        except Exception as exc:  # the labeler settles what it can; a bug must not end the lane
            for job in jobs:
                if job.stage is Stage.LOADED:
                    self.settler.crashed(job, "labeling", exc)
        for job in jobs:
            if job.stage is not Stage.LABELED:
                continue  # settled on the way: the Settler has let it go
            try:
                self.deliveries.submit(job)  # settled, and let go, once delivered
            except Exception as exc:
                self.settler.crashed(job, "handing it to delivery", exc)

    def _fetch_loop(self) -> None:
        """Claim and load tasks until stopped; then tell the lanes there is no more."""
        idle = IDLE_FIRST
        outage = False
        try:
            while not self.stopping.is_set():
                try:
                    owners = [f"{self.id}#{next(self.claims)}" for _ in range(CLAIM_BATCH)]
                    claimed = self.store.claim_many(owners, self.config.lease_seconds)
                except PyMongoError as exc:
                    log.warning("worker %s: MongoDB unavailable (%s); retrying", self.id, exc)
                    outage = True
                    self.stopping.wait(1.0)
                    continue
                except Exception:  # a bug in claiming must not stop the labeling
                    log.exception("worker %s: claim failed", self.id)
                    self.stopping.wait(1.0)
                    continue
                if outage:
                    log.info("worker %s: MongoDB answers again", self.id)
                    outage = False
                if not claimed:  # until rung (a new task, or stop) or the next poll is due
                    idle = IDLE_FIRST if self.wake.wait(idle) else min(idle * 2, IDLE_MAX)
                    continue
                idle = IDLE_FIRST
                self._load([Job(task, owner, time.monotonic()) for owner, task in claimed])
        except BaseException:  # the worker cannot go on without claims: it stops, and says so
            log.critical("worker %s: the fetch thread failed; stopping", self.id, exc_info=True)
            self.fetch_failed = True
            self.stopping.set()
            raise
        finally:
            self.ready.put(None)  # each lane passes it on to the next

    def _load(self, jobs: list[Job]) -> None:
        """Hold the claimed jobs (their leases renewed from now), then load them for the lanes."""
        with self.lock:
            self.in_flight.update((job.owner, job) for job in jobs)
        self.loader.read_batch(jobs, self.ready.put)

    def _let_go(self, job: Job, settlement: Settlement) -> None:
        """The Settler is done with `job`: counted if done; its lease no longer renewed."""
        with self.lock:
            self.in_flight.pop(job.owner, None)
            if settlement is Settlement.DONE:
                self.done += 1

    def _holding(self) -> Holding:
        """What this worker holds now, for the lease keeper: a consistent snapshot."""
        with self.lock:
            return Holding(
                owners=list(self.in_flight),
                task_ids=[job.task.id for job in self.in_flight.values()],
                done=self.done,
                round_trips=self.round_trips.count if self.round_trips else 0,
            )


def housekeeper_for(
    store: TaskStore, config: WorkerConfig, clock: Callable[[], float]
) -> Housekeeper:
    """The queue's chores as this worker's settings have them."""
    return Housekeeper(
        store,
        lease_seconds=config.lease_seconds,
        clock=clock,
        retention_seconds=config.retention_seconds,
        max_attempts=config.policy.max_attempts,
        keep_pictures_seconds=config.keep_pictures_seconds,
        report=config.reports.targets,
        report_attempts=config.reports.policy.max_attempts,
    )


def take_ready(ready: queue.Queue[Job | None], batch_images: int) -> list[Job]:
    """The next ready job, and more already waiting while their images fit one run; empty
    once the fetch thread has ended (its None is put back for the other lanes)."""
    first = ready.get()
    if first is None:
        ready.put(None)
        return []
    jobs, images = [first], len(first.task.images)
    while images < batch_images:
        try:
            more = ready.get_nowait()
        except queue.Empty:
            break
        if more is None:
            ready.put(None)
            break
        jobs.append(more)
        images += len(more.task.images)
    return jobs
