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
EVENTS, DELIVERIES, LATENCY = "events", "deliveries", "latency"
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
        fields: dict[str, float] = {"count": 1, "sum": seconds}
        for bound in BUCKETS:
            if seconds <= bound:
                fields[bucket_field(bound)] = 1
        self._inc(LATENCY, fields)

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


def rejection_reason(field: str | None, status: int) -> str:
    """A low-cardinality reason: the field without list indices, or the status."""
    return _INDEX.sub("[]", field) if field else str(status)


class _Collector(Collector):
    """Reads the counters and task counts at scrape time."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily("hook_tasks", "Tasks in the queue by status", labels=["status"])
        for status, n in self.store.stats().items():
            tasks.add_metric([status], n)
        yield tasks
        events = CounterMetricFamily(
            "hook_events",
            "Events POSTed to the hook, by outcome and reason",
            labels=["outcome", "reason"],
        )
        deliveries = CounterMetricFamily(
            "hook_deliveries", "Label deliveries to callback URLs, by outcome", labels=["outcome"]
        )
        latency = None
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
        yield events
        yield deliveries
        histogram = HistogramMetricFamily(
            "hook_latency_seconds", "Seconds from an event's arrival to its labels' delivery"
        )
        doc = latency or Counter(LATENCY, {})
        buckets = [(f"{b:g}", doc.get(bucket_field(b))) for b in BUCKETS]
        buckets.append(("+Inf", doc.get("count")))
        histogram.add_metric([], buckets, doc.get("sum"))
        yield histogram
        yield from host_metrics.families(counters)


def exposition(store: TaskStore) -> bytes:
    """The Prometheus text exposition of the installation's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store))
    return generate_latest(registry)
