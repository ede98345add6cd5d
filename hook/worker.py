"""Worker: claimed tasks in, Camio labels out at their callback_url.

Three stages overlap, so the detector is busy while the rest waits on I/O or decodes:

    fetch thread   claim a task, load and decode its images, letterbox them   -> ready queue
    main thread    run the detector, build the labels, store them with the task -> delivery pool
    delivery pool  POST to callback_url; done, retry later, or failed with the reason

Every task in flight is leased to this worker; a keeper thread renews the leases while they
last, so a long task is not taken by another worker, and a dead worker's tasks return to the
queue when their leases run out. Labels are stored before the first POST, so every retry (by
this worker or another) sends the very same labels.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from pymongo.errors import PyMongoError

from hook import yolo
from hook.callback import Outcome, origin, post_labels
from hook.callback import session as callback_session
from hook.detector import Detector
from hook.ensemble import Ensemble
from hook.errors import BadImage
from hook.hosts import HostAllowList
from hook.images import decode_image
from hook.labels import camio_labels
from hook.metrics import DELIVERIES, Metrics
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Task

log = logging.getLogger(__name__)
Origin = tuple[str, str | None, int]  # a callback host: scheme, host, port

IDLE_FIRST, IDLE_MAX = 0.01, 0.25  # idle polling: from 10 ms, doubling, up to 250 ms
READY_DEPTH = 2  # decoded tasks waiting for the detector
IN_FLIGHT = 4  # callbacks in flight at once
PER_HOST = 2  # of them, to one callback host (scheme, host and port) at most
DEFER_SECONDS = 1.0  # a task whose callback host is busy comes back after this
HOUSEKEEPING_SECONDS = 3600.0  # how often finished tasks past retention are purged
HEARTBEAT_SECONDS = 10.0  # how often a worker records that it is alive
FORGET_WORKERS_SECONDS = 86400.0  # heartbeats of workers gone a day are dropped


@dataclass
class Job:
    """A claimed task on its way through the stages."""

    task: Task
    owner: (
        str  # this claim's lease owner: unique per claim, so a stale job cannot pass for a new one
    )
    claimed: float  # monotonic time of the claim, for the claim-to-done figure
    canvases: list[Any] = field(default_factory=list)  # what the detector's prepare made
    boxes: list[yolo.Letterbox] = field(default_factory=list)
    error: str | None = None  # a bad image: fail the task with this
    body: str | None = None  # the labels JSON, once computed (or stored by an earlier try)
    infer_ms: float = 0.0
    settled: bool = False  # retried or given up early: nothing more to do


@dataclass(frozen=True)
class Config:
    """What the worker needs from settings."""

    lease_seconds: float
    callback_timeout: float
    retention_seconds: float
    max_image_pixels: int
    policy: RetryPolicy
    hosts: HostAllowList


class Worker:
    """One worker process's loop; `run()` returns after `stop()` once its tasks are finished."""

    def __init__(
        self,
        store: TaskStore,
        detector: Detector | Ensemble,
        config: Config,
        *,
        http: requests.Session | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.detector, self.config = store, detector, config
        self.http = http or callback_session()
        self.metrics = metrics or Metrics(store.db)
        self.started_at = clock()
        self.done = 0
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.stopping = threading.Event()
        self.ready: queue.Queue[Job | None] = queue.Queue(maxsize=READY_DEPTH)
        self.in_flight: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(IN_FLIGHT)
        self.per_host: collections.Counter[Origin] = collections.Counter()
        self.claims = itertools.count(1)

    def stop(self) -> None:
        """Warm stop: claim nothing more, finish what is claimed, then return from run()."""
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
        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="deliver") as pool:
            while (job := self.ready.get()) is not None:
                if self.stopping.is_set() and job.body is None and not job.settled:
                    self._give_back(job)  # not started: another worker takes it at once
                    continue
                self.slots.acquire()
                self._label(job)
                pool.submit(self._deliver, job)
        for thread in threads:
            thread.join()
        log.info("worker %s stopped", self.id)

    def _fetch_loop(self) -> None:
        """Claim and prepare tasks until stopped; then tell the main thread there is no more."""
        idle = IDLE_FIRST
        next_sweep = next_purge = 0.0
        outage = False
        try:
            while not self.stopping.is_set():
                try:
                    now = time.monotonic()
                    if now >= next_sweep:
                        self.store.requeue_expired(self.config.policy.max_attempts)
                        next_sweep = now + min(5.0, self.config.lease_seconds / 4)
                    if now >= next_purge:
                        self._purge()
                        next_purge = now + HOUSEKEEPING_SECONDS
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
                self._prepare(job)
                self.ready.put(job)
        finally:
            self.ready.put(None)

    def _prepare(self, job: Job) -> None:
        """Load and decode the images (or the labels an earlier try stored)."""
        task = job.task
        if task.result_json:
            job.body = task.result_json
            return
        try:
            images = self.store.load_images(task)
            if len(images) != len(task.images):
                job.error = f"{len(task.images) - len(images)} of {len(task.images)} images missing"
                return
            for index, (data, meta) in enumerate(zip(images, task.images, strict=True)):
                try:
                    image, size = decode_image(data, max_pixels=self.config.max_image_pixels,
                                               fit=self.detector.canvas)  # fmt: skip
                except BadImage as exc:
                    job.error = f"image {index} (timestamp {meta['key']}): {exc}"
                    return
                canvas, box = self.detector.prepare(image, size)
                job.canvases.append(canvas)
                job.boxes.append(box)
        except Exception as exc:  # one task's trouble must never stop the worker
            log.exception("task %s: preparing failed", task.id)
            job.canvases.clear()
            self._retry(job, f"unexpected error while preparing: {type(exc).__name__}: {exc}")

    def _label(self, job: Job) -> None:
        """Detect, build the Camio labels and store them with the task before any POST."""
        if job.settled or job.body is not None or job.error is not None:
            return
        try:
            started = time.perf_counter()
            outputs = self.detector.run(job.canvases)
            job.infer_ms = (time.perf_counter() - started) * 1000
            per_image = []
            for meta, output, box in zip(job.task.images, outputs, job.boxes, strict=True):
                found = self.detector.postprocess(output, box)
                per_image.append((meta["key"], box.source, found))
            body = json.dumps(camio_labels(per_image), separators=(",", ":"))
            if not self.store.save_result(job.task.id, job.owner, body):
                log.warning("task %s: lease lost before its labels were stored", job.task.id)
                job.settled = True
                return
            job.body = body
        except Exception as exc:  # logged with the task id; the task is retried
            log.exception("task %s: labeling failed", job.task.id)
            self._retry(job, f"unexpected error while labeling: {type(exc).__name__}: {exc}")
        finally:
            job.canvases.clear()  # the pixels are not needed any more; free them early

    def _deliver(self, job: Job) -> None:
        """POST the labels and settle the task: done, retry later, or failed."""
        try:
            self._deliver_once(job)
        except Exception:  # MongoDB gone while settling: the lease brings the task back
            log.exception("task %s: could not be settled", job.task.id)
        finally:
            with self.lock:
                self.in_flight.pop(job.owner, None)
            self.slots.release()

    def _deliver_once(self, job: Job) -> None:
        if job.settled:
            return
        if job.error is not None:
            self._finish(job, failed=job.error)
            return
        host = origin(job.task.callback_url)  # checked at ingest: it parses
        if not self._take_host(host):
            self._defer(job, host)
            return
        try:
            outcome = post_labels(
                self.http,
                job.task.callback_url,
                job.body or "",
                hosts=self.config.hosts,
                timeout=self.config.callback_timeout,
            )
        except Exception as exc:  # logged with the task id; the task is retried
            log.exception("task %s: delivery failed", job.task.id)
            self._retry(job, f"unexpected error while delivering: {type(exc).__name__}: {exc}")
            return
        finally:
            with self.lock:
                self.per_host[host] -= 1
        try:
            self._settle(job, outcome)
        except PyMongoError as exc:  # never retry what may have been delivered: the lease will
            job.settled = True  # bring the task back, and its stored labels are resent
            log.warning("task %s: %s, but MongoDB could not record it (%s)", job.task.id,
                        outcome.reason, type(exc).__name__)  # fmt: skip

    def _take_host(self, host: Origin) -> bool:
        """A delivery slot for one callback host; False when it already has PER_HOST."""
        with self.lock:
            if self.per_host[host] >= PER_HOST:
                return False
            self.per_host[host] += 1
            return True

    def _defer(self, job: Job, host: Origin) -> None:
        """Its host is busy: give the task back for a moment, its attempt not counted.

        So a slow or hanging callback host holds at most PER_HOST of the IN_FLIGHT slots, and
        deliveries to other hosts go on. The stored labels are resent when it comes back.
        """
        job.settled = True
        try:
            if self.store.release(job.task.id, job.owner, run_at=self.clock() + DEFER_SECONDS):
                log.info("task %s: callback host %s://%s:%d has %d deliveries in flight; "
                         "deferred %.0f s", job.task.id, *host, PER_HOST,
                         DEFER_SECONDS)  # fmt: skip
        except PyMongoError:
            log.warning("task %s: could not defer it; its lease will bring it back", job.task.id)

    def _give_back(self, job: Job) -> None:
        try:
            if self.store.release(job.task.id, job.owner):
                log.info("task %s: given back unstarted (stopping)", job.task.id)
        except PyMongoError:
            log.warning("task %s: could not give it back; its lease will", job.task.id)
        finally:
            with self.lock:
                self.in_flight.pop(job.owner, None)

    # -- settling ------------------------------------------------------------------------------
    def _settle(self, job: Job, outcome: Outcome) -> None:
        if outcome.delivered:
            self.metrics.count(DELIVERIES, "delivered")
            self.metrics.observe_latency(self.clock() - job.task.created_at)
            self._finish(job)
        elif outcome.permanent:
            self.metrics.count(DELIVERIES, "refused")
            self._finish(job, failed=outcome.reason)
        else:
            gave_up = self.config.policy.exhausted(job.task.attempts)
            self.metrics.count(DELIVERIES, "gave_up" if gave_up else "retried")
            self._retry(job, outcome.reason, at_least=outcome.retry_after or 0.0)

    def _finish(self, job: Job, failed: str | None = None) -> None:
        task = job.task
        job.settled = True
        if failed:
            ok = self.store.fail(task.id, job.owner, failed)
        else:
            ok = self.store.complete(task.id, job.owner)
        elapsed = (time.monotonic() - job.claimed) * 1000
        if not ok:
            log.warning("task %s: lease lost before it could be settled", task.id)
        elif failed:
            log.warning(
                "task %s failed: camera=%r images=%d attempt %d: %s (%.0f ms)",
                task.id,
                task.camera,
                len(task.images),
                task.attempts,
                failed,
                elapsed,
            )
        else:
            with self.lock:
                self.done += 1
            how = f"infer {job.infer_ms:.0f} ms" if job.infer_ms else "stored labels resent"
            log.info("task %s done: camera=%r images=%d labels=%s attempt %d, %s, "
                     "claim-to-done %.0f ms", task.id, task.camera, len(task.images),
                     _label_summary(job.body), task.attempts, how, elapsed)  # fmt: skip

    def _retry(self, job: Job, reason: str, at_least: float = 0.0) -> None:
        """Schedule the next attempt with backoff, or fail the task if attempts are used up.

        `at_least` is the callback's own Retry-After, honoured up to the policy's cap.
        """
        task = job.task
        policy = self.config.policy
        job.settled = True
        try:
            if policy.exhausted(task.attempts):
                self._finish(job, failed=f"gave up after {task.attempts} attempts; last: {reason}")
                return
            delay = max(policy.next_delay(task.attempts), min(at_least, policy.cap))
            if self.store.reschedule(task.id, job.owner, self.clock() + delay, reason):
                log.warning(
                    "task %s: attempt %d failed (%s); retry in %.1f s",
                    task.id,
                    task.attempts,
                    reason,
                    delay,
                )
        except PyMongoError:
            log.exception("task %s: could not reschedule; its lease will bring it back", task.id)

    # -- background chores -------------------------------------------------------------------
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
        self.store.beat(self.id, {
            "host": socket.gethostname(), "pid": os.getpid(), "state": state,
            "started_at": self.started_at, "every": period, "done": done,
            "in_flight": in_flight,
        })  # fmt: skip

    def _purge(self) -> None:
        now = self.clock()
        removed = self.store.purge(before=now - self.config.retention_seconds)
        orphans = self.store.purge_orphans(before=now - HOUSEKEEPING_SECONDS)
        self.store.forget_workers(before=now - FORGET_WORKERS_SECONDS)
        if removed or orphans:
            log.info("purged %d finished task(s) past retention and %d orphan image(s)",
                     removed, orphans)  # fmt: skip


def _label_summary(body: str | None) -> str:
    """'dog x2,person x1': each label and the number of images it is in, for the log line."""
    counts: dict[str, int] = {}
    for entry in json.loads(body or "{}").get("labels", {}).values():
        for label in entry:
            counts[label] = counts.get(label, 0) + 1
    return ",".join(f"{label} x{n}" for label, n in sorted(counts.items())) or "none"
