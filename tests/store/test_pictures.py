"""The store's annotated pictures on a real nx-27017: saved, read, replaced, purged, dropped;
the originals kept for them after labeling and dropped past their time; and the worker's
housekeeping purging both on its schedule."""

from __future__ import annotations

import pytest
from PIL import Image
from pymongo.database import Database

from hook.pictures.drawing import annotate
from hook.store import TaskStore
from hook.task import Status
from hook.worker.housekeeping import PURGE_SECONDS, Housekeeper
from tests.factories import DATA, FakeClock, make_event, make_settings

NOW = 1_800_000_000.0
KEEP = 24 * 3600.0
RETENTION = 7 * 86400.0


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    """A real annotated picture (about 60 KB), not a stand-in for one."""
    with Image.open(DATA / "person.jpg") as image:
        return annotate(image.convert("RGB"), image.size, [])


def done_task(store: TaskStore, seed: int) -> str:
    task_id, _ = store.enqueue(make_event(seed, n_images=2))
    assert store.claim("w#1", 30) is not None and store.complete(task_id, "w#1")
    return task_id


def test_saved_pictures_come_back_by_task_and_index(store: TaskStore, jpeg: bytes) -> None:
    store.save_picture("t1", 1, jpeg)
    store.save_picture("t1", 0, b"\xff\xd8 first")
    store.save_picture("t2", 0, b"\xff\xd8 other")
    assert store.picture("t1", 1) == jpeg
    assert store.picture("t1", 0) == b"\xff\xd8 first"
    assert store.picture_indexes("t1") == [0, 1]
    assert store.picture_indexes("t2") == [0]
    assert store.picture("t1", 2) is None and store.picture("nope", 0) is None
    assert store.picture_indexes("nope") == []


def test_a_picture_saved_again_replaces_the_first(
    store: TaskStore, db: Database, clock: FakeClock
) -> None:
    store.save_picture("t1", 0, b"first attempt")
    clock.now += 60
    store.save_picture("t1", 0, b"second attempt")
    assert store.picture("t1", 0) == b"second attempt"
    docs = list(db["pictures"].find({"task_id": "t1"}))
    assert len(docs) == 1
    assert docs[0]["_id"] == "t1:0" and docs[0]["index"] == 0
    assert docs[0]["created_at"] == NOW + 60  # its age counts from the newest


def test_purge_pictures_removes_those_made_before(store: TaskStore, clock: FakeClock) -> None:
    store.save_picture("old", 0, b"a")
    store.save_picture("old", 1, b"b")
    clock.now = NOW + 10
    store.save_picture("new", 0, b"c")
    assert store.purge_pictures(before=NOW + 10) == 2
    assert store.picture_indexes("old") == [] and store.picture("new", 0) == b"c"
    assert store.purge_pictures(before=NOW + 10) == 0


def test_drop_pictures_removes_every_picture_of_those_tasks(store: TaskStore) -> None:
    for task_id in ("a", "b", "c"):
        for index in range(3):
            store.save_picture(task_id, index, b"x")
    assert store.drop_pictures(["a", "c", "unknown"]) == 6
    assert store.drop_pictures([]) == 0
    assert [store.picture_indexes(t) for t in ("a", "b", "c")] == [[], [0, 1, 2], []]


def test_retention_purge_takes_a_purged_tasks_pictures(
    store: TaskStore, clock: FakeClock, jpeg: bytes
) -> None:
    old = done_task(store, 1)
    store.save_picture(old, 0, jpeg)
    store.save_picture(old, 1, jpeg)
    clock.now = NOW + 3600
    recent = done_task(store, 2)
    store.save_picture(recent, 0, jpeg)
    assert store.purge(before=NOW + 1) == 1
    assert store.get(old) is None and store.picture_indexes(old) == []
    assert store.picture_indexes(recent) == [0]


def keeper(store: TaskStore, clock: FakeClock, monotonic: FakeClock, keep: float) -> Housekeeper:
    return Housekeeper(
        store,
        lease_seconds=8,
        retention_seconds=RETENTION,
        max_attempts=3,
        keep_pictures_seconds=keep,
        report_attempts=5,
        clock=clock,
        monotonic=monotonic,
    )


