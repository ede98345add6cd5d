"""The delivery pool: labeled jobs POSTed to their callback_url, a few at once, then settled.

At most IN_FLIGHT deliveries run at once, PER_HOST of them to one callback host (scheme, host
and port): a job whose host already has that many is given back for a moment instead, so a
slow or hanging host holds only its share of the slots and deliveries to others go on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from pymongo.errors import PyMongoError

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import origin, post_labels
from hook.store import TaskStore
from hook.worker.job import Job
from hook.worker.settling import Settlement, Settler

log = logging.getLogger(__name__)
Origin = tuple[str, str | None, int]  # a callback host: scheme, host, port

IN_FLIGHT = 4  # callbacks in flight at once
PER_HOST = 2  # of them, to one callback host at most
DEFER_SECONDS = 1.0  # a task whose callback host is busy comes back after this


class DeliveryPool:
    """Threads that POST and settle; `finished(job, settlement)` is told when each job leaves
    (settlement None: deferred, or settling failed and the lease will bring the task back),
    by hook.worker.completions for a delivered job whose completion is batched."""

    def __init__(
        self,
        store: TaskStore,
        settler: Settler,
        http: requests.Session,
        *,
        hosts: HostAllowList,
        timeout: float,
        finished: Callable[[Job, Settlement | None], None],
        outbound: Outbound | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.settler, self.http = store, settler, http
        self.outbound = outbound or Outbound()
        self.hosts, self.timeout, self.finished, self.clock = hosts, timeout, finished, clock
        self.pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="deliver")
        self.slots = threading.Semaphore(IN_FLIGHT)
        self.per_host: collections.Counter[Origin] = collections.Counter()
        self.lock = threading.Lock()

    def submit(self, job: Job) -> None:
        """Deliver a LABELED job; blocks while every slot is taken (never for a busy host)."""
        host = origin(job.task.callback_url)  # checked at ingest: it parses
        if not self._take_host(host):
            self._defer(job, host)
            return
        self.slots.acquire()
        self.pool.submit(self._deliver, job, host)

    def close(self) -> None:
        """Wait for the deliveries under way to be settled."""
        self.pool.shutdown(wait=True)

    def _deliver(self, job: Job, host: Origin) -> None:
        settlement = None
        try:
            settlement = self._post_and_settle(job, host)
        except Exception:  # a bug while settling: the lease brings the task back
            log.exception("task %s: could not be settled", job.task.id)
        finally:
            self.slots.release()
            if settlement is not Settlement.PENDING:  # else hook.worker.completions tells
                self.finished(job, settlement)

    def _post_and_settle(self, job: Job, host: Origin) -> Settlement:
        try:
            task, body = job.task, job.body or ""
            headers = self.outbound.headers_for(task.id, body, camera=task.camera,
                                                user=task.user_id, attempt=task.attempts,
                                                now=self.clock())  # fmt: skip
            outcome = post_labels(self.http, task.callback_url, body, hosts=self.hosts,
                                  timeout=self.timeout, headers=headers)  # fmt: skip
        except Exception as exc:  # logged with the task id; the task is retried
            log.exception("task %s: delivery failed", job.task.id)
            why = f"unexpected error while delivering: {type(exc).__name__}: {exc}"
            return self.settler.retry(job, why)
        finally:
            with self.lock:
                self.per_host[host] -= 1
        return self.settler.delivery(job, outcome)

    def _take_host(self, host: Origin) -> bool:
        """A delivery slot for one callback host; False when it already has PER_HOST."""
        with self.lock:
            if self.per_host[host] >= PER_HOST:
                return False
            self.per_host[host] += 1
            return True

    def _defer(self, job: Job, host: Origin) -> None:
        """Its host is busy: give the task back for a moment, its attempt not counted.

        The stored labels are resent when it comes back.
        """
        job.settle()
        try:
            if self.store.release(job.task.id, job.owner, run_at=self.clock() + DEFER_SECONDS):
                log.info("task %s: callback host %s://%s:%d has %d deliveries in flight; "
                         "deferred %.0f s", job.task.id, *host, PER_HOST,
                         DEFER_SECONDS)  # fmt: skip
        except PyMongoError:
            log.warning("task %s: could not defer it; its lease will bring it back", job.task.id)
        finally:
            self.finished(job, None)
