"""hook.metrics.recorder.Metrics(buffered=True): adds wait in memory, go in one round trip,
and a flush MongoDB refused keeps them for the next."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from hook.metrics.recorder import Metrics
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.round_trips import RoundTrips
from tests.loopback import free_port


def test_buffered_adds_go_in_one_round_trip_and_survive_a_refused_flush(
    db: Database, mongo: EmbeddedMongo
) -> None:
    dead: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200
    )
    metrics = Metrics(TaskStore(dead["nowhere"]), buffered=True)
    for _ in range(5):
        metrics.count("events", "accepted")
    metrics.delivery("https://www.camio.com/cb", "delivered", 0.25, at=100.0, labels=True)
    metrics.flush()  # MongoDB does not answer: nothing is lost
    assert metrics.pending
    trips = RoundTrips()
    live = TaskStore(MongoClient(mongo.uri, event_listeners=[trips])[db.name])
    metrics.store, metrics.quiet_until = live, 0.0  # MongoDB is back
    before = trips.count
    metrics.flush()
    assert trips.count - before == 1 and not metrics.pending
    counted = {c.key: c for c in live.counted()}
    assert counted["events|accepted"].get("n") == 5
    assert counted["deliveries|delivered"].get("n") == 1
    dead.close()
