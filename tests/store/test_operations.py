"""The operator's verbs on the store, against the embedded MongoDB: retry_failed and forget."""

from __future__ import annotations

import json
import time

from pymongo.database import Database

from hook.store import TaskStore
from hook.store.base import HISTORY
from hook.store.operations import ForgetOutcome, RetryOutcome
from hook.task import Dropped, Status
from tests.factories import make_event

LABELS = json.dumps({"status": "success", "labels": {"2017-05-05T01:31:10.738647": {}}})


def failed_task(store: TaskStore, seed: int, *, labeled: bool = True, images: int = 2) -> str:
    """A task that failed for good on its first attempt, its labels stored if `labeled`."""
    task_id, _ = store.enqueue(make_event(seed=seed, n_images=images))
    claimed = store.claim("w1", 60)
    assert claimed is not None and claimed.id == task_id
    if labeled:
        dropped = [Dropped("2017-05-05T01:31:10.738647", "cat", 0.4, "min_score 0.5")]
        assert store.save_result(task_id, "w1", LABELS, dropped)
    assert store.fail(task_id, "w1", "callback answered 404: no such hook")
    return task_id


def seed_pictures(db: Database, task_id: str, count: int) -> None:
    store = TaskStore(db)
    for index in range(count):
        store.save_picture(task_id, index, b"jpeg")


def test_a_failed_task_is_queued_again_to_be_labeled_again(db: Database) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 1)
    seed_pictures(db, task_id, 2)
    before = time.time()
    report = store.retry_failed([task_id])
    assert [(e.task_id, e.outcome) for e in report.entries] == [(task_id, RetryOutcome.REQUEUED)]
    assert report.requeued == 1
    task = store.get(task_id)
    assert task is not None
    assert task.status is Status.QUEUED and task.attempts == 0 and task.run_at >= before
    assert task.result_json is None and task.labeled_at is None and task.dropped == ()
    assert task.last_error is None and task.finished_at is None
    (entry,) = task.history
    assert "after 1 attempt(s): callback answered 404: no such hook" in entry
    assert db.pictures.count_documents({"task_id": task_id}) == 0  # old boxes, new ones to come
    assert db.images.count_documents({"task_id": task_id}) == 2  # kept: labeled from them
    claimed = store.claim("w2", 60)
    assert claimed is not None and claimed.id == task_id and claimed.result_json is None


def test_each_id_is_reported_and_only_failed_tasks_change(db: Database) -> None:
    store = TaskStore(db)
    done_id, _ = store.enqueue(make_event(seed=10))
    assert store.claim("w1", 60) is not None
    assert store.complete(done_id, "w1")
    running_id, _ = store.enqueue(make_event(seed=11))
    assert store.claim("w1", 60) is not None
    failed = [failed_task(store, seed) for seed in (13, 14)]
    queued_id, _ = store.enqueue(make_event(seed=12))  # after them: failed_task claims first
    report = store.retry_failed([failed[0], done_id, running_id, queued_id, "nope", failed[1]])
    outcomes = [(e.task_id, e.outcome, e.status) for e in report.entries]
    assert outcomes == [
        (failed[0], RetryOutcome.REQUEUED, None),
        (done_id, RetryOutcome.NOT_FAILED, Status.DONE),
        (running_id, RetryOutcome.NOT_FAILED, Status.RUNNING),
        (queued_id, RetryOutcome.NOT_FAILED, Status.QUEUED),
        ("nope", RetryOutcome.UNKNOWN, None),
        (failed[1], RetryOutcome.REQUEUED, None),
    ]
    assert report.requeued == 2
    statuses = {t: store.get(t).status for t in (done_id, running_id, queued_id)}  # type: ignore[union-attr]
    assert statuses == {done_id: Status.DONE, running_id: Status.RUNNING, queued_id: Status.QUEUED}
    again = store.retry_failed([failed[0], failed[0]])  # named twice: retried once, then queued
    assert [(e.outcome, e.status) for e in again.entries] == [
        (RetryOutcome.NOT_FAILED, Status.QUEUED)
    ]


def test_all_failed_tasks_are_retried_when_none_are_named(db: Database) -> None:
    store = TaskStore(db)
    failed = {failed_task(store, seed, labeled=seed % 2 == 0) for seed in range(20, 24)}
    queued_id, _ = store.enqueue(make_event(seed=30))
    report = store.retry_failed(None)
    assert {e.task_id for e in report.entries} == failed and report.requeued == 4
    assert store.stats() == {"queued": 5, "running": 0, "done": 0, "failed": 0}
    assert store.retry_failed(None).entries == ()
    assert store.get(queued_id).history == ()  # type: ignore[union-attr]