def test_housekeeping_purges_pictures_past_keeping_on_its_schedule(
    store: TaskStore, clock: FakeClock, jpeg: bytes
) -> None:
    monotonic = FakeClock(1000.0)
    chores = keeper(store, clock, monotonic, KEEP)
    task_id = done_task(store, 1)
    store.save_picture(task_id, 0, jpeg)
    chores.run_due()  # the first run purges at once: nothing is old enough yet
    assert store.picture_indexes(task_id) == [0]

    clock.now = NOW + KEEP - 60
    store.save_picture(task_id, 1, jpeg)  # a later attempt's picture: younger
    clock.now = NOW + KEEP + 1
    monotonic.now += PURGE_SECONDS - 1  # an hour between purges: not yet
    chores.run_due()
    assert store.picture_indexes(task_id) == [0, 1]
    monotonic.now += 1
    chores.run_due()
    assert store.picture_indexes(task_id) == [1]  # past keeping, though its task is kept
    task = store.get(task_id)
    assert task is not None and task.status is Status.DONE


def test_with_pictures_off_housekeeping_removes_those_made_before(
    store: TaskStore, clock: FakeClock, jpeg: bytes
) -> None:
    chores = keeper(store, clock, FakeClock(1000.0), 0.0)
    store.save_picture("t1", 0, jpeg)  # made while pictures were on
    clock.now += 1
    assert chores.purge() == (0, 0, 0, 1)  # turned off: none is served any longer
    assert store.picture_indexes("t1") == []


def test_pictures_are_kept_a_day_unless_told() -> None:
    """The default lives in the settings table only; the worker gets it from there."""
    assert make_settings().keep_pictures_hours * 3600 == KEEP
    assert make_settings(HOOK_KEEP_PICTURES_HOURS="0").keep_pictures_hours == 0


def labeled_and_done(store: TaskStore, seed: int, keep: float) -> str:
    """A task labeled with its images kept `keep` seconds (0: not kept), then completed as the
    worker completes it."""
    task_id, _ = store.enqueue(make_event(seed, n_images=2))
    assert store.claim("w#1", 30) is not None
    assert store.save_result(task_id, "w#1", '{"labels": {}}', keep_images_for=keep)
    assert store.complete(task_id, "w#1", keep_images=keep > 0)
    return task_id


def test_a_labeled_tasks_originals_stay_until_its_pictures_until(
    store: TaskStore, clock: FakeClock
) -> None:
    """Kept past completion for the pictures, with the time they go on the task; without a
    keep time the completion deletes them as before."""
    kept, gone = labeled_and_done(store, 1, KEEP), labeled_and_done(store, 2, 0.0)
    sent = make_event(1, n_images=2).images
    assert [store.original(kept, n) for n in (0, 1)] == [image.data for image in sent]
    assert store.original(gone, 0) is None and store.original(kept, 2) is None
    task, other = store.get(kept), store.get(gone)
    assert task is not None and task.pictures_until == NOW + KEEP
    assert other is not None and other.pictures_until is None


def test_drop_kept_images_takes_only_done_tasks_past_their_time(
    store: TaskStore, clock: FakeClock, jpeg: bytes
) -> None:
    """With their pictures; a failed task keeps its images (it may be sent again) and one
    still in its time keeps both."""
    old = labeled_and_done(store, 1, 60.0)
    young = labeled_and_done(store, 2, KEEP)
    failed, _ = store.enqueue(make_event(3, n_images=1))
    assert store.claim("w#1", 30) is not None
    assert store.save_result(failed, "w#1", "{}", keep_images_for=60.0)
    assert store.fail(failed, "w#1", "callback answered 404")
    store.save_picture(old, 0, jpeg)
    store.save_picture(young, 0, jpeg)
    assert store.drop_kept_images(before=NOW + 61) == 1
    assert (store.original(old, 0), store.picture_indexes(old)) == (None, [])
    assert store.original(young, 0) is not None and store.picture_indexes(young) == [0]
    assert store.original(failed, 0) is not None
    task = store.get(old)
    assert task is not None and task.pictures_until is None and task.status is Status.DONE
    assert store.drop_kept_images(before=NOW + 61) == 0  # nothing left to do


def test_housekeeping_drops_kept_originals_and_all_of_them_when_pictures_go_off(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id = labeled_and_done(store, 1, KEEP)
    clock.now += 1
    assert keeper(store, clock, FakeClock(1000.0), KEEP).purge() == (0, 0, 0, 0)
    assert store.original(task_id, 0) is not None  # within its time
    keeper(store, clock, FakeClock(1000.0), 0.0).purge()  # turned off: none is kept now
    assert store.original(task_id, 0) is None
