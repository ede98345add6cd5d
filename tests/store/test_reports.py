"""The failure reports' outbox in the store, on nx-27017: owed by the update that fails a task,
claimed with a lease, settled only by its holder, brought back when its sender dies, cleared
when the task is queued again."""

from __future__ import annotations

import pytest

from hook.store import TaskStore
from hook.task import Report, ReportState, Status, Target
from tests.factories import FakeClock, make_event

BOTH = (Target.FAILURE_URL, Target.CALLBACK_URL)


@pytest.fixture
def store(store: TaskStore) -> TaskStore:
    """The shared store, with its indexes made (the reports' claim relies on one)."""
    store.ensure_indexes()
    return store


def failed(store: TaskStore, seed: int = 0, report: tuple[Target, ...] = BOTH) -> str:
    """A task claimed once and failed for good (a refusal), owing a report to `report`."""
    task_id, _ = store.enqueue(make_event(seed))
    task = store.claim("w#1", 30)
    assert task is not None and task.id == task_id
    assert store.fail(task_id, "w#1", "callback answered 404", report=report)
    return task_id


def report_of(store: TaskStore, task_id: str) -> Report | None:
    task = store.get(task_id)
    assert task is not None
    return task.report


def test_failing_owes_a_report_in_the_same_update(store: TaskStore, clock: FakeClock) -> None:
    task_id = failed(store)
    task = store.get(task_id)
    assert task is not None and task.status is Status.FAILED
    assert task.report == Report(ReportState.DUE, BOTH, run_at=clock.now)
    assert task.finished_at == clock.now
    assert task.summary()["report"] == {
        "state": "due",
        "attempts": 0,
        "pending": ["failure_url", "callback_url"],
        "delivered": [],
        "last_error": None,
        "next_attempt_at": "2027-01-15T08:00:00.000+00:00",
        "settled_at": None,
    }


def test_no_report_is_owed_when_reporting_is_off(store: TaskStore) -> None:
    task_id = failed(store, report=())
    task = store.get(task_id)
    assert task is not None and task.status is Status.FAILED and task.report is None
    assert task.summary()["report"] is None
    assert store.claim_report("r#1", 30) is None


def test_a_worker_without_the_lease_neither_fails_nor_owes(store: TaskStore) -> None:
    task_id, _ = store.enqueue(make_event())
    assert store.claim("w#1", 30) is not None
    assert not store.fail(task_id, "w#2", "not mine", report=BOTH)
    task = store.get(task_id)
    assert task is not None and task.status is Status.RUNNING and task.report is None


def test_the_sweep_owes_a_report_only_for_the_last_attempt(
    store: TaskStore, clock: FakeClock
) -> None:
    last, _ = store.enqueue(make_event(1))
    store.claim("dead#1", 10)
    store.reschedule(last, "dead#1", clock.now, "503")
    store.claim("dead#2", 10)  # attempt 2 of 2
    early, _ = store.enqueue(make_event(2))
    store.claim("dead#3", 10)  # attempt 1 of 2
    clock.now += 11
    assert store.requeue_expired(2, (Target.FAILURE_URL,)) == (1, 1)
    swept = store.get(last)
    assert swept is not None and swept.status is Status.FAILED
    assert swept.report == Report(ReportState.DUE, (Target.FAILURE_URL,), run_at=clock.now)
    assert report_of(store, early) is None
    assert store.get(early).status is Status.QUEUED  # type: ignore[union-attr]


def test_the_sweep_owes_nothing_when_reporting_is_off(store: TaskStore, clock: FakeClock) -> None:
    task_id, _ = store.enqueue(make_event())
    store.claim("dead#1", 10)
    clock.now += 11
    assert store.requeue_expired(1) == (0, 1)
    assert report_of(store, task_id) is None


def test_claim_leases_the_report_due_first(store: TaskStore, clock: FakeClock) -> None:
    first = failed(store, 1)
    clock.now += 1
    second = failed(store, 2)
    claimed = store.claim_report("r#1", 30)
    assert claimed is not None and claimed.id == first
    assert claimed.report is not None and claimed.report.state is ReportState.SENDING
    assert claimed.report.owner == "r#1" and claimed.report.until == clock.now + 30
    assert claimed.report.attempts == 1
    assert claimed.last_error == "callback answered 404" and claimed.camera == "front door"
    other = store.claim_report("r#2", 30)
    assert other is not None and other.id == second
    assert store.claim_report("r#3", 30) is None  # both leased


def test_a_report_due_later_is_not_claimed_before(store: TaskStore, clock: FakeClock) -> None:
    task_id = failed(store)
    assert store.claim_report("r#1", 30) is not None
    later = clock.now + 60
    assert store.settle_report(
        task_id,
        "r#1",
        ReportState.DUE,
        targets=BOTH,
        delivered=(),
        errors={"failure_url": "503"},
        run_at=later,
    )
    clock.now = later - 1
    assert store.claim_report("r#2", 30) is None
    clock.now = later
    again = store.claim_report("r#2", 30)
    assert again is not None and again.report is not None and again.report.attempts == 2
    assert again.report.errors == (("failure_url", "503"),)


