"""Settling against the real store on nx-27017: outcome or error in, the task's state out."""

from __future__ import annotations

import json
import logging
import time

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from hook.callbacks.post import Outcome, Verdict
from hook.metrics.hosts import Admissions
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Status, Task
from hook.worker.job import Job, Stage
from hook.worker.settling import Settlement, Settler, objects_summary
from tests.factories import CALLBACK, FakeClock, make_event
from tests.loopback import free_port
from tests.worker.support import Told

NOW = 1_800_000_000.0
POLICY = RetryPolicy(base=2.0, cap=600.0, max_attempts=3)
LABELS = {
    "status": "success",
    "labels": {
        "2017-05-05T01:31:10.738647": {
            "dog": {"probability": 0.9, "count": 2},
            "person": {"probability": 0.8, "count": 1},
        },
        "2017-05-05T01:31:11.738647": {"dog": {"probability": 0.7, "count": 1}},
    },
}


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def settler(store: TaskStore, clock: FakeClock, told: Told) -> Settler:
    return Settler(store, Metrics(store), POLICY, finished=told, clock=clock)


def claimed(store: TaskStore, *, attempt: int = 1, seed: int = 0, url: str = CALLBACK) -> Job:
    """A task claimed for its `attempt`-th time, its labels stored: as delivery finds it."""
    task_id, _ = store.enqueue(make_event(seed, n_images=2, callback_url=url))
    for n in range(1, attempt + 1):
        task = store.claim(f"w#{n}", 30)
        assert task is not None and task.id == task_id and task.attempts == n
        if n < attempt:
            store.reschedule(task_id, f"w#{n}", store.clock(), "an earlier failure")
    assert task is not None and store.save_result(task_id, f"w#{attempt}", json.dumps(LABELS))
    job = Job(task, f"w#{attempt}", time.monotonic())
    job.labeled(json.dumps(LABELS), keep_images=False)
    return job


def now_of(store: TaskStore, job: Job) -> Task:
    task = store.get(job.task.id)
    assert task is not None
    return task


def counted(store: TaskStore) -> dict[str, float]:
    """The delivery counters by outcome, and the latency's count and sum."""
    found = {}
    for c in store.counted():
        if c.key.startswith("deliveries|"):
            found[c.key.split("|")[1]] = c.get("n")
        elif c.key == "latency":
            found["latency count"], found["latency sum"] = c.get("count"), c.get("sum")
    return found


def test_delivered_completes_the_task_and_logs_its_objects(
    store: TaskStore,
    settler: Settler,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    told: Told,
) -> None:
    job = claimed(store)
    clock.now = NOW + 3  # three seconds from the event's arrival to its delivery
    with caplog.at_level(logging.INFO, logger="hook.worker.settling"):
        settler.delivery(job, Outcome(Verdict.DELIVERED, "callback answered 200"))
    assert told.of(job) is Settlement.DONE and job.stage is Stage.SETTLED
    assert told.count(job) == 1
    task = now_of(store, job)
    assert task.status is Status.DONE and task.last_error is None and task.lease_owner is None
    assert store.load_images(task) == []
    assert counted(store) == {"delivered": 1, "latency count": 1, "latency sum": 3}
    (line,) = [r.getMessage() for r in caplog.records if "done" in r.getMessage()]
    assert line.startswith(f"task {task.id} done: camera='front door' images=2 attempt 1, ")
    assert line.endswith("; objects: dog 3, person 1")  # objects, not images per label


def test_refused_fails_the_task_with_the_reason(
    store: TaskStore, settler: Settler, told: Told
) -> None:
    job = claimed(store)
    reason = 'callback answered 404: {"error": "no such hook"}'
    settler.delivery(job, Outcome(Verdict.REFUSED, reason))
    assert told.of(job) is Settlement.FAILED
    task = now_of(store, job)
    assert task.status is Status.FAILED and task.last_error == reason and task.attempts == 1
    assert counted(store) == {"refused": 1}


