"""Metrics: counters kept in MongoDB, rendered in Prometheus' text format at GET /metrics.

Deliveries are also counted per callback host (hook.metrics.hosts).

Web and worker processes, on one machine or many, all add to the same counters (kept by the
store), so one scrape
of any web process sees the whole installation. Counting is best-effort: a failed update is
logged, never allowed to fail the request or task it describes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from pymongo.errors import PyMongoError

from hook.metrics import hosts as host_metrics
from hook.metrics.hosts import HOST, Admissions, amounts, bucket_field, host_of
from hook.store import Counter, TaskStore

log = logging.getLogger(__name__)

#: Seconds from an event's arrival to its labels being delivered.
BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
#: Seconds of model runs per image (a CPU core: 0.05-0.2; a GPU well under 0.01).
INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
EVENTS, DELIVERIES, LATENCY, INFERENCE = "events", "deliveries", "latency", "inference"
WORKER_STATES = ("running", "stopping", "stopped", "gone")
QUIET_SECONDS = 10.0
_INDEX = re.compile(r"\[\d+\]")


class Metrics:
    """Counting for one process: best-effort adds to the installation's counters.

    Buffered (the worker's), the adds wait in memory for `flush()`, which writes them all in
    one round trip; a crash loses at most the counts since the last flush, never a task.
    """

    def __init__(
        self, store: TaskStore, admissions: Admissions | None = None, *, buffered: bool = False
    ) -> None:
        self.store = store
        self.admissions = admissions or Admissions()  # the hosts counted under their own name
        self.quiet_until = 0.0  # after a failure, skip counting a while: never wait on a dead DB
        self.buffered = buffered
        self.pending: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
        self.lock = threading.Lock()

    def flush(self) -> None:
        """Write the buffered adds, all in one round trip (nothing to do unless buffered)."""
        if time.monotonic() < self.quiet_until:
            return  # kept for the next flush: a few keys, however many adds
        with self.lock:
            pending, self.pending = self.pending, {}
        if not pending:
            return
        try:
            self.store.add_many(
                [(key, sums, latest or None) for key, (sums, latest) in pending.items()]
            )
        except PyMongoError as exc:
            self._hush(f"{len(pending)} counters", exc)
            for key, (sums, latest) in pending.items():  # kept for the next flush
                self._buffer(key, sums, latest)

    def count(self, family: str, label: str) -> None:
        """Add one to `family` under `label` (e.g. events / rejected:callback_url)."""
        self._inc(f"{family}|{label}", {"n": 1})

    def delivery(
        self, url: str, outcome: str, seconds: float, at: float, *, labels: bool = True
    ) -> None:
        """A delivery attempt's outcome (delivered, retried, refused, gave_up), counted overall
        (`labels`: a callback's, not a failure report's) and for its host with how long its
        POST took; `at`: when, epoch seconds."""
        if labels:
            self.count(DELIVERIES, outcome)
        host = host_of(url)
        if time.monotonic() < self.quiet_until:
            return
        try:
            host = self.admissions.label(self.store, host)
        except PyMongoError as exc:
            self._hush(f"{HOST}|{host}", exc)
            return
        self._inc(f"{HOST}|{host}", amounts(outcome, seconds), {f"last_{outcome}_at": at})

    def observe_latency(self, seconds: float) -> None:
        self._inc(LATENCY, observed(seconds, BUCKETS))

    def observe_inference(self, seconds_per_image: float, images: int) -> None:
        """A task's model runs: `images` observations of `seconds_per_image` each."""
        self._inc(INFERENCE, observed(seconds_per_image, INFERENCE_BUCKETS, images))

    def _inc(
        self, key: str, fields: dict[str, float], latest: dict[str, float] | None = None
    ) -> None:
        if self.buffered:
            self._buffer(key, fields, latest or {})
            return
        if time.monotonic() < self.quiet_until:
            return
        try:
            self.store.add(key, fields, latest)
        except PyMongoError as exc:
            self._hush(key, exc)

    def _buffer(self, key: str, fields: dict[str, float], latest: dict[str, float]) -> None:
        """Add to what waits for the next flush: amounts summed, latest values raised."""
        with self.lock:
            sums, latest_seen = self.pending.setdefault(key, ({}, {}))
            for name, amount in fields.items():
                sums[name] = sums.get(name, 0) + amount
            for name, value in latest.items():
                latest_seen[name] = max(latest_seen.get(name, value), value)

    def _hush(self, key: str, exc: PyMongoError) -> None:
        self.quiet_until = time.monotonic() + QUIET_SECONDS
        log.warning(
            "metrics: could not count %s (%s); not counting for %.0f s",
            key,
            type(exc).__name__,
            QUIET_SECONDS,
        )


def observed(seconds: float, buckets: tuple[float, ...], times: int = 1) -> dict[str, float]:
    """A histogram's counter fields for `times` observations of `seconds`."""
    fields: dict[str, float] = {"count": times, "sum": seconds * times}
    for bound in buckets:
        if seconds <= bound:
            fields[bucket_field(bound)] = times
    return fields


def rejection_reason(field: str | None, status: int) -> str:
    """A low-cardinality reason: the field without list indices, or the status."""
    return _INDEX.sub("[]", field) if field else str(status)


class _Collector(Collector):
    """Reads the counters and task counts at scrape time."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        now = self.store.clock()  # the time the store keeps (real, but a test's own in tests)
        tasks = GaugeMetricFamily("hook_tasks", "Tasks in the queue by status", labels=["status"])
        for status, n in self.store.stats().items():
            tasks.add_metric([status], n)
        yield tasks
        yield from self._liveness(now)
        events = CounterMetricFamily(
            "hook_events",
            "Events POSTed to the hook, by outcome and reason",
            labels=["outcome", "reason"],
        )
        deliveries = CounterMetricFamily(
            "hook_deliveries", "Label deliveries to callback URLs, by outcome", labels=["outcome"]
        )
        latency = inference = None
        counters = self.store.counted()
        for counter in counters:
            family, _, label = counter.key.partition("|")
            if family == EVENTS:
                outcome, _, reason = label.partition(":")
                events.add_metric([outcome, reason], counter.get("n"))
            elif family == DELIVERIES:
                deliveries.add_metric([label], counter.get("n"))
            elif family == LATENCY:
                latency = counter
            elif family == INFERENCE:
                inference = counter
        yield events
        yield deliveries
        yield histogram(
            "hook_latency_seconds",
            "Seconds from an event's arrival to its labels' delivery",
            latency or Counter(LATENCY, {}),
            BUCKETS,
        )
        yield histogram(
            "hook_inference_seconds",
            "Seconds of model runs per image labeled (tiles and every model included)",
            inference or Counter(INFERENCE, {}),
            INFERENCE_BUCKETS,
        )
        yield from host_metrics.families(counters)

    def _liveness(self, now: float) -> Iterator[Metric]:
        """What an alert on a dead worker needs: workers by state, how long the task due
        longest has waited, and housekeeping's backlog of pictures past their time."""
        workers = GaugeMetricFamily(
            "hook_workers",
            "Worker processes by state (gone: silent for three heartbeats without stopping)",
            labels=["state"],
        )
        states = [beat.state_at(now) for beat in self.store.workers()]
        for state in WORKER_STATES:
            workers.add_metric([state], states.count(state))
        yield workers
        due = self.store.oldest_due(now)
        yield GaugeMetricFamily(
            "hook_oldest_due_seconds",
            "Seconds the queued task due longest has waited to be claimed (0: none is due)",
            value=0.0 if due is None else max(0.0, now - due),
        )
        yield GaugeMetricFamily(
            "hook_pictures_overdue",
            "Done tasks whose kept images are past HOOK_KEEP_PICTURES_HOURS, not yet dropped",
            value=self.store.pictures_overdue(now),
        )


def histogram(
    name: str, about: str, doc: Counter, bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    """A histogram family from a counter document of `observed` fields."""
    family = HistogramMetricFamily(name, about)
    buckets = [(f"{b:g}", doc.get(bucket_field(b))) for b in bounds]
    buckets.append(("+Inf", doc.get("count")))
    family.add_metric([], buckets, doc.get("sum"))
    return family


def exposition(store: TaskStore) -> bytes:
    """The Prometheus text exposition of the installation's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store))
    return generate_latest(registry)
