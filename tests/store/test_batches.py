"""hook.store.batches against a real nx-27017: claim_many, load_images_of and complete_many,
their round trips counted by hook.store.round_trips on the client's own command monitor."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.round_trips import RoundTrips
from hook.task import Status, Task
from tests.factories import FakeClock, image_bytes, make_event

LEASE = 60.0


@dataclass
class Counted:
    """A store over a client of its own whose commands are counted."""

    store: TaskStore
    trips: RoundTrips


@pytest.fixture
def counted(mongo: EmbeddedMongo, db: Database, clock: FakeClock) -> Iterator[Counted]:
    trips = RoundTrips()
    client: MongoClient = MongoClient(mongo.uri, event_listeners=[trips])
    try:
        yield Counted(TaskStore(client[db.name], clock=clock), trips)
    finally:
        client.close()


def queue(store: TaskStore, clock: FakeClock, count: int, *, first_seed: int = 0) -> list[str]:
    """`count` tasks, each due a second after the one before; their ids, first due first."""
    ids = []
    for n in range(count):
        task_id, created = store.enqueue(make_event(seed=first_seed + n))
        assert created
        ids.append(task_id)
        clock.now += 1
    return ids


def present(task: Task | None) -> Task:
    assert task is not None
    return task


def assert_as_stored(store: TaskStore, task: Task) -> None:
    """The Task handed out is the one the store holds: every field alike, the lease's end to
    within a millisecond (nx-27017's updates keep 15 significant digits of a float)."""
    stored = present(store.get(task.id))
    assert task.lease_until == pytest.approx(stored.lease_until, abs=1e-3)
    assert dataclasses.replace(task, lease_until=stored.lease_until) == stored


def test_claim_many_leases_each_due_task_to_its_own_owner_first_due_first(
    store: TaskStore, clock: FakeClock
) -> None:
    """Up to one task per owner, oldest run_at first, each running under its own owner with
    its attempt counted and a lease; what the call returns is what the store now holds."""
    ids = queue(store, clock, 5)
    owners = ["w#1", "w#2", "w#3"]
    claimed = store.claim_many(owners, LEASE)
    assert [owner for owner, _ in claimed] == owners
    assert [task.id for _, task in claimed] == ids[:3]
    for owner, task in claimed:
        assert task.status is Status.RUNNING and task.lease_owner == owner
        assert task.attempts == 1 and task.lease_until == clock.now + LEASE
        assert_as_stored(store, task)
    for left in ids[3:]:
        assert present(store.get(left)).status is Status.QUEUED


def test_claim_many_takes_fewer_when_fewer_are_due_and_none_when_none_is(
    store: TaskStore, clock: FakeClock
) -> None:
    """A task whose run_at is still ahead is not claimed; nothing due is []."""
    assert store.claim_many(["w#1", "w#2"], LEASE) == []
    [due, later] = queue(store, clock, 2)
    claimed = store.claim_many(["w#1"], LEASE)
    assert [task.id for _, task in claimed] == [due]
    owner, task = claimed[0]
    assert store.release(due, owner, run_at=clock.now + 30)  # due again in 30 s
    # `later` was enqueued at clock.now - 1: due; `due` is not due for 30 s
    claimed = store.claim_many(["w#2", "w#3", "w#4"], LEASE)
    assert [(o, t.id) for o, t in claimed] == [("w#2", later)]
    assert store.claim_many(["w#5"], LEASE) == []
    clock.now += 30
    [(owner, task)] = store.claim_many(["w#6", "w#7"], LEASE)
    assert (owner, task.id, task.attempts) == ("w#6", due, 1)  # the release did not count


def test_claimed_tasks_are_the_stored_ones_after_earlier_attempts(
    store: TaskStore, clock: FakeClock
) -> None:
    """A task claimed again after an earlier attempt (its labels stored, then rescheduled)
    comes back with the attempts, owner, labels and error the store holds."""
    [task_id] = queue(store, clock, 1)
    [(owner, _)] = store.claim_many(["a#1"], LEASE)
    assert store.save_result(task_id, owner, '{"labels": "first try"}')
    assert store.reschedule(task_id, owner, clock.now, "callback answered 503")
    [(again, task)] = store.claim_many(["a#2", "a#3"], LEASE)
    assert again == "a#2"
    assert task.attempts == 2 and task.result_json == '{"labels": "first try"}'
    assert task.last_error == "callback answered 503"
    assert_as_stored(store, task)


class Between(monitoring.CommandListener):
    """Runs `act` once, right after the next `find` on the tasks collection has its answer:
    in the middle of claim_many, between its read of the due tasks and its claim."""

    def __init__(self) -> None:
        self.act: Any = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name == "find" and self.act is not None:
            act, self.act = self.act, None
            act()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_a_claim_and_release_between_the_read_and_the_claim_is_not_overwritten(
    mongo: EmbeddedMongo, db: Database, store: TaskStore, clock: FakeClock
) -> None:
    """Another worker claims the task claim_many has just read, stores labels and gives it
    back: the stale update takes nothing (its claimed_at no longer matches), so no Task built
    from the old read (without those labels) is handed out; claim_many looks again at once
    and hands out the task as stored, labels and all, under its own first owner."""
    [task_id] = queue(store, clock, 1)
    between = Between()
    client: MongoClient = MongoClient(mongo.uri, event_listeners=[between])
    try:
        stale = TaskStore(client[db.name], clock=clock)

        def other_worker() -> None:
            clock.now += 0.5  # its claim is a moment later: another claimed_at
            task = present(store.claim("other", LEASE))
            assert store.save_result(task.id, "other", '{"labels": "other"}')
            assert store.release(task.id, "other")

        between.act = other_worker
        [(owner, task)] = stale.claim_many(["stale#1", "stale#2"], LEASE)
        assert between.act is None, "the other worker did not run in between"
        assert (owner, task.id) == ("stale#1", task_id)
        assert task.result_json == '{"labels": "other"}'
        assert task.attempts == 1  # the other's claim and release, then this claim alone
        assert_as_stored(store, task)
    finally:
        client.close()


def test_two_claimers_racing_take_every_task_exactly_once(
    mongo: EmbeddedMongo, db: Database
) -> None:
    """Two workers (a client each) claim batches of 4 as fast as they can from 80 tasks: no
    task is handed out twice and together they take all of them, each as the store holds it."""
    total = 80
    seeding = TaskStore(db)
    ids = {seeding.enqueue(make_event(seed=500 + n))[0] for n in range(total)}
    assert len(ids) == total
    taken: dict[str, list[tuple[str, Task]]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    clients: list[MongoClient] = [MongoClient(mongo.uri) for _ in taken]

    def claimer(name: str, client: MongoClient) -> None:
        store = TaskStore(client[db.name])
        claims = iter(range(10**6))
        deadline = time.monotonic() + 60
        try:
            start.wait()
            while time.monotonic() < deadline:
                owners = [f"{name}#{next(claims)}" for _ in range(4)]
                got = store.claim_many(owners, LEASE)
                taken[name].extend(got)
                if not got and store.stats().get(Status.QUEUED.value, 0) == 0:
                    return
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=claimer, args=pair) for pair in zip(taken, clients, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        for client in clients:
            client.close()
    assert not errors, errors
    claimed = [pair for pairs in taken.values() for pair in pairs]
    got_ids = [task.id for _, task in claimed]
    assert len(got_ids) == len(set(got_ids)), "a task was handed out twice"
    assert set(got_ids) == ids
    assert len({owner for owner, _ in claimed}) == total  # an owner per claim
    for owner, task in claimed:
        assert task.lease_owner == owner and task.attempts == 1
        assert_as_stored(seeding, task)


def test_load_images_of_reads_each_tasks_bytes_in_order_in_one_round_trip(
    counted: Counted, clock: FakeClock, db: Database
) -> None:
    """Several tasks' images in one query, each task's in its order; an image missing (deleted
    behind the store's back) is left out, the others kept in order."""
    store, trips = counted.store, counted.trips
    sent = {
        seed: [image_bytes(seed=seed * 10 + i) for i in range(count)]
        for seed, count in ((1, 3), (2, 1), (3, 2))
    }
    ids = {
        seed: store.enqueue(make_event(seed=seed, images=data))[0] for seed, data in sent.items()
    }
    [(_, broken)] = [(s, i) for s, i in ids.items() if s == 1]
    db.images.delete_one({"_id": f"{broken}:1"})  # the middle image of the first task
    tasks = [present(store.get(task_id)) for task_id in ids.values()]
    before = trips.count
    images = store.load_images_of(tasks)
    assert trips.count - before == 1
    assert images == {
        ids[1]: [sent[1][0], sent[1][2]],
        ids[2]: sent[2],
        ids[3]: sent[3],
    }


def test_complete_many_settles_all_held_in_two_round_trips(
    counted: Counted, clock: FakeClock, db: Database
) -> None:
    """Each task its owner holds is done, settled by that owner, its lease and images gone:
    one bulk update and one delete for the lot; each finished when its callback answered
    (the batch is written up to half a second later), or now when that is not known."""
    store, trips = counted.store, counted.trips
    ids = queue(store, clock, 3)
    claimed = store.claim_many(["w#1", "w#2", "w#3"], LEASE)
    assert len(claimed) == 3
    before = trips.count
    answered = [clock.now - 0.4, None, clock.now - 0.1]  # when each callback answered
    done = store.complete_many(
        [
            (task.id, owner, len(task.images), at)
            for (owner, task), at in zip(claimed, answered, strict=True)
        ]
    )
    assert trips.count - before == 2
    assert done == {(task.id, owner) for owner, task in claimed} and {t for t, _ in done} == set(
        ids
    )
    finished = {task.id: at or clock.now for (_, task), at in zip(claimed, answered, strict=True)}
    for task_id in ids:
        task = present(store.get(task_id))
        assert task.status is Status.DONE and task.lease_owner is None
        assert task.lease_until is None and task.finished_at == finished[task_id]
    assert db.images.count_documents({"task_id": {"$in": ids}}) == 0
    assert store.complete_many([]) == set()


def test_complete_many_leaves_a_lost_lease_to_its_new_owner_and_settles_the_rest(
    store: TaskStore, clock: FakeClock, db: Database
) -> None:
    """One task's lease ran out and another worker holds it now; another was given back: those
    two are not completed and keep their images, the others in the batch are done."""
    ids = queue(store, clock, 4)
    claimed = store.claim_many(["w#1", "w#2", "w#3", "w#4"], LEASE)
    by_id = {task.id: (owner, task) for owner, task in claimed}
    expired, released = ids[1], ids[2]
    # w#2's lease runs out and another worker re-claims it; w#3 gives its task back
    db.tasks.update_one({"_id": expired}, {"$set": {"lease_until": clock.now - 1}})
    assert store.requeue_expired(max_attempts=5) == (1, 0)
    assert store.release(released, by_id[released][0])
    clock.now += 1
    again = store.claim_many(["other#1"], LEASE)  # the first due of the two queued again
    assert [(o, t.id) for o, t in again] == [("other#1", expired)]
    done = store.complete_many([(t.id, o, len(t.images), None) for o, t in by_id.values()])
    assert done == {(ids[0], by_id[ids[0]][0]), (ids[3], by_id[ids[3]][0])}
    statuses = {task_id: present(store.get(task_id)) for task_id in ids}
    assert statuses[ids[0]].status is Status.DONE and statuses[ids[3]].status is Status.DONE
    assert statuses[expired].status is Status.RUNNING
    assert statuses[expired].lease_owner == "other#1"
    assert statuses[released].status is Status.QUEUED
    for task_id, images in ((ids[0], 0), (expired, 1), (released, 1), (ids[3], 0)):
        assert db.images.count_documents({"task_id": task_id}) == images, task_id
    # the new owner settles its claim in turn; the old owner's second try still does nothing
    assert store.complete_many([(expired, "other#1", 1, None)]) == {(expired, "other#1")}
    assert store.complete_many([(expired, "w#2", 1, None)]) == set()


def test_a_task_given_back_is_claimed_again_on_the_real_clock(db: Database) -> None:
    """The claimed_at guard compares the value read with the value stored: on the real clock
    (times with sub-microsecond digits, which nx-27017's updates round) a task given back or
    rescheduled is still claimed again, each time under its new owner."""
    store = TaskStore(db)
    task_id, _ = store.enqueue(make_event(seed=900))
    for n in range(1, 4):
        [(owner, task)] = store.claim_many([f"real#{n}"], LEASE)
        assert (owner, task.id, task.attempts) == (f"real#{n}", task_id, n)
        assert store.reschedule(task_id, owner, time.time(), f"try {n}")
    [(owner, task)] = store.claim_many(["real#4"], LEASE)
    assert store.release(task_id, owner)
    [(owner, task)] = store.claim_many(["real#5"], LEASE)
    assert owner == "real#5" and task.attempts == 4 and task.last_error == "try 3"
    assert_as_stored(store, task)


def test_complete_many_said_again_after_a_lost_answer_reports_the_same_tasks(
    store: TaskStore, clock: FakeClock, db: Database
) -> None:
    """Completions tries a batch again when MongoDB's answer did not come, though the write
    may have landed: the second call finds the tasks done by these very claims and reports
    them completed again, not lost; an owner that never held a task is not counted."""
    ids = queue(store, clock, 2)
    claims = [(t.id, o, len(t.images), None) for o, t in store.claim_many(["w#1", "w#2"], LEASE)]
    pairs = {(task_id, owner) for task_id, owner, *_ in claims}
    assert {task_id for task_id, _ in pairs} == set(ids)
    assert store.complete_many(claims) == pairs
    assert store.complete_many(claims) == pairs
    assert store.complete_many([(ids[0], "nobody", 1, None)]) == set()  # never held by it
    assert db.images.count_documents({"task_id": {"$in": ids}}) == 0