def test_retry_reschedules_with_the_policys_backoff(
    store: TaskStore, settler: Settler, told: Told
) -> None:
    job = claimed(store)
    outcome = Outcome(Verdict.RETRY, "callback answered 503: busy")
    settler.delivery(job, outcome)
    assert told.of(job) is Settlement.RESCHEDULED
    task = now_of(store, job)
    assert task.status is Status.QUEUED and task.lease_owner is None
    assert task.last_error == "callback answered 503: busy"
    assert NOW + 1 <= task.run_at <= NOW + 2  # attempt 1 of base 2: half fixed, half random
    assert task.result_json == json.dumps(LABELS)  # the next attempt resends these labels
    assert counted(store) == {"retried": 1}


@pytest.mark.parametrize(("asked", "waited"), [(300.0, 300.0), (10_000.0, 600.0)])
def test_retry_after_is_honoured_up_to_the_cap(
    store: TaskStore, settler: Settler, asked: float, waited: float, told: Told
) -> None:
    job = claimed(store)
    outcome = Outcome(Verdict.RETRY, "callback answered 429", retry_after=asked)
    settler.delivery(job, outcome)
    assert told.of(job) is Settlement.RESCHEDULED
    assert now_of(store, job).run_at == NOW + waited


def test_a_retry_on_the_last_attempt_gives_up(
    store: TaskStore, settler: Settler, told: Told
) -> None:
    job = claimed(store, attempt=3)
    outcome = Outcome(Verdict.RETRY, "callback answered 503")
    settler.delivery(job, outcome)
    assert told.of(job) is Settlement.FAILED
    task = now_of(store, job)
    assert task.status is Status.FAILED and task.attempts == 3
    assert task.last_error == "gave up after 3 attempts; last: callback answered 503"
    assert counted(store) == {"gave_up": 1}


def test_errors_settle_without_counting_a_delivery(
    store: TaskStore, settler: Settler, told: Told
) -> None:
    bad, broken = claimed(store, seed=1), claimed(store, seed=2)
    why = "image 0 (timestamp 2017-05-05T01:31:10.738647): image does not decode: OSError"
    settler.fail(bad, why)
    assert told.of(bad) is Settlement.FAILED
    settler.retry(broken, "unexpected error while labeling: X")
    assert told.of(broken) is Settlement.RESCHEDULED
    assert now_of(store, bad).last_error == why
    assert now_of(store, broken).status is Status.QUEUED
    assert counted(store) == {}


def test_a_lost_lease_writes_nothing(
    store: TaskStore,
    settler: Settler,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    told: Told,
) -> None:
    jobs = [claimed(store, seed=seed) for seed in range(3)]
    clock.now = NOW + 60  # the leases ran out; another worker has the tasks now
    store.requeue_expired(POLICY.max_attempts)
    for n in range(3):
        assert store.claim(f"other#{n}", 30) is not None
    with caplog.at_level(logging.WARNING, logger="hook.worker.settling"):
        settler.delivery(jobs[0], Outcome(Verdict.DELIVERED, "ok"))
        settler.fail(jobs[1], "refused")
        settler.retry(jobs[2], "busy")
    for job in jobs:
        assert told.of(job) is Settlement.LOST and told.count(job) == 1
        task = now_of(store, job)
        assert task.status is Status.RUNNING and (task.lease_owner or "").startswith("other#")
    assert "lease lost before it could be settled" in caplog.text


def test_mongodb_down_leaves_the_task_to_its_lease(store: TaskStore) -> None:
    """Never retried here: what may have been delivered is left to the lease, not resent now."""
    jobs = [claimed(store, seed=n) for n in range(3)]
    client: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200
    )
    down = TaskStore(client["nowhere"])
    told = Told()
    settler = Settler(down, Metrics(down), POLICY, finished=told)
    delivered, refused, busy = jobs
    settler.delivery(delivered, Outcome(Verdict.DELIVERED, "ok"))
    assert told.of(delivered) is Settlement.UNRECORDED
    settler.delivery(refused, Outcome(Verdict.REFUSED, "no"))
    assert told.of(refused) is Settlement.UNRECORDED
    settler.delivery(busy, Outcome(Verdict.RETRY, "busy"))
    assert told.of(busy) is Settlement.UNRECORDED
    for job in jobs:  # untouched, still leased: the lease brings each back
        task = now_of(store, job)
        assert task.status is Status.RUNNING and task.lease_owner == job.owner
        assert job.stage is Stage.SETTLED


