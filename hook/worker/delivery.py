"""The delivery pool: labeled jobs POSTed to their callback_url, many at once, then settled.

A callback's latency is the receiver's, not ours (Camio's endpoint answers in ~0.1 s across the
internet), so deliveries overlap: up to IN_FLIGHT POSTs at once, PER_HOST of them to one
callback host (scheme, host and port) over kept-alive connections. PER_HOST is a ceiling for
fairness among hosts, not a throttle of the only one: a job whose host is at its ceiling waits
here, in memory, and goes as soon as one of that host's POSTs ends (hosts take turns for a free
slot). Waiting jobs stay leased to this worker (the lease keeper renews them), so a worker
killed meanwhile loses nothing: their leases bring the tasks back, and their stored labels are
resent.

Memory is bounded: at most CAPACITY jobs are in flight or waiting (a lane that labels more
waits for room), and one host may hold at most HOST_BACKLOG of them waiting; a job for a host
that far behind (hanging, or far slower than the rest) is given back for DEFER_SECONDS instead,
so a slow host holds only its share and deliveries to the others go on.
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

IN_FLIGHT = 16  # POSTs at once: threads that mostly wait on receivers
PER_HOST = 8  # of them to one callback host at most (requests keeps 10 connections a host)
CAPACITY = 64  # jobs in flight or waiting for a slot, all hosts together
HOST_BACKLOG = 32  # jobs of one host waiting for a slot; past it, given back for a moment
DEFER_SECONDS = 1.0  # how long a job of a host that far behind is given back for


class DeliveryPool:
    """POSTs labeled jobs and hands each outcome to the Settler, which decides and records
    what becomes of the job (and lets the worker know)."""

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
        self.changed = threading.Condition()
        self.posting: collections.Counter[Origin] = collections.Counter()  # POSTs per host
        self.waiting: dict[Origin, collections.deque[Job]] = {}  # in turn: oldest host first
        self.held = 0  # jobs posting or waiting

    def submit(self, job: Job) -> None:
        """Deliver a LABELED job: at once when its host has a free slot, else as soon as it
        has one. Blocks only while CAPACITY jobs are held (never for one busy host)."""
        host = origin(job.task.callback_url)  # checked at ingest: it parses
        with self.changed:
            behind = len(self.waiting.get(host, ())) >= HOST_BACKLOG
            if not behind:
                self.changed.wait_for(lambda: self.held < CAPACITY)
                self.held += 1
                self.waiting.setdefault(host, collections.deque()).append(job)
                started = self._start_next()
        if behind:
            why = f"callback host {host[0]}://{host[1]}:{host[2]} has {HOST_BACKLOG} waiting"
            self.settler.give_back(job, why, after=DEFER_SECONDS)
            return
        self._post_all(started)

    def close(self) -> None:
        """Deliver and settle every job held (posting or waiting), then end the threads."""
        with self.changed:
            self.changed.wait_for(lambda: self.held == 0)
        self.pool.shutdown(wait=True)

    def _start_next(self) -> list[tuple[Job, Origin]]:
        """The waiting jobs that may go now, their slots taken; hosts take turns (called
        with the lock held)."""
        started = []
        while sum(self.posting.values()) < IN_FLIGHT:
            host = next((h for h in self.waiting if self.posting[h] < PER_HOST), None)
            if host is None:
                break
            queue = self.waiting.pop(host)
            started.append((queue.popleft(), host))
            if queue:
                self.waiting[host] = queue  # to the back of the line
            self.posting[host] += 1
        return started

    def _post_all(self, started: list[tuple[Job, Origin]]) -> None:
        for job, host in started:
            self.pool.submit(self._deliver, job, host)

    def _deliver(self, job: Job, host: Origin) -> None:
        try:
            outcome = self._post(job)
        except Exception as exc:  # the task is retried, saying why
            outcome = None
            self.settler.crashed(job, "delivering", exc)
        finally:
            with self.changed:
                self.posting[host] -= 1
                started = self._start_next()
            self._post_all(started)  # the freed slot goes on at once, before settling
        if outcome is not None:
            self.settler.delivery(job, outcome)
        with self.changed:
            self.held -= 1
            self.changed.notify_all()

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
