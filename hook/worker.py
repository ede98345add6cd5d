"""Worker: claimed tasks in, Camio labels out at their callback_url.

Three stages overlap, so the detector is busy while the rest waits on I/O or decodes:

    fetch thread   claim a task, load and decode its images, letterbox them   -> ready queue
    main thread    run the detector, build the labels, store them with the task -> delivery pool
    delivery pool  POST to callback_url; done, retry later, or failed with the reason

A job's stage (hook.job) says where it is; one settled early (a bad image, a lease lost, an
unexpected error) leaves the pipeline where that happened and takes no delivery slot. The
pool is hook.delivery's, settling hook.settling's, the queue's chores hook.housekeeping's,
failure reports hook.reporting's (a thread of their own, so labeling never waits on them).

Every task in flight is leased to this worker; a keeper thread renews the leases while they
last, so a long task is not taken by another worker, and a dead worker's tasks return to the
queue when their leases run out. Labels are stored before the first POST, so every retry (by
this worker or another) sends the very same labels.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from pymongo.errors import PyMongoError

from hook.callback import session as callback_session
from hook.delivery import DeliveryPool
from hook.detector import Detector
from hook.ensemble import Ensemble
from hook.errors import BadImage
from hook.hosts import HostAllowList
from hook.housekeeping import Housekeeper
from hook.images import decode_image
from hook.job import Job, Stage
from hook.labels import camio_labels
from hook.lease_keeper import Holding, LeaseKeeper
from hook.metrics import Metrics
from hook.outbound import Outbound
from hook.pictures import picture_fit
from hook.reporting import ReportConfig, Reporter
from hook.retry import RetryPolicy
from hook.rules import RulesFile
from hook.settling import Settlement, Settler
from hook.snapshots import Snapshots
from hook.store import TaskStore

log = logging.getLogger(__name__)

IDLE_FIRST, IDLE_MAX = 0.01, 0.25  # idle polling: from 10 ms, doubling, up to 250 ms
READY_DEPTH = 2  # decoded tasks waiting for the detector


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs from settings."""

    lease_seconds: float
    callback_timeout: float
    retention_seconds: float
    max_image_pixels: int
    policy: RetryPolicy
    hosts: HostAllowList
    keep_pictures_seconds: float = 0.0  # 0: no annotated pictures
    outbound: Outbound = field(default_factory=Outbound)  # headers beside each callback's body
    reports: ReportConfig = field(default_factory=ReportConfig)  # failure reports: off if unset