def by_host(store: TaskStore) -> dict[str, dict[str, float]]:
    """The per-host counters by host."""
    return {
        c.key.removeprefix("host|"): c.values for c in store.counted() if c.key.startswith("host|")
    }


def test_each_outcome_is_counted_for_its_callback_host_with_the_posts_seconds(
    store: TaskStore, settler: Settler, clock: FakeClock
) -> None:
    other = "http://hooks.camio.com:8443/cb/s3cret-path?token=s3cret-query"
    jobs = [
        claimed(store, seed=1),
        claimed(store, seed=2, url=other),
        claimed(store, seed=3, url=other, attempt=3),
        claimed(store, seed=4, url=other),
    ]
    settler.delivery(jobs[0], Outcome(Verdict.DELIVERED, "callback answered 200", elapsed=0.2))
    clock.now = NOW + 5
    settler.delivery(jobs[1], Outcome(Verdict.RETRY, "callback answered 503", elapsed=3))
    settler.delivery(jobs[2], Outcome(Verdict.RETRY, "callback answered 503"))  # gives up
    clock.now = NOW + 9
    settler.delivery(jobs[3], Outcome(Verdict.REFUSED, "callback answered 404", elapsed=0.04))
    hosts = by_host(store)
    assert hosts["www.camio.com:443"] == {
        "delivered": 1,
        "count": 1,
        "sum": 0.2,
        "last_delivered_at": NOW,
        "le_0_25": 1,
        "le_0_5": 1,
        "le_1": 1,
        "le_2_5": 1,
        "le_5": 1,
        "le_10": 1,
        "le_30": 1,
    }
    camio = hosts["hooks.camio.com:8443"]
    assert (camio["retried"], camio["gave_up"], camio["refused"], camio["count"]) == (1, 1, 1, 3)
    assert camio["sum"] == pytest.approx(3.04) and camio["le_0_05"] == 2  # the gave_up took 0 s
    assert (camio["last_retried_at"], camio["last_gave_up_at"]) == (NOW + 5, NOW + 5)
    assert camio["last_refused_at"] == NOW + 9
    assert counted(store) == {
        "delivered": 1,
        "retried": 1,
        "gave_up": 1,
        "refused": 1,
        "latency count": 1,
        "latency sum": 0,
    }
    assert not [c.key for c in store.counted() if "s3cret" in c.key or "/" in c.key]


def test_hosts_past_the_cap_are_counted_as_other(store: TaskStore, clock: FakeClock) -> None:
    settler = Settler(store, Metrics(store, Admissions(cap=2)), POLICY, clock=clock)
    another = Settler(store, Metrics(store, Admissions(cap=2)), POLICY, clock=clock)  # a process
    urls = [f"https://h{n}.camio.com/cb" for n in range(4)]
    for seed, (url, who) in enumerate(zip(urls * 2, [settler] * 4 + [another] * 4, strict=True)):
        who.delivery(claimed(store, seed=seed, url=url), Outcome(Verdict.DELIVERED, "200"))
    hosts = by_host(store)
    assert {host: doc["delivered"] for host, doc in hosts.items()} == {
        "h0.camio.com:443": 2,
        "h1.camio.com:443": 2,
        "other": 4,
    }


def test_the_objects_summary_counts_objects_per_label() -> None:
    assert objects_summary(json.dumps(LABELS)) == "dog 3, person 1"
    assert objects_summary('{"status":"success","labels":{"a":{},"b":{}}}') == "none"
    assert objects_summary(None) == "none"


