"""TaskStore against a real nx-27017 server: ordering, leases, retries, failures, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import threading
from typing import Any, cast

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import AutoReconnect

from hook.store import TaskStore
from hook.task import Dropped, Status, Task
from tests.factories import FakeClock, make_event


def present(task: Task | None) -> Task:
    """The task the store was expected to hand out."""
    assert task is not None
    return task


def found(doc: dict[str, Any] | None) -> dict[str, Any]:
    assert doc is not None
    return doc


def test_enqueue_stores_task_and_images_apart(store: TaskStore, db: Database) -> None:
    task_id, created = store.enqueue(make_event(n_images=3))
    assert created
    doc = found(db.tasks.find_one({"_id": task_id}))
    assert doc["status"] == "queued" and doc["attempts"] == 0
    assert [i["key"] for i in doc["images"]] == [
        "2017-05-05T01:31:10.738647",
        "2017-05-05T01:31:11.738647",
        "2017-05-05T01:31:12.738647",
    ]
    assert not any("data" in i or "image_b64" in i for i in doc["images"])
    assert len(json.dumps(doc["payload_json"])) < 2000  # no image bytes in the task document
    images = store.load_images(present(store.get(task_id)))
    assert [len(b) for b in images] == [i["bytes"] for i in doc["images"]]
    assert images[0][:2] == b"\xff\xd8"


def test_same_event_twice_is_stored_once(store: TaskStore, db: Database) -> None:
    first, created = store.enqueue(make_event(seed=1, n_images=2))
    again, created_again = store.enqueue(make_event(seed=1, n_images=2))
    other, _ = store.enqueue(make_event(seed=2, n_images=2))
    assert created and not created_again and again == first and other != first
    assert db.tasks.count_documents({}) == 2
    assert db.images.count_documents({}) == 4


def test_concurrent_duplicates_race_to_one_task(store: TaskStore, db: Database) -> None:
    ev = make_event(seed=3, n_images=2)
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        results.append(store.enqueue(ev))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({task_id for task_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert db.tasks.count_documents({}) == 1
    assert db.images.count_documents({}) == 2  # the losers removed their image copies


def test_claim_takes_the_oldest_due_task_first(store: TaskStore, clock: FakeClock) -> None:
    ids = []
    for seed in range(3):
        ids.append(store.enqueue(make_event(seed=seed))[0])
        clock.now += 1
    claimed = [store.claim("w1", 30) for _ in range(3)]
    assert [t.id for t in claimed if t] == ids
    assert all(t and t.status == Status.RUNNING and t.attempts == 1 for t in claimed)
    first = present(claimed[0])
    assert first.lease_until == clock.now + 30 and first.lease_owner == "w1"
    assert store.claim("w1", 30) is None


def test_rescheduled_task_waits_for_its_time(store: TaskStore, clock: FakeClock) -> None:
    task_id, _ = store.enqueue(make_event())
    task = store.claim("w1", 30)
    assert task and task.id == task_id
    assert store.reschedule(task_id, "w1", clock.now + 10, "callback answered 503")
    assert store.claim("w1", 30) is None
    clock.now += 9.9
    assert store.claim("w1", 30) is None
    clock.now += 0.2
    again = store.claim("w1", 30)
    assert again and again.id == task_id and again.attempts == 2
    assert again.last_error == "callback answered 503"


def test_expired_lease_goes_back_to_the_queue(store: TaskStore, clock: FakeClock) -> None:
    task_id, _ = store.enqueue(make_event())
    assert store.claim("dead-worker", 30)
    clock.now += 29
    assert store.requeue_expired(max_attempts=5) == (0, 0)
    assert store.claim("w2", 30) is None
    clock.now += 2
    assert store.requeue_expired(max_attempts=5) == (1, 0)
    task = present(store.claim("w2", 30))
    assert task.id == task_id and task.attempts == 2 and "lease expired" in str(task.last_error)
    # the dead worker, back from the grave, can no longer touch the task
    assert not store.complete(task_id, "dead-worker")
    assert store.renew([task_id], "dead-worker", 30) == 0
    assert store.renew([task_id, "no-such-task"], "w2", 100) == 1
    clock.now += 50
    assert store.requeue_expired(max_attempts=5) == (0, 0)
    assert store.complete(task_id, "w2")
    assert present(store.get(task_id)).status == Status.DONE


def test_a_labeled_task_whose_last_lease_expired_gets_one_more_attempt_not_a_failure(
    store: TaskStore, clock: FakeClock
) -> None:
    """Its worker may have delivered it and died before the completion's batch was written:
    the stored labels are resent once more (the receiver drops the repeat by webhook-id) rather
    than the task failed and reported though delivered; past that one more, it fails."""
    task_id, _ = store.enqueue(make_event())
    for attempt in (1, 2):
        assert present(store.claim("w", 5)).attempts == attempt
        if attempt == 2:
            assert store.save_result(task_id, "w", '{"status":"success","labels":{}}')
        clock.now += 6
        store.requeue_expired(max_attempts=2)
    task = present(store.get(task_id))
    assert task.status == Status.QUEUED and task.result_json is not None and task.report is None
    assert present(store.claim("w", 5)).attempts == 3  # the one more: resends the labels
    clock.now += 6
    assert store.requeue_expired(max_attempts=2) == (0, 1)
    failed = present(store.get(task_id))
    assert failed.status == Status.FAILED and "lease expired" in str(failed.last_error)


def test_expired_lease_on_the_last_attempt_fails_the_task(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id, _ = store.enqueue(make_event())
    for _ in range(2):
        assert store.claim("w", 5)
        clock.now += 6
        store.requeue_expired(max_attempts=2)
    task = present(store.get(task_id))
    assert task.status == Status.FAILED
    assert "lease expired on attempt 2 of 2" in str(task.last_error)
    assert store.claim("w", 5) is None


def test_fail_keeps_the_reason_and_complete_drops_images(store: TaskStore, db: Database) -> None:
    bad, _ = store.enqueue(make_event(seed=1))
    good, _ = store.enqueue(make_event(seed=2))
    assert present(store.claim("w", 30)).id == bad
    assert present(store.claim("w", 30)).id == good
    assert store.fail(bad, "w", "callback answered 404: no such hook")
    assert store.complete(good, "w")
    failed = store.pending([Status.FAILED])
    assert [(t.id, t.last_error) for t in failed] == [(bad, "callback answered 404: no such hook")]
    assert store.load_images(present(store.get(good))) == []
    assert len(store.load_images(present(store.get(bad)))) == 1  # kept for an operator to look at
    assert not store.fail(good, "w", "too late")  # finished tasks stay finished
    assert present(store.get(good)).status == Status.DONE


def test_pending_lists_queued_and_running_by_next_run(store: TaskStore, clock: FakeClock) -> None:
    a, _ = store.enqueue(make_event(seed=1))
    clock.now += 1
    b, _ = store.enqueue(make_event(seed=2))
    clock.now += 1
    c, _ = store.enqueue(make_event(seed=3))
    store.claim("w", 30)  # a runs
    assert present(store.claim("w", 30)).id == b
    store.complete(b, "w")
    assert [t.id for t in store.pending()] == [a, c]
    assert [t.id for t in store.pending(limit=1)] == [a]
    summary = store.pending()[0].summary()
    assert summary["status"] == "running" and summary["image_count"] == 1
    assert summary["timestamps"] == ["2017-05-05T01:31:10.738647"]
    assert "payload_json" not in summary and "images" not in summary


def test_finished_tasks_sharing_a_time_are_listed_newest_first_every_time(
    store: TaskStore, clock: FakeClock
) -> None:
    """One completion batch gives its tasks one finished_at when no callback time is known; the
    "done" listing came out oldest first for such ties. Ties now go newest (last queued) first,
    the same on every call; an earlier finish goes after them all."""
    ids = [store.enqueue(make_event(seed=10 + n))[0] for n in range(5)]
    for task_id in ids:
        assert present(store.claim("w", 30)).id == task_id
    store.complete(ids[4], "w", finished_at=clock.now - 5)  # its callback answered earlier
    for task_id in ids[:4]:
        store.complete(task_id, "w")
    for _ in range(2):
        assert [t.id for t in store.pending([Status.DONE])] == [*ids[3::-1], ids[4]]
    assert present(store.get(ids[4])).finished_at == clock.now - 5


def test_stats_count_every_status(store: TaskStore) -> None:
    assert store.stats() == {"queued": 0, "running": 0, "done": 0, "failed": 0}
    ids = [store.enqueue(make_event(seed=s))[0] for s in range(4)]
    store.claim("w", 30)
    store.claim("w", 30)
    store.complete(ids[0], "w")
    store.claim("w", 30)
    store.fail(ids[2], "w", "x")
    assert store.stats() == {"queued": 1, "running": 1, "done": 1, "failed": 1}


def _claim_all(
    uri: str,
    db_name: str,
    worker: str,
    start: multiprocessing.synchronize.Event,
    out: multiprocessing.Queue,
) -> None:
    client: MongoClient = MongoClient(uri)
    store = TaskStore(client[db_name])
    start.wait()
    taken = []
    while (task := store.claim(worker, 300)) is not None:
        taken.append(task.id)
    out.put((worker, taken))
    client.close()


def test_four_processes_claim_400_tasks_each_exactly_once(
    mongo, db: Database, db_name: str
) -> None:
    store = TaskStore(db)
    store.ensure_indexes()
    db.tasks.insert_many(
        [
            {
                "_id": f"t{i:03d}",
                "status": "queued",
                "attempts": 0,
                "dedup_key": f"k{i}",
                "callback_url": "https://camio.com/cb",
                "images": [],
                "created_at": i,
                "run_at": i,
            }
            for i in range(400)
        ]
    )
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_all, args=(mongo.uri, db_name, f"w{n}", start, out))
        for n in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    taken = [task_id for _, result in results for task_id in result]
    assert len(taken) == 400
    assert sorted(taken) == [f"t{i:03d}" for i in range(400)]
    assert sum(1 for _, r in results if r) >= 2  # the claims really did interleave
    owners = {doc["_id"]: doc["lease_owner"] for doc in db.tasks.find({}, {"lease_owner": 1})}
    for worker, result in results:
        assert all(owners[task_id] == worker for task_id in result)


def test_release_gives_a_task_back_without_counting_the_attempt(store: TaskStore) -> None:
    task_id, _ = store.enqueue(make_event())
    assert present(store.claim("w1", 30)).attempts == 1
    assert not store.release(task_id, "w2")
    assert store.release(task_id, "w1")
    again = present(store.claim("w2", 30))
    assert again.id == task_id and again.attempts == 1


def test_purge_removes_old_finished_tasks_and_their_images(
    store: TaskStore, db: Database, clock: FakeClock
) -> None:
    old_done, _ = store.enqueue(make_event(seed=1))
    old_failed, _ = store.enqueue(make_event(seed=2))
    store.claim("w", 30)
    store.claim("w", 30)
    store.complete(old_done, "w")
    store.fail(old_failed, "w", "404")
    clock.now += 1000
    recent, _ = store.enqueue(make_event(seed=3))
    queued, _ = store.enqueue(make_event(seed=4))
    store.claim("w", 30)
    store.complete(recent, "w")
    assert store.purge(before=clock.now - 500) == 2
    assert {doc["_id"] for doc in db.tasks.find()} == {recent, queued}
    assert db.images.count_documents({"task_id": old_failed}) == 0
    assert db.images.count_documents({"task_id": queued}) == 1
    assert store.purge(before=clock.now - 500) == 0


class _LostReply:
    """Fault injection at the driver boundary: the insert lands (or not), its answer is lost."""

    def __init__(self, collection: Collection, *, lands: bool) -> None:
        self.collection, self.lands = collection, lands

    def insert_one(self, doc: dict[str, Any]) -> None:
        if self.lands:
            self.collection.insert_one(doc)
        raise AutoReconnect("connection closed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)


def test_a_lost_answer_to_a_landed_insert_keeps_the_task_and_images(
    store: TaskStore, db: Database
) -> None:
    real = store.tasks
    store.tasks = cast(Collection, _LostReply(real, lands=True))
    task_id, created = store.enqueue(make_event(seed=9, n_images=2))
    store.tasks = real
    assert created and found(real.find_one({"_id": task_id}))["status"] == "queued"
    assert len(store.load_images(present(store.get(task_id)))) == 2


def test_a_failed_insert_leaves_orphans_that_purge_removes(
    store: TaskStore, db: Database, clock: FakeClock
) -> None:
    real = store.tasks
    store.tasks = cast(Collection, _LostReply(real, lands=False))
    with pytest.raises(AutoReconnect):
        store.enqueue(make_event(seed=10, n_images=2))
    store.tasks = real
    assert db.tasks.count_documents({}) == 0 and db.images.count_documents({}) == 2
    kept, _ = store.enqueue(make_event(seed=11))
    assert store.purge_orphans(before=clock.now - 10) == 0  # too recent: may still be arriving
    clock.now += 100
    assert store.purge_orphans(before=clock.now - 10) == 2
    assert (
        db.images.count_documents({}) == 1 and len(store.load_images(present(store.get(kept)))) == 1
    )


def test_a_failed_event_sent_again_is_queued_again_with_its_history(
    store: TaskStore, db: Database, clock: FakeClock
) -> None:
    ev = make_event(seed=7, n_images=2)
    task_id, _ = store.enqueue(ev)
    claimed = store.claim("w1", 60)
    assert claimed is not None and claimed.id == task_id
    assert store.fail(task_id, "w1", "callback answered 404: no such hook")
    db.images.delete_many({"task_id": task_id})  # as retention or an operator may have
    clock.now += 5
    again, queued = store.enqueue(ev)
    assert again == task_id and queued
    task = store.claim("w2", 60)
    assert task is not None and task.id == task_id and task.attempts == 1  # a new series
    assert len(store.load_images(task)) == 2  # its images are back
    assert task.last_error is None and task.finished_at is None
    assert len(task.history) == 1 and "after 1 attempt(s): callback answered 404" in task.history[0]
    assert task.summary()["history"] == list(task.history)
    _, queued_twice = store.enqueue(ev)  # now pending: an ordinary duplicate
    assert not queued_twice
    assert db.tasks.count_documents({}) == 1 and db.images.count_documents({}) == 2


def test_a_task_given_back_for_later_is_not_due_before_and_keeps_its_attempts(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id, _ = store.enqueue(make_event(seed=9))
    first = store.claim("w1", 60)
    assert first is not None and first.attempts == 1
    assert store.release(task_id, "w1", run_at=clock.now + 5)
    assert store.claim("w2", 60) is None  # not due yet
    clock.now += 6
    again = store.claim("w2", 60)
    assert again is not None and again.id == task_id and again.attempts == 1  # not counted


def test_the_labels_are_kept_with_when_and_what_the_rules_dropped(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id, _ = store.enqueue(make_event())
    assert store.claim("w", 30)
    clock.now += 2
    dropped = [Dropped("2017-05-05T01:31:10.738647", "car", 0.41, "min_score 0.5")]
    assert store.save_result(task_id, "w", '{"status":"success"}', dropped)
    assert not store.save_result(task_id, "other", "{}")  # not its lease
    task = present(store.get(task_id))
    assert task.result_json == '{"status":"success"}' and task.labeled_at == clock.now
    assert task.dropped == tuple(dropped)
