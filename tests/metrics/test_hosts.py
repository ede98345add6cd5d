"""Delivery figures per callback host: the host of a URL, what a delivery adds, the Prometheus
families, the status report's figures, and the cap on hosts (against nx-27017)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from pymongo.database import Database

from hook.metrics.hosts import (
    HOST,
    OTHER,
    Admissions,
    amounts,
    families,
    figures,
    host_of,
    quantile,
)
from hook.store import Counter, TaskStore


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.camio.com/api/callbacks/abc123?token=s3cret", "www.camio.com:443"),
        ("http://WWW.Camio.COM./cb", "www.camio.com:80"),
        ("https://hooks.camio.com:8443/x#frag", "hooks.camio.com:8443"),
        ("http://127.0.0.1:8101/cb/s3cret", "127.0.0.1:8101"),
        ("http://[::1]:8101/cb", "[::1]:8101"),
        ("https://[2001:db8::1]/cb", "[2001:db8::1]:443"),
        ("http://127.0.0.1:99999/cb", OTHER),  # a port that does not parse
        ("not a url", OTHER),
    ],
)
def test_the_host_is_host_and_port_only(url: str, host: str) -> None:
    assert host_of(url) == host


def test_a_delivery_adds_its_outcome_and_its_seconds_to_the_buckets_it_fits() -> None:
    assert amounts("retried", 0.3) == {
        "retried": 1,
        "count": 1,
        "sum": 0.3,
        "le_0_5": 1,
        "le_1": 1,
        "le_2_5": 1,
        "le_5": 1,
        "le_10": 1,
        "le_30": 1,
    }
    assert amounts("delivered", 45.0) == {"delivered": 1, "count": 1, "sum": 45.0}  # only +Inf


def counter(host: str, *seconds_and_outcomes: tuple[float, str], at: float = 100.0) -> Counter:
    values: dict[str, float] = {}
    for n, (seconds, outcome) in enumerate(seconds_and_outcomes):
        for key, add in amounts(outcome, seconds).items():
            values[key] = values.get(key, 0) + add
        values[f"last_{outcome}_at"] = at + n
    return Counter(f"{HOST}|{host}", values)


class Fixed(Collector):
    def __init__(self, counters: list[Counter]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        return families(self.counters)


def exposition(counters: list[Counter]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(counters))
    return generate_latest(registry).decode()


def test_the_families_by_host_and_outcome_with_a_histogram_per_host() -> None:
    text = exposition(
        [
            counter("a.camio.com:443", (0.04, "delivered"), (0.2, "delivered")),
            counter("b.camio.com:8443", (12.0, "retried"), (0.1, "refused")),
            Counter("deliveries|delivered", {"n": 2}),  # other families are not theirs
            Counter("hosts", {"n": 2}),
        ]
    )
    assert "# TYPE hook_host_deliveries_total counter" in text
    assert "# TYPE hook_host_delivery_seconds histogram" in text
    for row in [
        'hook_host_deliveries_total{host="a.camio.com:443",outcome="delivered"} 2.0',
        'hook_host_deliveries_total{host="a.camio.com:443",outcome="retried"} 0.0',
        'hook_host_deliveries_total{host="a.camio.com:443",outcome="gave_up"} 0.0',
        'hook_host_deliveries_total{host="b.camio.com:8443",outcome="retried"} 1.0',
        'hook_host_deliveries_total{host="b.camio.com:8443",outcome="refused"} 1.0',
        'hook_host_delivery_seconds_bucket{host="a.camio.com:443",le="0.05"} 1.0',
        'hook_host_delivery_seconds_bucket{host="a.camio.com:443",le="0.25"} 2.0',
        'hook_host_delivery_seconds_bucket{host="a.camio.com:443",le="+Inf"} 2.0',
        'hook_host_delivery_seconds_bucket{host="b.camio.com:8443",le="10"} 1.0',
        'hook_host_delivery_seconds_bucket{host="b.camio.com:8443",le="30"} 2.0',
        'hook_host_delivery_seconds_count{host="b.camio.com:8443"} 2.0',
        'hook_host_delivery_seconds_sum{host="b.camio.com:8443"} 12.1',
    ]:
        assert row in text, row
    assert 'host="hosts"' not in text and "deliveries|" not in text


def test_no_host_yet_is_two_empty_families() -> None:
    text = exposition([])
    assert "# TYPE hook_host_deliveries_total counter" in text
    assert "hook_host_deliveries_total{" not in text and "hook_host_delivery_seconds_" not in text


def test_quantiles_interpolate_within_their_bucket() -> None:
    doc = counter("a:443", *[(0.07, "delivered")] * 8, *[(3.0, "retried")] * 2)
    assert quantile(0.5, doc) == pytest.approx(0.05 + 0.05 * (5 / 8))  # in (0.05, 0.1]
    assert quantile(0.9, doc) == pytest.approx(2.5 + 2.5 * (1 / 2))  # in (2.5, 5]
    slow = counter("b:443", (45.0, "retried"))
    assert quantile(0.9, slow) == 30.0  # past the last bound: that bound, as Prometheus says


def test_figures_list_the_most_recently_failing_hosts_first_and_other_last() -> None:
    rows = figures(
        [
            counter("fine.camio.com:443", (0.1, "delivered"), at=500),
            counter(OTHER, (0.1, "refused"), at=900),
            counter("old.camio.com:443", (0.1, "delivered"), (1.0, "retried"), at=100),
            counter("down.camio.com:443", (0.1, "delivered"), (2.0, "gave_up"), at=300),
            counter("b-fine.camio.com:443", (0.3, "delivered"), at=600),
        ]
    )
    assert [r.host for r in rows] == [
        "down.camio.com:443",
        "old.camio.com:443",
        "b-fine.camio.com:443",
        "fine.camio.com:443",
        OTHER,
    ]
    down = rows[0]
    assert (down.delivered, down.retried, down.refused, down.gave_up) == (1, 0, 0, 1)
    assert down.last_outcome == "gave_up" and down.last_at == 301
    assert down.mean_seconds == pytest.approx(1.05)
    assert rows[3].last_outcome == "delivered" and rows[3].p90_seconds is not None


def test_admissions_cap_the_hosts_counted_by_name(db: Database) -> None:
    store = TaskStore(db)
    first, second = Admissions(cap=2), Admissions(cap=2)  # two processes
    assert first.label(store, "a:443") == "a:443"
    assert second.label(store, "b:443") == "b:443"
    assert first.label(store, "c:443") == OTHER and second.label(store, "c:443") == OTHER
    assert second.label(store, "a:443") == "a:443"  # admitted by the other process
    assert first.label(store, OTHER) == OTHER  # a host that did not parse takes no place
    assert first.known == {"a:443": "a:443", "c:443": OTHER, OTHER: OTHER}  # asked only once
