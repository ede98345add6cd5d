"""A task's result document: the labels as sent, what the rules dropped, the pictures kept."""

from __future__ import annotations

import json

from pymongo.database import Database

from hook.result import result
from hook.store import TaskStore
from hook.task import Dropped
from tests.factories import make_event

BODY = {
    "status": "success",
    "labels": {"2017-05-05T01:31:10.738647": {"dog": {"probability": 0.9}}},
}


def test_a_delivered_task_shows_its_labels_times_and_pictures(db: Database) -> None:
    store = TaskStore(db)
    task_id, _ = store.enqueue(make_event(n_images=2))
    assert store.claim("w", 30)
    dropped = [Dropped("2017-05-05T01:31:11.738647", "car", 0.4, "min_score 0.5")]
    assert store.save_result(task_id, "w", json.dumps(BODY), dropped)
    assert store.complete(task_id, "w")
    task = store.get(task_id)
    assert task is not None
    shown = result(task, pictures={1}, base=f"/tasks/KEY/{task_id}")
    assert shown["status"] == "done" and shown["labels"] == BODY["labels"]
    assert shown["times"]["arrived"] and shown["times"]["labeled"] and shown["times"]["delivered"]
    assert shown["times"]["failed"] is None and shown["times"]["next_run"] is None
    assert shown["dropped"] == [
        {
            "timestamp": "2017-05-05T01:31:11.738647",
            "label": "car",
            "score": 0.4,
            "why": "min_score 0.5",
        }
    ]
    first, second = shown["images"]
    assert first["picture"] is None and second["picture"] == f"/tasks/KEY/{task_id}/images/1.jpg"
    assert (first["timestamp"], first["width"], first["height"]) == (
        "2017-05-05T01:31:10.738647",
        64,
        48,
    )


def test_a_queued_task_has_no_labels_yet(db: Database) -> None:
    store = TaskStore(db)
    task_id, _ = store.enqueue(make_event())
    task = store.get(task_id)
    assert task is not None
    shown = result(task, pictures=set(), base="/x")
    assert shown["labels"] is None and shown["times"]["labeled"] is None
    assert shown["times"]["next_run"] is not None and shown["dropped"] == []
