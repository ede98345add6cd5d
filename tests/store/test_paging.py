"""The page's query: events filtered by camera, label and status, paged by id with cursors that
stay good; against nx-27017."""

from __future__ import annotations

from hook.store import TaskStore
from hook.task import Status
from tests.factories import event, parsed_event, worked_task


def fill(store: TaskStore, count: int) -> list[str]:
    """`count` labeled events, oldest first: cameras a/b in turn, 'dog' on every third."""
    ids = []
    for n in range(count):
        found = {"dog": 0.9, "cat": 0.6} if n % 3 == 0 else {"cat": 0.7}
        camera = "a" if n % 2 == 0 else "b"
        failure = "callback answered 500" if n % 4 == 1 else None
        ids.append(
            worked_task(store, event(1, seed=500 + n, camera=camera), found, failure=failure)
        )
    return ids


def walk_down(store: TaskStore, limit: int, **match: object) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = store.page(before=before, limit=limit, **match)  # type: ignore[arg-type]
        pages.append([t.id for t in page.tasks])
        if page.older is None:
            return pages
        before = page.older


def test_pages_go_down_through_every_event_and_back_up(store: TaskStore) -> None:
    ids = fill(store, 11)
    newest_first = list(reversed(ids))
    pages = walk_down(store, 4)
    assert pages == [newest_first[:4], newest_first[4:8], newest_first[8:]]
    assert walk_down(store, 4) == pages  # the same each time
    second = store.page(before=newest_first[3], limit=4)
    assert second.newer == newest_first[4]
    up = store.page(after=second.newer, limit=4)
    assert [t.id for t in up.tasks] == newest_first[:4] and up.newer is None
    last = store.page(before=newest_first[7], limit=4)
    assert last.older is None and last.newer == newest_first[8]
    back = store.page(after=last.newer, limit=4)
    assert [t.id for t in back.tasks] == newest_first[4:8]
    assert back.newer == newest_first[4] and back.older == newest_first[7]


def test_filters_by_camera_label_and_status(store: TaskStore) -> None:
    ids = fill(store, 12)
    dogs = [i for n, i in enumerate(ids) if n % 3 == 0]
    assert [t.id for t in store.page(label="dog").tasks] == list(reversed(dogs))
    b_dogs = [i for n, i in enumerate(ids) if n % 3 == 0 and n % 2 == 1]
    assert [t.id for t in store.page(label="dog", camera="b").tasks] == list(reversed(b_dogs))
    failed = [i for n, i in enumerate(ids) if n % 4 == 1]
    page = store.page(status=Status.FAILED, limit=2)
    assert [t.id for t in page.tasks] == list(reversed(failed))[:2]
    assert walk_down(store, 2, status=Status.FAILED)[-1] == [failed[0]]
    assert store.page(label="giraffe").tasks == ()
    doc = store.tasks.find_one({"_id": ids[0]})
    assert doc is not None and doc["labels"] == ["cat", "dog"]


def test_a_retried_task_loses_its_label_names(store: TaskStore) -> None:
    task_id = worked_task(store, event(1, seed=9), {"dog": 0.9}, failure="refused")
    assert store.page(label="dog").tasks[0].id == task_id
    assert store.retry_failed([task_id]).requeued == 1
    assert store.page(label="dog").tasks == ()


def test_events_labeled_before_get_their_label_names(store: TaskStore) -> None:
    """Tasks stored before the `labels` list existed are found by the label filter once
    housekeeping has given it to them, in batches; unlabeled ones are left as they are."""
    old = [worked_task(store, event(1, seed=40 + n), {"dog": 0.9, "cat": 0.4}) for n in range(5)]
    store.tasks.update_many({"_id": {"$in": old}}, {"$unset": {"labels": ""}})
    waiting, _ = store.enqueue(parsed_event(event(1, seed=50)))
    assert store.page(label="dog").tasks == ()
    assert store.backfill_labels(batch=2) == 5  # 2 + 2 + 1
    assert [t.id for t in store.page(label="dog").tasks] == list(reversed(old))
    assert "labels" not in (store.tasks.find_one({"_id": waiting}) or {})
    assert store.backfill_labels() == 0
