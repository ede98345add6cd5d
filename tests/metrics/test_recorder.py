"""hook.metrics.recorder.Metrics(buffered=True): adds wait in memory, go in one round trip,
and a flush MongoDB refused keeps them for the next."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from hook.metrics.recorder import Metrics, exposition
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.records import Heartbeat
from hook.store.round_trips import RoundTrips
from tests.factories import FakeClock, make_event
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


def test_the_figures_an_alert_on_a_dead_worker_needs(store: TaskStore, clock: FakeClock) -> None:
    """Workers by state, how long the task due longest has waited, pictures past their time,
    and the model's seconds per image: none of them was there to alert on."""
    for worker, state in (("a:1:x", "running"), ("a:2:y", "running"), ("a:3:z", "stopped")):
        store.beat(Heartbeat(worker, "a", 1, state, clock.now, 5.0, 0, 0))
    waiting, _ = store.enqueue(make_event(seed=1))
    clock.now += 30  # six beats of 5 s missed by all but the one beating again now
    store.beat(Heartbeat("a:1:x", "a", 1, "running", clock.now - 30, 5.0, 3, 1))
    text = exposition(store).decode()
    assert 'hook_workers{state="running"} 1.0' in text
    assert 'hook_workers{state="gone"} 1.0' in text and 'hook_workers{state="stopped"} 1.0' in text
    assert "hook_oldest_due_seconds 30.0" in text
    assert "hook_pictures_overdue 0.0" in text
    claimed = store.claim("w#1", 60)
    assert claimed is not None and claimed.id == waiting
    assert store.save_result(waiting, "w#1", "{}", keep_images_for=60)
    assert store.complete(waiting, "w#1", keep_images=True)
    clock.now += 61
    text = exposition(store).decode()
    assert "hook_oldest_due_seconds 0.0" in text and "hook_pictures_overdue 1.0" in text
    metrics = Metrics(store)
    metrics.observe_inference(0.08, 3)
    metrics.observe_inference(0.3, 1)
    text = exposition(store).decode()
    assert "hook_inference_seconds_count 4.0" in text
    assert 'hook_inference_seconds_bucket{le="0.1"} 3.0' in text
    assert 'hook_inference_seconds_bucket{le="0.5"} 4.0' in text
    assert "hook_inference_seconds_sum 0.54" in text
