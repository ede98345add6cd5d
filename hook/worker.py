"""Worker: claimed tasks in, Camio labels out at their callback_url.

Three stages overlap, so the detector is busy while the rest waits on I/O or decodes:

    fetch thread   claim a task, load and decode its images, letterbox them   -> ready queue
    main thread    run the detector, build the labels, store them with the task -> delivery pool
    delivery pool  POST to callback_url; done, retry later, or failed with the reason

A job's stage (hook.job) says where it is; one settled early (a bad image, a lease lost, an
unexpected error) leaves the pipeline where that happened and takes no delivery slot. The
pool is hook.delivery's, settling hook.settling's, the queue's chores hook.housekeeping's.

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
from dataclasses import dataclass
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
from hook.metrics import Metrics
from hook.retry import RetryPolicy
from hook.settling import Settlement, Settler
from hook.store import Heartbeat, TaskStore

log = logging.getLogger(__name__)

IDLE_FIRST, IDLE_MAX = 0.01, 0.25  # idle polling: from 10 ms, doubling, up to 250 ms
READY_DEPTH = 2  # decoded tasks waiting for the detector
HEARTBEAT_SECONDS = 10.0  # how often a worker records that it is alive


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker needs from settings."""

    lease_seconds: float
    callback_timeout: float
    retention_seconds: float
    max_image_pixels: int
    policy: RetryPolicy
    hosts: HostAllowList


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.detector, self.config = store, detector, config
        self.http = http or callback_session()
        self.metrics = metrics or Metrics(store)
        self.settler = Settler(store, self.metrics, config.policy, clock=clock)
        self.deliveries = DeliveryPool(
            store, self.settler, self.http, hosts=config.hosts, timeout=config.callback_timeout,
            finished=self._delivered, clock=clock,
        )  # fmt: skip
        self.housekeeper = Housekeeper(
            store, lease_seconds=config.lease_seconds, clock=clock,
            retention_seconds=config.retention_seconds, max_attempts=config.policy.max_attempts,
        )  # fmt: skip
        self.started_at = clock()
        self.done = 0
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.stopping = threading.Event()
        self.ready: queue.Queue[Job | None] = queue.Queue(maxsize=READY_DEPTH)
        self.in_flight: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.claims = itertools.count(1)

    def stop(self) -> None:
        """Warm stop: claim nothing more and give back what is not labeled yet; deliver and
        settle what is (labeled, or in delivery); then return from run()."""
        self.stopping.set()

    # -- the stages --------------------------------------------------------------------------
    def run(self) -> None:
        log.info("worker %s started (lease %.0f s)", self.id, self.config.lease_seconds)
        threads = [
            threading.Thread(target=self._fetch_loop, name="fetch", daemon=True),
            threading.Thread(target=self._keep_leases, name="leases", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            while (job := self.ready.get()) is not None:
                if self.stopping.is_set() and job.stage is Stage.LOADED:
                    self._give_back(job)  # not started: another worker takes it at once
                    continue
                if job.stage is Stage.LOADED:
                    self._label(job)
                if job.stage is Stage.LABELED:
                    self.deliveries.submit(job)
                else:  # settled while labeling: a lease lost, an unexpected error
                    self._forget(job)
        finally:
            self.deliveries.close()
        for thread in threads:
            thread.join()
        log.info("worker %s stopped", self.id)

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
            canvases, boxes = [], []
            for index, (data, meta) in enumerate(zip(images, task.images, strict=True)):
                try:
                    image, size = decode_image(data, max_pixels=self.config.max_image_pixels,
                                               fit=self.detector.canvas)  # fmt: skip
                except BadImage as exc:
                    self.settler.fail(job, f"image {index} (timestamp {meta.key}): {exc}")
                    return
                canvas, box = self.detector.to_canvas(image, size)
                canvases.append(canvas)
                boxes.append(box)
            job.loaded(canvases, boxes)
        except Exception as exc:  # one task's trouble must never stop the worker
            log.exception("task %s: loading failed", task.id)
            self.settler.retry(job, f"unexpected error while loading: {type(exc).__name__}: {exc}")

    def _label(self, job: Job) -> None:
        """Detect, build the Camio labels and store them with the task before any POST."""
        try:
            started = time.perf_counter()
            outputs: Sequence[Any] = self.detector.run(job.canvases)  # as postprocess takes them
            job.infer_ms = (time.perf_counter() - started) * 1000
            per_image = []
            for meta, output, box in zip(job.task.images, outputs, job.boxes, strict=True):
                found = self.detector.postprocess(output, box)
                per_image.append((meta.key, box.source, found))
            body = json.dumps(camio_labels(per_image), separators=(",", ":"))
            if not self.store.save_result(job.task.id, job.owner, body):
                log.warning("task %s: lease lost before its labels were stored", job.task.id)
                job.settle()
                return
            job.labeled(body)
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
        """The delivery pool is done with `job`: count it if done, stop renewing its lease."""
        if settlement is Settlement.DONE:
            with self.lock:
                self.done += 1
        self._forget(job)

    def _forget(self, job: Job) -> None:
        """Out of this worker's hands: its lease is no longer renewed."""
        with self.lock:
            self.in_flight.pop(job.owner, None)

    # -- leases and heartbeats ---------------------------------------------------------------
    def _keep_leases(self) -> None:
        """Renew the leases of tasks in flight and record a heartbeat, until the worker ends."""
        period = min(self.config.lease_seconds / 3, HEARTBEAT_SECONDS)
        while True:
            with self.lock:
                owners = list(self.in_flight)
                ids = [job.task.id for job in self.in_flight.values()]
            if self.stopping.is_set() and not ids:
                try:
                    self._beat(period, state="stopped")
                except PyMongoError as exc:  # stopping while MongoDB is down: say so, end cleanly
                    log.warning("worker %s: could not record that it stopped: %s", self.id, exc)
                return
            try:
                if ids:
                    self.store.renew(ids, owners, self.config.lease_seconds)
                self._beat(period, state="stopping" if self.stopping.is_set() else "running")
            except PyMongoError as exc:
                log.warning("worker %s: could not renew leases: %s", self.id, exc)
            if self.stopping.is_set():
                time.sleep(0.5)  # draining: check often enough to exit soon after the last task
            else:
                self.stopping.wait(period)

    def _beat(self, period: float, state: str) -> None:
        with self.lock:
            in_flight, done = len(self.in_flight), self.done
        self.store.beat(Heartbeat(
            worker=self.id, host=socket.gethostname(), pid=os.getpid(), state=state,
            started_at=self.started_at, every=period, done=done, in_flight=in_flight,
        ))  # fmt: skip