class Worker:
    """One worker process's loop; `run()` returns after `stop()` once its tasks are settled."""

    def __init__(
        self,
        store: TaskStore,
        detector: Detector | Ensemble,
        config: WorkerConfig,
        *,
        http: requests.Session | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        rules: RulesFile | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.detector, self.config = store, detector, config
        self.rules = rules or RulesFile.open(None)
        self.snapshots = Snapshots(store, enabled=config.keep_pictures_seconds > 0)
        self.http = http or callback_session()
        self.metrics = metrics or Metrics(store)
        self.settler = Settler(store, self.metrics, config.policy,
                               report=config.reports.targets, clock=clock)  # fmt: skip
        self.deliveries = DeliveryPool(
            store, self.settler, self.http, hosts=config.hosts, timeout=config.callback_timeout,
            finished=self._delivered, outbound=config.outbound, clock=clock,
        )  # fmt: skip
        self.housekeeper = Housekeeper(
            store, lease_seconds=config.lease_seconds, clock=clock,
            retention_seconds=config.retention_seconds, max_attempts=config.policy.max_attempts,
            keep_pictures_seconds=config.keep_pictures_seconds, report=config.reports.targets,
            report_attempts=config.reports.policy.max_attempts,
        )  # fmt: skip
        self.done = 0
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.stopping = threading.Event()
        self.ready: queue.Queue[Job | None] = queue.Queue(maxsize=READY_DEPTH)
        self.in_flight: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.claims = itertools.count(1)
        self.keeper = LeaseKeeper(store, self.id, config.lease_seconds, self._holding,
                                  self.stopping, started_at=clock())  # fmt: skip
        self.reporter = Reporter(
            store, config.reports, hosts=config.hosts, timeout=config.callback_timeout,
            lease_seconds=config.lease_seconds, worker_id=self.id, stopping=self.stopping,
            outbound=config.outbound, metrics=self.metrics, clock=clock,
        )  # fmt: skip

    def stop(self) -> None:
        """Warm stop: claim nothing more and give back what is not labeled yet; deliver and
        settle what is (labeled, or in delivery); then return from run()."""
        self.stopping.set()

    # -- the stages --------------------------------------------------------------------------
    def run(self) -> None:
        log.info("worker %s started (lease %.0f s)", self.id, self.config.lease_seconds)
        threads = [
            threading.Thread(target=self._fetch_loop, name="fetch", daemon=True),
            threading.Thread(target=self.keeper.run, name="leases", daemon=True),
            threading.Thread(target=self.reporter.run, name="reports", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            while (job := self.ready.get()) is not None:
                try:
                    self._advance(job)
                except Exception:  # a bug here must not stop the worker: the lease will
                    log.exception("task %s: could not be handed on", job.task.id)
                    job.settle()
                    self._forget(job)
        finally:
            self.deliveries.close()
            self.snapshots.close()
        for thread in threads:
            thread.join()
        log.info("worker %s stopped", self.id)

    def _advance(self, job: Job) -> None:
        """One job from the ready queue: given back (stopping), labeled, sent for delivery."""
        if self.stopping.is_set() and job.stage is Stage.LOADED:
            self._give_back(job)  # not started: another worker takes it at once
            return
        if job.stage is Stage.LOADED:
            self._label(job)
        if job.stage is Stage.LABELED:
            self.deliveries.submit(job)
        else:  # settled while labeling: a lease lost, an unexpected error
            self._forget(job)

    def _fetch_loop(self) -> None:
        """Claim and load tasks until stopped; then tell the main thread there is no more."""
        idle = IDLE_FIRST
        outage = False
        try:
            while not self.stopping.is_set():
                try:
                    self.housekeeper.run_due()
                    owner = f"{self.id}#{next(self.claims)}"
                    task = self.store.claim(owner, self.config.lease_seconds)
                except PyMongoError as exc:
                    log.warning("worker %s: MongoDB unavailable (%s); retrying", self.id, exc)
                    outage = True
                    self.stopping.wait(1.0)
                    continue
                except Exception:  # a bug in housekeeping must not stop the labeling
                    log.exception("worker %s: claim or housekeeping failed", self.id)
                    self.stopping.wait(1.0)
                    continue
                if outage:
                    log.info("worker %s: MongoDB answers again", self.id)
                    outage = False
                if task is None:
                    self.stopping.wait(idle)
                    idle = min(idle * 2, IDLE_MAX)
                    continue
                idle = IDLE_FIRST
                job = Job(task, owner, time.monotonic())
                with self.lock:
                    self.in_flight[owner] = job
                self._load(job)
                if job.stage is Stage.SETTLED:  # a bad image or an error: failed or retried
                    self._forget(job)
                else:
                    self.ready.put(job)
        finally:
            self.ready.put(None)

    def _load(self, job: Job) -> None:
        """Load, decode and letterbox the images, or take the labels an earlier try stored."""
        task = job.task
        if task.result_json:
            job.labeled(task.result_json)
            return
        try:
            images = self.store.load_images(task)
            if len(images) != len(task.images):
                missing = len(task.images) - len(images)
                self.settler.fail(job, f"{missing} of {len(task.images)} images missing")
                return
            canvases, boxes, decoded = [], [], []
            for index, (data, meta) in enumerate(zip(images, task.images, strict=True)):
                fit = self.detector.canvas
                if self.snapshots.enabled:  # the picture may want more pixels than the model
                    fit = picture_fit(fit, (meta.width, meta.height))
                try:
                    image, size = decode_image(data, max_pixels=self.config.max_image_pixels,
                                               fit=fit)  # fmt: skip
                except BadImage as exc:
                    self.settler.fail(job, f"image {index} (timestamp {meta.key}): {exc}")
                    return
                canvas, box = self.detector.to_canvas(image, size)
                canvases.append(canvas)
                boxes.append(box)
                if self.snapshots.enabled:
                    decoded.append(image)
            job.loaded(canvases, boxes, decoded)
        except Exception as exc:  # one task's trouble must never stop the worker
            log.exception("task %s: loading failed", task.id)
            self.settler.retry(job, f"unexpected error while loading: {type(exc).__name__}: {exc}")

    def _label(self, job: Job) -> None:
        """Detect, build the Camio labels and store them with the task before any POST."""
        try:
            started = time.perf_counter()
            outputs: Sequence[Any] = self.detector.run(job.canvases)  # as postprocess takes them
            job.infer_ms = (time.perf_counter() - started) * 1000
            rules = self.rules.current()
            per_image, kept, dropped = [], [], []
            for meta, output, box in zip(job.task.images, outputs, job.boxes, strict=True):
                found = self.detector.postprocess(output, box)
                reported, refused = rules.apply(job.task.camera, meta.key, found, box.source)
                per_image.append((meta.key, box.source, reported))
                kept.append(reported)
                dropped.extend(refused)
            body = json.dumps(camio_labels(per_image), separators=(",", ":"))
            if not self.store.save_result(job.task.id, job.owner, body, dropped):
                log.warning("task %s: lease lost before its labels were stored", job.task.id)
                job.settle()
                return
            job.labeled(body, kept)
            self.snapshots.take(job)  # drawn beside the detector and the POST, not after
        except Exception as exc:  # logged with the task id; the task is retried
            log.exception("task %s: labeling failed", job.task.id)
            self.settler.retry(job, f"unexpected error while labeling: {type(exc).__name__}: {exc}")

    def _give_back(self, job: Job) -> None:
        job.settle()
        try:
            if self.store.release(job.task.id, job.owner):
                log.info("task %s: given back unstarted (stopping)", job.task.id)
        except PyMongoError:
            log.warning("task %s: could not give it back; its lease will", job.task.id)
        finally:
            self._forget(job)

    def _delivered(self, job: Job, settlement: Settlement | None) -> None:
        """The delivery pool is done with `job`: counted if done, its lease let go."""
        if settlement is Settlement.DONE:
            with self.lock:
                self.done += 1
        self._forget(job)

    def _forget(self, job: Job) -> None:
        """Out of this worker's hands: its lease is no longer renewed."""
        with self.lock:
            self.in_flight.pop(job.owner, None)

    def _holding(self) -> Holding:
        """What this worker holds now, for the lease keeper: a consistent snapshot."""
        with self.lock:
            return Holding(
                owners=list(self.in_flight),
                task_ids=[job.task.id for job in self.in_flight.values()],
                done=self.done,
            )