def test_giving_back_releases_the_task_unstarted_at_once_or_later(
    store: TaskStore, settler: Settler, clock: FakeClock, told: Told
) -> None:
    now, later = claimed(store, seed=1), claimed(store, seed=2)
    settler.give_back(now, "the worker is stopping")
    settler.give_back(later, "its callback host is busy", after=1.0)
    for job, due in ((now, NOW), (later, NOW + 1.0)):
        task = now_of(store, job)
        assert told.of(job) is Settlement.GIVEN_BACK and job.stage is Stage.SETTLED
        assert task.status is Status.QUEUED and task.attempts == 0 and task.run_at == due
    settler.give_back(now, "again")  # let go already: nothing is released or told twice
    assert told.of(now) is Settlement.GIVEN_BACK and told.count(now) == 1
    assert now_of(store, now).status is Status.QUEUED


def test_a_crash_is_logged_with_its_traceback_and_the_task_retried_saying_why(
    store: TaskStore, settler: Settler, told: Told, caplog: pytest.LogCaptureFixture
) -> None:
    job = claimed(store)
    with caplog.at_level(logging.ERROR, logger="hook.worker.settling"):
        settler.crashed(job, "labeling", KeyError("boxes"))
    assert told.of(job) is Settlement.RESCHEDULED
    assert now_of(store, job).last_error == "unexpected error while labeling: KeyError: 'boxes'"
    assert "unexpected error while labeling" in caplog.text and job.task.id in caplog.text


def test_a_lease_lost_while_labeling_is_settled_as_lost(
    store: TaskStore, settler: Settler, told: Told
) -> None:
    job = claimed(store)
    settler.lost(job)
    assert told.of(job) is Settlement.LOST and job.stage is Stage.SETTLED
    assert now_of(store, job).status is Status.RUNNING  # nothing written: its lease decides


class Broken(TaskStore):
    """A store whose writes fail as no MongoDB error would: a bug."""

    def fail(self, *args: object, **kwargs: object) -> bool:
        raise TypeError("a bug in the store")


def test_whatever_goes_wrong_while_settling_the_job_is_let_go_once(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Else the worker would hold it, and renew its lease, for ever."""
    store, told = Broken(db, clock=clock), Told()
    settler = Settler(store, Metrics(store), POLICY, finished=told, clock=clock)
    job = claimed(store)
    with caplog.at_level(logging.ERROR, logger="hook.worker.settling"):
        settler.delivery(job, Outcome(Verdict.REFUSED, "callback answered 404"))
    assert told.of(job) is Settlement.UNRECORDED and told.count(job) == 1
    assert job.stage is Stage.SETTLED and "its lease will bring it back" in caplog.text


def test_a_listener_that_fails_does_not_undo_the_settlement(store: TaskStore) -> None:
    def listener(job: Job, settlement: Settlement) -> None:
        raise RuntimeError("a bug in the worker")

    settler = Settler(store, Metrics(store), POLICY, finished=listener, clock=store.clock)
    job = claimed(store)
    settler.fail(job, "refused")
    assert now_of(store, job).status is Status.FAILED


def test_batched_completions_are_told_done_or_lost_once_written(
    store: TaskStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's Settler: a delivered job waits for its batch, then is told DONE (with the
    done line), or LOST when its claim had passed to another worker meanwhile."""
    told = Told()
    settler = Settler(store, Metrics(store), POLICY, finished=told, batched=True, clock=clock)
    fresh, stale = claimed(store, seed=1), claimed(store, seed=2)
    assert store.release(stale.task.id, stale.owner) and store.claim("other#1", 30) is not None
    (completions,) = settler.parts
    completions.start()
    with caplog.at_level(logging.INFO, logger="hook.worker.settling"):
        try:
            for job in (fresh, stale):
                settler.delivery(job, Outcome(Verdict.DELIVERED, "callback answered 200"))
                assert job.stage is Stage.SETTLED and told.count(job) == 0  # not written yet
            deadline = time.monotonic() + 10
            while told.count(fresh) + told.count(stale) < 2:
                assert time.monotonic() < deadline, "the batch was never written"
                time.sleep(0.05)
        finally:
            completions.stop()
    assert (told.of(fresh), told.of(stale)) == (Settlement.DONE, Settlement.LOST)
    assert now_of(store, fresh).status is Status.DONE
    assert f"task {fresh.task.id} done" in caplog.text
    assert f"task {stale.task.id}: lease lost" in caplog.text
