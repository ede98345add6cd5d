"""Delivery figures per callback host: outcomes and POST seconds, for /metrics and status.

A host is the callback URL's host and port (`www.camio.com:443`), never its path or query,
which may carry a receiver's tokens. The first MAX_HOSTS hosts the installation delivers to
are counted under their own name, every later one under `other` (a wildcard allow-list entry
admits any number of subdomains). Which hosts are admitted is decided once, atomically, by the
store, and remembered by each process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from hook.callbacks.hosts import port_of
from hook.store import Counter, TaskStore

HOST = "host"  # counter keys: "host|www.camio.com:443"
ADMITTED = "hosts"  # the counter document listing the hosts counted under their own name
MAX_HOSTS = 50
OTHER = "other"
OUTCOMES = ("delivered", "retried", "refused", "gave_up")
#: Seconds one callback POST took (all of it: redirects, a timeout's wait).
POST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_REMEMBERED = 1000  # hosts a process remembers the admission of (then it asks again)


def bucket_field(bound: float) -> str:
    """A histogram bucket's field in a counter document: le_0_25 for 0.25."""
    return "le_" + f"{bound:g}".replace(".", "_")


def host_of(url: str) -> str:
    """`host:port` of a callback URL, IPv6 in brackets; `other` if it does not parse."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").removesuffix("."), port_of(parts)
    except ValueError:
        return OTHER
    if not host:
        return OTHER
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def amounts(outcome: str, seconds: float) -> dict[str, float]:
    """What one delivery adds to its host's counter: its outcome and its POST's seconds."""
    fields: dict[str, float] = {outcome: 1, "count": 1, "sum": seconds}
    for bound in POST_BUCKETS:
        if seconds <= bound:
            fields[bucket_field(bound)] = 1
    return fields


class Admissions:
    """One process's memory of which hosts are counted under their own name."""

    def __init__(self, cap: int = MAX_HOSTS) -> None:
        self.cap = cap
        self.known: dict[str, str] = {}

    def label(self, store: TaskStore, host: str) -> str:
        """`host` itself if it is among the installation's first `cap` hosts, else `other`."""
        if host not in self.known:
            if len(self.known) >= _REMEMBERED:
                self.known.clear()
            admitted = host != OTHER and store.admit(ADMITTED, host, self.cap)
            self.known[host] = host if admitted else OTHER
        return self.known[host]


def families(counters: Iterable[Counter]) -> Iterator[Metric]:
    """hook_host_deliveries_total{host,outcome} and hook_host_delivery_seconds{host}."""
    hosts = _by_host(counters)
    deliveries = CounterMetricFamily(
        "hook_host_deliveries",
        "Deliveries per receiving host (host:port), labels and failure reports, by outcome",
        labels=["host", "outcome"],
    )
    seconds = HistogramMetricFamily(
        "hook_host_delivery_seconds",
        "Seconds one callback POST took, per callback host",
        labels=["host"],
    )
    for host, doc in hosts:
        for outcome in OUTCOMES:
            deliveries.add_metric([host, outcome], doc.get(outcome))
        buckets = [(f"{b:g}", doc.get(bucket_field(b))) for b in POST_BUCKETS]
        buckets.append(("+Inf", doc.get("count")))
        seconds.add_metric([host], buckets, doc.get("sum"))
    yield deliveries
    yield seconds


@dataclass(frozen=True)
class HostFigures:
    """One callback host's deliveries, as the status report shows them."""

    host: str
    delivered: int
    retried: int
    refused: int
    gave_up: int
    mean_seconds: float | None  # of every POST, whatever its outcome
    p90_seconds: float | None  # estimated from the histogram's buckets
    last_outcome: str | None
    last_at: float | None  # epoch seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def figures(counters: Iterable[Counter]) -> list[HostFigures]:
    """Per host, the most recently failing first, then the rest by name; `other` last."""
    rows = [_figures(host, doc) for host, doc in _by_host(counters)]
    return sorted(rows, key=_order)


def _order(row: HostFigures) -> tuple[bool, bool, float, str]:
    failing = row.last_outcome not in (None, "delivered")
    return row.host == OTHER, not failing, -(row.last_at or 0) if failing else 0, row.host


def _figures(host: str, doc: Counter) -> HostFigures:
    count = doc.get("count")
    last = max(OUTCOMES, key=lambda o: doc.get(f"last_{o}_at"))
    last_at = doc.get(f"last_{last}_at") or None
    return HostFigures(
        host,
        delivered=int(doc.get("delivered")),
        retried=int(doc.get("retried")),
        refused=int(doc.get("refused")),
        gave_up=int(doc.get("gave_up")),
        mean_seconds=doc.get("sum") / count if count else None,
        p90_seconds=quantile(0.9, doc) if count else None,
        last_outcome=last if last_at else None,
        last_at=last_at,
    )


def quantile(q: float, doc: Counter) -> float:
    """The q-quantile of a host's POST seconds, interpolated within its bucket (as Prometheus'
    histogram_quantile does); the highest bound when it lies beyond it."""
    rank, below, lower = q * doc.get("count"), 0.0, 0.0
    for bound in POST_BUCKETS:
        upto = doc.get(bucket_field(bound))
        if upto >= rank:
            inside = upto - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        below, lower = upto, bound
    return POST_BUCKETS[-1]


def _by_host(counters: Iterable[Counter]) -> list[tuple[str, Counter]]:
    found = []
    for counter in counters:
        family, _, host = counter.key.partition("|")
        if family == HOST:
            found.append((host, counter))
    return found
