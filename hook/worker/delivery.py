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

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import Outcome, origin, post_labels
from hook.store import TaskStore
from hook.worker.job import Job
from hook.worker.settling import Settler

log = logging.getLogger(__name__)
Origin = tuple[str, str | None, int]  # a callback host: scheme, host, port

IN_FLIGHT = 4  # callbacks in flight at once
PER_HOST = 2  # of them, to one callback host at most
DEFER_SECONDS = 1.0  # a task whose callback host is busy comes back after this


class DeliveryPool:
    """Threads that POST and hand the outcome to the Settler, which decides and records what
    becomes of the job (and lets the worker know)."""

    def __init__(
        self,
        store: TaskStore,
        settler: Settler,
        http: requests.Session,
        *,
        hosts: HostAllowList,
        timeout: float,
        outbound: Outbound | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.settler, self.http = store, settler, http
        self.outbound = outbound or Outbound()
        self.hosts, self.timeout, self.clock = hosts, timeout, clock
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
        try:
            outcome = self._post(job)
        except Exception as exc:  # the task is retried, saying why
            outcome = None
            self.settler.crashed(job, "delivering", exc)
        finally:
            with self.lock:
                self.per_host[host] -= 1
            self.slots.release()
        if outcome is not None:
            self.settler.delivery(job, outcome)

    def _post(self, job: Job) -> Outcome:
        """The POST of the job's stored labels, with its headers; never raises for HTTP."""
        task, body = job.task, job.body or ""
        headers = self.outbound.headers_for(
            task.id,
            body,
            camera=task.camera,
            user=task.user_id,
            attempt=task.attempts,
            now=self.clock(),
        )
        return post_labels(
            self.http,
            task.callback_url,
            body,
            hosts=self.hosts,
            timeout=self.timeout,
            headers=headers,
        )

    def _take_host(self, host: Origin) -> bool:
        """A delivery slot for one callback host; False when it already has PER_HOST."""
        with self.lock:
            if self.per_host[host] >= PER_HOST:
                return False
            self.per_host[host] += 1
            return True

    def _defer(self, job: Job, host: Origin) -> None:
        """Its host is busy: given back for a moment, its attempt not counted."""
        why = f"callback host {host[0]}://{host[1]}:{host[2]} has {PER_HOST} deliveries in flight"
        self.settler.give_back(job, why, after=DEFER_SECONDS)