def test_without_its_images_a_task_resends_its_labels_or_is_refused(db: Database) -> None:
    store = TaskStore(db)
    labeled = failed_task(store, 40)
    bare = failed_task(store, 41, labeled=False)
    db.images.delete_many({"task_id": {"$in": [labeled, bare]}})  # as if removed by hand
    seed_pictures(db, labeled, 2)
    report = store.retry_failed([labeled, bare])
    assert [e.outcome for e in report.entries] == [RetryOutcome.RESEND, RetryOutcome.IMAGES_GONE]
    assert [e.requeued for e in report.entries] == [True, False]
    resent = store.get(labeled)
    assert resent is not None and resent.status is Status.QUEUED
    assert resent.result_json == LABELS and resent.dropped  # sent as stored, nothing to relabel
    assert db.pictures.count_documents({"task_id": labeled}) == 2  # they still show those labels
    refused = store.get(bare)
    assert refused is not None and refused.status is Status.FAILED
    assert refused.last_error == "callback answered 404: no such hook" and refused.history == ()


def test_one_image_of_two_missing_counts_as_gone(db: Database) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 42, labeled=False)
    db.images.delete_one({"_id": f"{task_id}:1"})
    (entry,) = store.retry_failed([task_id]).entries
    assert entry.outcome is RetryOutcome.IMAGES_GONE


def test_a_failure_read_before_the_task_changed_is_not_requeued(db: Database) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 43)
    stale = db.tasks.find_one({"_id": task_id})
    assert stale is not None
    assert store.retry_failed([task_id]).requeued == 1
    assert store.claim("w2", 60) is not None
    assert store.fail(task_id, "w2", "callback answered 410: gone")  # a later, other failure
    assert not store._queue_again(stale)  # guarded on the failure it read
    task = store.get(task_id)
    assert task is not None and task.status is Status.FAILED
    assert task.last_error == "callback answered 410: gone"


def test_history_keeps_the_latest_failures(db: Database) -> None:
    store = TaskStore(db)
    task_id = failed_task(store, 44)
    for n in range(HISTORY + 2):
        assert store.retry_failed([task_id]).requeued == 1
        assert store.claim("w1", 60) is not None
        assert store.fail(task_id, "w1", f"failure {n}")
    task = store.get(task_id)
    assert task is not None and len(task.history) == HISTORY
    assert task.history[-1].endswith(f"failure {HISTORY}")


def test_forget_removes_tasks_images_and_pictures(db: Database) -> None:
    store = TaskStore(db)
    gone = failed_task(store, 50)
    kept = failed_task(store, 52)
    queued_id, _ = store.enqueue(make_event(seed=51, n_images=3))
    for task_id in (gone, kept):  # the queued one has none yet
        seed_pictures(db, task_id, 2)
    report = store.forget([gone, "nope", queued_id, gone])
    assert [(e.task_id, e.outcome, e.images, e.pictures) for e in report.entries] == [
        (gone, ForgetOutcome.REMOVED, 2, 2),
        ("nope", ForgetOutcome.UNKNOWN, 0, 0),
        (queued_id, ForgetOutcome.REMOVED, 3, 0),
    ]
    assert report.removed == 2
    for task_id in (gone, queued_id):
        assert store.get(task_id) is None
        assert db.images.count_documents({"task_id": task_id}) == 0
        assert db.pictures.count_documents({"task_id": task_id}) == 0
    assert store.get(kept) is not None  # the others untouched
    assert db.images.count_documents({"task_id": kept}) == 2
    assert db.pictures.count_documents({"task_id": kept}) == 2


def test_a_running_task_is_forgotten_only_when_forced(db: Database) -> None:
    store = TaskStore(db)
    task_id, _ = store.enqueue(make_event(seed=60))
    assert store.claim("w1", 60) is not None
    (entry,) = store.forget([task_id]).entries
    assert (entry.outcome, entry.worker) == (ForgetOutcome.RUNNING, "w1")
    assert store.get(task_id) is not None and db.images.count_documents({"task_id": task_id}) == 1
    (entry,) = store.forget([task_id], force=True).entries
    assert (entry.outcome, entry.images, entry.worker) == (ForgetOutcome.REMOVED, 1, "w1")
    assert store.get(task_id) is None
    # its worker, still at work, finds nothing to settle and changes nothing
    assert not store.save_result(task_id, "w1", LABELS)
    assert not store.complete(task_id, "w1") and not store.fail(task_id, "w1", "x")
    assert db.tasks.count_documents({"_id": task_id}) == 0
