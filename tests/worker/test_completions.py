"""hook.worker.completions against a real nx-27017: delivered jobs recorded done in batches, retried
while MongoDB is down, and the worker's buffered metrics written with them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from hook.metrics.recorder import Metrics
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.task import Status
from hook.worker.completions import BATCH, FLUSH_SECONDS, Completions
from hook.worker.job import Job
from tests.commands import Commands
from tests.factories import make_event
from tests.loopback import free_port

LEASE = 60.0
WAIT = 30.0  # generous: reaching it means the batch never went, not that it went slowly


class Told:
    """What `recorded` was told, by job (its claim's owner): True done, False lease lost, None
    not written; for a test to wait on."""

    def __init__(self) -> None:
        self.settled: dict[str, bool | None] = {}
        self.twice: list[str] = []  # owners told more than once: checked by wait_for
        self.changed = threading.Condition()

    def __call__(self, job: Job, done: bool | None) -> None:
        with self.changed:
            if job.owner in self.settled:
                self.twice.append(job.owner)
            self.settled[job.owner] = done
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> dict[str, bool | None]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.settled) >= count, timeout), (
                f"told of {len(self.settled)} of {count} jobs: {self.settled}"
            )
            assert self.twice == [], f"told more than once of {self.twice}"
            return dict(self.settled)


class Client:
    """A store on a client of its own whose commands are recorded."""

    def __init__(self, uri: str, db_name: str, *, timeout_ms: int = 20_000) -> None:
        self.commands = Commands()
        self.client: MongoClient = MongoClient(
            uri, event_listeners=[self.commands], serverSelectionTimeoutMS=timeout_ms
        )
        self.store = TaskStore(self.client[db_name])

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def counted(mongo: EmbeddedMongo, db: Database) -> Iterator[Client]:
    client = Client(mongo.uri, db.name)
    yield client
    client.close()


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    """An nx-27017 of this test's own, to stop and start again without troubling the others."""
    server = EmbeddedMongo(tmp_path / "nx", free_port())
    server.start()
    yield server
    server.stop()


def claimed_jobs(store: TaskStore, count: int, seed: int = 0) -> list[Job]:
    """`count` tasks enqueued and claimed as the worker does, a Job (own owner) for each."""
    for n in range(count):
        assert store.enqueue(make_event(seed=seed + n))[1]
    owners = [f"test#{n}" for n in range(count)]
    claimed = store.claim_many(owners, LEASE)
    assert len(claimed) == count
    return [Job(task, owner, time.monotonic()) for owner, task in claimed]


def running(completions: Completions) -> Completions:
    completions.start()
    return completions


def closed_in_time(completions: Completions, timeout: float = WAIT) -> None:
    """stop() returns (generous bound: a stop that hangs fails here)."""
    closer = threading.Thread(target=completions.stop, name="closer", daemon=True)
    closer.start()
    closer.join(timeout)
    assert not closer.is_alive(), "close() did not return"


def test_jobs_of_one_window_are_recorded_done_in_one_batch(counted: Client) -> None:
    """Ten jobs delivered within the window: one bulk update of the tasks and one delete of
    their images for all ten, each told DONE, each task done in the store."""
    store = counted.store
    jobs = claimed_jobs(store, 10)
    told = Told()
    completions = running(Completions(store, Metrics(store, buffered=True), told, window=1.0))
    try:
        updates = counted.commands.to("update", "tasks")
        deletes = counted.commands.to("delete", "images")
        for job in jobs:
            completions.add(job)
        settled = told.wait_for(len(jobs))
    finally:
        closed_in_time(completions)
    assert settled == {job.owner: True for job in jobs}
    assert counted.commands.to("update", "tasks") - updates == 1
    assert counted.commands.to("delete", "images") - deletes == 1
    for job in jobs:
        task = store.get(job.task.id)
        assert task is not None and task.status is Status.DONE


def test_a_full_batch_goes_without_waiting_out_the_window(counted: Client) -> None:
    """BATCH jobs waiting are written at once: told well before a minute's window is over."""
    store = counted.store
    jobs = claimed_jobs(store, BATCH)
    told = Told()
    completions = running(Completions(store, Metrics(store, buffered=True), told, window=60.0))
    try:
        for job in jobs:
            completions.add(job)
        settled = told.wait_for(BATCH, timeout=20)
    finally:
        closed_in_time(completions)
    assert set(settled.values()) == {True}


def test_a_lost_lease_is_told_lost_and_the_rest_done(counted: Client) -> None:
    """A job whose task was given back meanwhile is LOST (its task left queued), the others of
    its batch DONE."""
    store = counted.store
    jobs = claimed_jobs(store, 3)
    lost = jobs[1]
    assert store.release(lost.task.id, lost.owner)
    told = Told()
    completions = running(Completions(store, Metrics(store, buffered=True), told))
    try:
        for job in jobs:
            completions.add(job)
        settled = told.wait_for(len(jobs))
    finally:
        closed_in_time(completions)
    assert settled == {
        jobs[0].owner: True,
        lost.owner: False,
        jobs[2].owner: True,
    }
    task = store.get(lost.task.id)
    assert task is not None and task.status is Status.QUEUED


def test_a_stale_claim_and_the_new_claim_of_one_task_in_a_batch_are_told_apart(
    counted: Client,
) -> None:
    """The same task twice in one batch: a claim whose lease ran out (its task requeued and
    claimed again) and the new claim, both delivered within the window. Only the new claim
    holds the task: it is DONE, the stale one LOST."""
    store = counted.store
    [stale] = claimed_jobs(store, 1)
    store.tasks.update_one({"_id": stale.task.id}, {"$set": {"lease_until": time.time() - 1}})
    assert store.requeue_expired(max_attempts=5) == (1, 0)
    [(owner, task)] = store.claim_many(["again#1"], LEASE)
    assert task.id == stale.task.id
    fresh = Job(task, owner, time.monotonic())
    told = Told()
    completions = running(Completions(store, Metrics(store, buffered=True), told, window=1.0))
    try:
        completions.add(stale)
        completions.add(fresh)
        settled = told.wait_for(2)
    finally:
        closed_in_time(completions)
    assert settled == {fresh.owner: True, stale.owner: False}
    done = store.get(task.id)
    assert done is not None and done.status is Status.DONE


def retrying(caplog: pytest.LogCaptureFixture, timeout: float = WAIT) -> None:
    """Wait until Completions has said it will try the batch again."""
    deadline = time.monotonic() + timeout
    while not any("not recorded done yet" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the batch was never tried while MongoDB was down"
        time.sleep(0.05)


def test_a_batch_is_retried_while_mongodb_is_down_and_recorded_once_it_answers(
    own_mongo: EmbeddedMongo, caplog: pytest.LogCaptureFixture
) -> None:
    """MongoDB stopped under a batch: nobody is told anything while it is down; started
    again (same data, same port), the batch is recorded and each job told DONE."""
    caplog.set_level(logging.WARNING, logger="hook.worker.completions")
    client = Client(own_mongo.uri, "down", timeout_ms=300)
    try:
        store = client.store
        jobs = claimed_jobs(store, 4)
        told = Told()
        completions = running(Completions(store, Metrics(store, buffered=True), told, window=0.1))
        try:
            own_mongo.stop()
            for job in jobs:
                completions.add(job)
            retrying(caplog)
            assert told.settled == {}
            own_mongo.start()
            settled = told.wait_for(len(jobs))
        finally:
            closed_in_time(completions)
        assert settled == {job.owner: True for job in jobs}
        for job in jobs:
            task = store.get(job.task.id)
            assert task is not None and task.status is Status.DONE
    finally:
        client.close()


def test_closing_while_mongodb_is_down_tells_none_and_returns(
    own_mongo: EmbeddedMongo, caplog: pytest.LogCaptureFixture
) -> None:
    """Closed while its batch cannot be written: close() returns, each job is told None (not
    recorded), and the tasks are left running for their leases to bring back."""
    caplog.set_level(logging.WARNING, logger="hook.worker.completions")
    client = Client(own_mongo.uri, "down", timeout_ms=300)
    try:
        store = client.store
        jobs = claimed_jobs(store, 3)
        told = Told()
        completions = running(Completions(store, Metrics(store, buffered=True), told, window=0.1))
        own_mongo.stop()
        try:
            for job in jobs:
                completions.add(job)
            retrying(caplog)
        finally:
            closed_in_time(completions)
        assert told.settled == {job.owner: None for job in jobs}
        own_mongo.start()
        for job in jobs:
            task = store.get(job.task.id)
            assert task is not None and task.status is Status.RUNNING
            assert task.lease_owner == job.owner
    finally:
        client.close()


def counts(store: TaskStore) -> dict[str, float]:
    return {counter.key: counter.get("n") for counter in store.counted()}


def test_buffered_metrics_are_flushed_every_flush_seconds_in_one_round_trip(
    counted: Client,
) -> None:
    """Counts added to buffered Metrics reach the store while no job comes (within a few
    FLUSH_SECONDS; the bound is generous), all of them in one bulk update."""
    store = counted.store
    metrics = Metrics(store, buffered=True)
    before = counted.commands.to("update", "counters")
    for n in range(60):
        metrics.count("events", ("accepted", "rejected:images", "duplicate")[n % 3])
    assert counts(store) == {}  # buffered: nothing written yet
    completions = running(Completions(store, metrics, Told()))
    try:
        deadline = time.monotonic() + 10 * FLUSH_SECONDS
        while counts(store) != {
            "events|accepted": 20,
            "events|rejected:images": 20,
            "events|duplicate": 20,
        }:
            assert time.monotonic() < deadline, f"not flushed: {counts(store)}"
            time.sleep(0.05)
        assert counted.commands.to("update", "counters") - before == 1
    finally:
        closed_in_time(completions)


def test_close_flushes_the_metrics_that_wait(counted: Client) -> None:
    """Counts added just before close() are written by it, in one round trip."""
    store = counted.store
    metrics = Metrics(store, buffered=True)
    completions = running(Completions(store, metrics, Told()))
    before = counted.commands.to("update", "counters")
    for _ in range(25):
        metrics.count("deliveries", "delivered")
    metrics.observe_latency(0.3)
    closed_in_time(completions)
    assert counted.commands.to("update", "counters") - before == 1
    written = {counter.key: counter for counter in store.counted()}
    assert written["deliveries|delivered"].get("n") == 25
    assert written["latency"].get("count") == 1 and written["latency"].get("sum") == 0.3


def test_a_job_added_once_stopping_is_told_unwritten_at_once(counted: Client) -> None:
    """Too late for a batch: nothing would write it, so it is let go at once, to its lease."""
    store = counted.store
    (job,) = claimed_jobs(store, 1)
    told = Told()
    completions = running(Completions(store, Metrics(store, buffered=True), told))
    closed_in_time(completions)
    completions.add(job)
    assert told.wait_for(1, timeout=1) == {job.owner: None}
    task = store.get(job.task.id)
    assert task is not None and task.status is Status.RUNNING