def test_only_the_holder_settles(store: TaskStore, clock: FakeClock) -> None:
    task_id = failed(store)
    assert store.claim_report("r#1", 30) is not None
    assert not store.settle_report(
        task_id, "r#2", ReportState.SENT, targets=(), delivered=BOTH, errors={}
    )
    assert report_of(store, task_id).state is ReportState.SENDING  # type: ignore[union-attr]
    clock.now += 2
    assert store.settle_report(
        task_id, "r#1", ReportState.SENT, targets=(), delivered=BOTH, errors={}
    )
    report = report_of(store, task_id)
    assert report == Report(
        ReportState.SENT, (), BOTH, attempts=1, run_at=clock.now - 2, settled_at=clock.now
    )
    # settled: neither claimed again nor settled twice
    assert store.claim_report("r#3", 30) is None
    assert not store.settle_report(
        task_id, "r#1", ReportState.UNDELIVERABLE, targets=(), delivered=(), errors={}
    )


def test_undeliverable_is_kept_with_the_task_and_shown(store: TaskStore) -> None:
    task_id = failed(store)
    assert store.claim_report("r#1", 30) is not None
    errors = {
        "failure_url": "gave up after 1 attempts; last: callback answered 503",
        "callback_url": "callback answered 410",
    }
    assert store.settle_report(
        task_id, "r#1", ReportState.UNDELIVERABLE, targets=(), delivered=(), errors=errors
    )
    task = store.get(task_id)
    assert task is not None and task.status is Status.FAILED
    assert task.last_error == "callback answered 404"  # the task's own reason is untouched
    shown = task.summary()["report"]
    assert shown["state"] == "undeliverable" and shown["attempts"] == 1
    assert shown["last_error"] == (
        "callback_url: callback answered 410; failure_url: gave up "
        "after 1 attempts; last: callback answered 503"
    )
    assert shown["settled_at"] is not None and shown["next_attempt_at"] is None
    listed = store.pending([Status.FAILED])
    assert [t.report for t in listed] == [task.report]


def test_a_dead_senders_report_comes_back(store: TaskStore, clock: FakeClock) -> None:
    task_id = failed(store)
    assert store.claim_report("dead#1", 30) is not None
    clock.now += 29
    assert store.requeue_expired_reports(3) == (0, 0)  # still leased
    clock.now += 2
    assert store.requeue_expired_reports(3) == (1, 0)
    report = report_of(store, task_id)
    assert report is not None and report.state is ReportState.DUE and report.owner is None
    assert report.targets == BOTH and report.run_at == clock.now and report.attempts == 1
    assert dict(report.errors) == dict.fromkeys(BOTH, "lease expired: the worker died or hung")
    # the dead sender, waking up, can no longer settle it; the next claim takes it
    assert not store.settle_report(
        task_id, "dead#1", ReportState.SENT, targets=(), delivered=BOTH, errors={}
    )
    again = store.claim_report("r#2", 30)
    assert again is not None and again.id == task_id and again.report is not None
    assert again.report.attempts == 2


def test_a_report_whose_last_attempt_expired_is_undeliverable(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id = failed(store, report=(Target.FAILURE_URL,))
    for n in (1, 2):
        assert store.claim_report(f"r#{n}", 30) is not None
        clock.now += 31
        store.requeue_expired_reports(2)
    report = report_of(store, task_id)
    assert report is not None and report.state is ReportState.UNDELIVERABLE
    assert report.targets == () and report.attempts == 2 and report.settled_at == clock.now
    assert report.last_error == (
        "failure_url: lease expired on attempt 2 of 2: the worker died or hung"
    )
    assert store.claim_report("r#3", 30) is None


def test_retry_clears_the_report(store: TaskStore) -> None:
    sent, owed = failed(store, 1), failed(store, 2)
    assert store.claim_report("r#1", 30) is not None
    store.settle_report(sent, "r#1", ReportState.SENT, targets=(), delivered=BOTH, errors={})
    assert store.retry_failed([sent, owed]).requeued == 2
    for task_id in (sent, owed):
        task = store.get(task_id)
        assert task is not None and task.status is Status.QUEUED and task.report is None
    assert store.claim_report("r#2", 30) is None


def test_the_same_event_sent_again_clears_the_report(store: TaskStore) -> None:
    task_id = failed(store, 3)
    assert store.claim_report("r#1", 30) is not None  # even one in flight
    assert store.enqueue(make_event(3)) == (task_id, True)
    task = store.get(task_id)
    assert task is not None and task.status is Status.QUEUED and task.report is None
    # the sender in flight cannot put it back
    assert not store.settle_report(
        task_id, "r#1", ReportState.SENT, targets=(), delivered=BOTH, errors={}
    )
    assert report_of(store, task_id) is None


def test_retention_keeps_a_failed_task_while_its_report_is_owed(
    store: TaskStore, clock: FakeClock
) -> None:
    owed = failed(store, seed=1)
    sending = failed(store, seed=2)
    plain = failed(store, seed=3, report=())
    assert store.claim_report("r#1", 30) is not None  # one of the two owed ones: sending
    later = clock.now + 3600
    assert store.purge(before=later) == 1  # only the one that owes nothing
    assert store.get(plain) is None and store.get(owed) and store.get(sending)
    for task_id in (owed, sending):
        report = report_of(store, task_id)
        assert report is not None and report.state in (ReportState.DUE, ReportState.SENDING)
    claimed = store.claim_report("r#2", 30)
    assert claimed is not None
    for task_id, owner in ((claimed.id, "r#2"), (({owed, sending} - {claimed.id}).pop(), "r#1")):
        assert store.settle_report(
            task_id, owner, ReportState.SENT, targets=(), delivered=BOTH, errors={}
        )
    assert store.purge(before=later) == 2  # sent: nothing owed, retention takes them
