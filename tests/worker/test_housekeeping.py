"""Housekeeping against the real store on nx-27017: what each chore removes, and when."""

from __future__ import annotations

import pytest
from bson import Binary
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from hook.store import TaskStore
from hook.task import ReportState, Status, Target
from hook.worker.housekeeping import FORGET_WORKERS_SECONDS, PURGE_SECONDS, Housekeeper
from tests.factories import FakeClock, make_event
from tests.loopback import free_port

NOW = 1_800_000_000.0
KEEP = 24 * 3600.0  # pictures, as HOOK_KEEP_PICTURES_HOURS' default
RETENTION = 7 * 86400.0


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def keeper(store: TaskStore, clock: FakeClock, monotonic: FakeClock) -> Housekeeper:
    return Housekeeper(
        store,
        lease_seconds=8,
        retention_seconds=RETENTION,
        max_attempts=3,
        keep_pictures_seconds=KEEP,
        report_attempts=5,
        clock=clock,
        monotonic=monotonic,
    )


def status_of(store: TaskStore, task_id: str) -> Status | None:
    task = store.get(task_id)
    return None if task is None else task.status


def claimed_id(store: TaskStore, owner: str) -> str | None:
    task = store.claim(owner, 8)
    return None if task is None else task.id


def test_expired_leases_are_swept_when_due(
    store: TaskStore, keeper: Housekeeper, clock: FakeClock, monotonic: FakeClock
) -> None:
    first, _ = store.enqueue(make_event(1))
    second, _ = store.enqueue(make_event(2))
    assert claimed_id(store, "dead#1") == first
    clock.now += 5
    assert claimed_id(store, "dead#2") == second
    clock.now += 5  # the first lease ran out (its worker died), the second has 3 s left
    keeper.run_due()
    task = store.get(first)
    assert task is not None and task.status is Status.QUEUED
    assert task.last_error == "lease expired: the worker died or hung"
    assert status_of(store, second) is Status.RUNNING

    clock.now += 5  # now the second's too
    monotonic.now += 1  # a sweep every lease/4 = 2 s: not yet
    keeper.run_due()
    assert status_of(store, second) is Status.RUNNING
    monotonic.now += 1
    keeper.run_due()
    assert status_of(store, second) is Status.QUEUED


def test_purge_removes_what_is_past_keeping(
    store: TaskStore, keeper: Housekeeper, db: Database, clock: FakeClock, monotonic: FakeClock
) -> None:
    old, _ = store.enqueue(make_event(1))
    assert store.claim("w#1", 30) is not None and store.complete(old, "w#1")
    db["images"].insert_one(
        {"_id": "ghost:0", "task_id": "ghost", "index": 0, "data": Binary(b"x"), "created_at": NOW}
    )  # an enqueue that failed
    db["workers"].insert_one({"_id": "gone", "seen_at": NOW})  # a worker's last heartbeat
    keeper.run_due()  # the first run purges at once: nothing is old enough yet
    assert status_of(store, old) is Status.DONE
    assert db["images"].count_documents({"task_id": "ghost"}) == 1
    assert db["workers"].count_documents({"_id": "gone"}) == 1

    clock.now = NOW + FORGET_WORKERS_SECONDS
    recent, _ = store.enqueue(make_event(2))
    assert store.claim("w#2", 30) is not None and store.complete(recent, "w#2")
    clock.now = NOW + RETENTION + 1  # the first task is past retention, the second is not
    monotonic.now += PURGE_SECONDS - 1  # an hour between purges: not yet
    keeper.run_due()
    assert status_of(store, old) is Status.DONE
    monotonic.now += 1
    keeper.run_due()
    assert status_of(store, old) is None and status_of(store, recent) is Status.DONE
    assert db["images"].count_documents({"task_id": "ghost"}) == 0
    assert db["workers"].count_documents({"_id": "gone"}) == 0


def test_a_failed_chore_stays_due(keeper: Housekeeper, monotonic: FakeClock) -> None:
    client: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200
    )
    down = Housekeeper(
        TaskStore(client["nowhere"]),
        lease_seconds=8,
        retention_seconds=RETENTION,
        max_attempts=3,
        keep_pictures_seconds=KEEP,
        report_attempts=5,
        monotonic=monotonic,
    )
    with pytest.raises(PyMongoError):
        down.run_due()
    assert down.next_sweep <= monotonic.now and down.next_purge <= monotonic.now


def test_a_dead_senders_report_comes_back_even_where_reporting_is_off(
    store: TaskStore, keeper: Housekeeper, clock: FakeClock
) -> None:
    task_id, _ = store.enqueue(make_event(7))
    assert claimed_id(store, "w#1") == task_id
    assert store.fail(task_id, "w#1", "callback answered 404", report=(Target.FAILURE_URL,))
    assert store.claim_report("sender#1", 5) is not None  # then that sender died
    clock.now += 6
    assert keeper.report == ()  # this worker does not send reports itself
    keeper.run_due()
    task = store.get(task_id)
    assert task is not None and task.report is not None
    assert task.report.state is ReportState.DUE  # for a worker that sends them
