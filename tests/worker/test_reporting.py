"""Failure reports in-process: the store on nx-27017, real HTTP to receivers on 127.0.0.1
(one checking signatures with the official Standard Webhooks library), the Settler and the
Housekeeper failing tasks as the worker does."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from pymongo.database import Database

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import Outcome, Verdict
from hook.callbacks.signing import Signer
from hook.metrics.recorder import Metrics
from hook.result import result
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Report, ReportState, Status, Target, Task, iso
from hook.worker.housekeeping import Housekeeper
from hook.worker.job import Job
from hook.worker.reporting import ReportConfig, Reporter, message_id, next_state
from hook.worker.settling import Settler
from tests.factories import FakeClock, make_event, make_settings
from tests.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's test secret
LOCAL = HostAllowList(("127.0.0.1",))
POLICY = RetryPolicy(base=2.0, max_attempts=3)
SHIPPED = make_settings().report_policy  # HOOK_REPORT_ATTEMPTS and the backoff as shipped
BOTH = (Target.FAILURE_URL, Target.CALLBACK_URL)
REASON = 'callback answered 404: {"error": "no such hook"}'


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """Unsigned: these tests run on a fake clock, which no signature's timestamp check would
    pass; signing is tested on real time (test_the_report_names_the_failure_and_is_signed)."""
    server = Receiver()
    yield server
    server.close()


def paths() -> tuple[str, str]:
    """A fresh (failure URL path, callback path) pair: the receiver is the module's."""
    tag = uuid.uuid4().hex
    return f"/failures/{tag}", f"/cb/{tag}"


def failed(store: TaskStore, callback_url: str, targets: tuple[Target, ...] = BOTH) -> str:
    """A two-image task refused by its callback on attempt 1, owing a report to `targets`."""
    task_id, _ = store.enqueue(make_event(n_images=2, callback_url=callback_url))
    assert store.claim("w#1", 30) is not None
    assert store.fail(task_id, "w#1", REASON, report=targets)
    return task_id


def reporter(
    store: TaskStore,
    config: ReportConfig,
    *,
    hosts: HostAllowList = LOCAL,
    outbound: Outbound | None = None,
    stopping: threading.Event | None = None,
) -> Reporter:
    """A report sender on the store's clock; 5 s per POST, a 10 s worker lease."""
    return Reporter(
        store,
        config,
        hosts=hosts,
        timeout=5.0,
        lease_seconds=10.0,
        worker_id="w",
        stopping=stopping or threading.Event(),
        outbound=outbound,
        clock=store.clock,
    )


def task_of(store: TaskStore, task_id: str) -> Task:
    task = store.get(task_id)
    assert task is not None
    return task


def report_of(store: TaskStore, task_id: str) -> Report:
    report = task_of(store, task_id).report
    assert report is not None
    return report


def test_the_report_names_the_failure_and_is_signed(db: Database) -> None:
    store = TaskStore(db)  # real time: the receiver checks the signature's timestamp
    signed = Receiver(secrets=[SECRET])
    try:
        fail_path, cb_path = paths()
        task_id = failed(store, signed.url(cb_path), (Target.FAILURE_URL,))
        config = ReportConfig(SHIPPED, failure_url=signed.url(fail_path))
        sender = reporter(store, config, outbound=Outbound(Signer([SECRET]), {"X-Ops": "1"}))
        assert sender.run_once()
        (request,) = signed.requests_to(fail_path)
    finally:
        signed.close()
    task = task_of(store, task_id)
    assert request.verified_by == 0  # signed like a callback
    headers = {name.lower(): value for name, value in request.headers.items()}
    stable = f"{task_id}-failure-{round((task.finished_at or 0) * 1000)}"
    assert headers["webhook-id"] == message_id(task) == stable
    assert headers["x-hook-camera"] == "front door" and headers["x-hook-user"] == "u1"
    assert headers["x-hook-attempt"] == "1"
    assert "x-ops" not in headers  # HOOK_CALLBACK_HEADERS are the callback receiver's, not ours
    assert json.loads(request.body) == {
        "status": "failure",
        "task_id": task_id,
        "reason": REASON,
        "attempts": 1,
        "camera": "front door",
        "user_id": "u1",
        "callback_url": signed.url(cb_path),
        "timestamps": ["2017-05-05T01:31:10.738647", "2017-05-05T01:31:11.738647"],
        "failed_at": iso(task.finished_at),
    }
    assert str(iso(task.finished_at)).endswith("+00:00")  # ISO 8601, UTC
    report = report_of(store, task_id)
    assert report.state is ReportState.SENT and report.delivered == (Target.FAILURE_URL,)
    assert report.attempts == 1 and report.last_error is None and report.settled_at is not None


def test_to_callback_sends_camios_minimal_failure(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    store = TaskStore(db, clock=clock)
    fail_path, cb_path = paths()
    task_id = failed(store, receiver.url(cb_path), (Target.CALLBACK_URL,))
    ops = Outbound(None, {"X-Ops": "1"})
    assert reporter(store, ReportConfig(SHIPPED, to_callback=True), outbound=ops).run_once()
    assert receiver.bodies(cb_path) == [{"status": "failure", "reason": REASON}]
    (request,) = receiver.requests_to(cb_path)
    assert request.headers.get("X-Ops") == "1"  # the callback's receiver: its custom headers
    assert receiver.bodies(fail_path) == []
    assert report_of(store, task_id).state is ReportState.SENT


def test_the_failure_url_needs_no_entry_in_the_callback_hosts(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    """The operator's own URL is allowed by being configured; an event's callback_url still
    has to pass HOOK_CALLBACK_HOSTS (here it does not: that target is undeliverable)."""
    store = TaskStore(db, clock=clock)
    fail_path, cb_path = paths()
    task_id = failed(store, receiver.url(cb_path))
    config = ReportConfig(SHIPPED, failure_url=receiver.url(fail_path), to_callback=True)
    assert reporter(store, config, hosts=HostAllowList(("camio.com",))).run_once()
    assert len(receiver.bodies(fail_path)) == 1 and receiver.bodies(cb_path) == []
    report = report_of(store, task_id)
    assert report.state is ReportState.UNDELIVERABLE and report.delivered == (Target.FAILURE_URL,)
    assert report.last_error == (
        "callback_url: callback_url host '127.0.0.1' is not allowed "
        f"(HOOK_CALLBACK_HOSTS: camio.com); add 127.0.0.1:{receiver.server.server_port} to "
        "HOOK_CALLBACK_HOSTS to allow it (or 127.0.0.1 for any port)"
    )


def test_a_report_is_retried_with_backoff_then_kept_undeliverable(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    store = TaskStore(db, clock=clock)
    fail_path, cb_path = paths()
    receiver.script[fail_path] = [503, 503, 503]
    task_id = failed(store, receiver.url(cb_path), (Target.FAILURE_URL,))
    sender = reporter(store, ReportConfig(POLICY, failure_url=receiver.url(fail_path)))
    for attempt, (low, high) in enumerate([(1, 2), (2, 4)], 1):  # equal jitter on base 2
        assert sender.run_once()
        report = report_of(store, task_id)
        assert report.state is ReportState.DUE and report.attempts == attempt
        assert report.run_at is not None and low <= report.run_at - clock.now <= high
        assert not sender.run_once()  # not due before its time
        clock.now = report.run_at
    assert sender.run_once()
    report = report_of(store, task_id)
    assert report.state is ReportState.UNDELIVERABLE and report.attempts == 3
    assert report.targets == () and report.delivered == ()
    assert report.last_error == (
        'failure_url: gave up after 3 attempts; last: callback answered 503: {"status": 503}'
    )
    assert len(receiver.bodies(fail_path)) == 3
    clock.now += 3600
    assert not sender.run_once()  # never retried forever
    # kept with the task: the listing and the result document show it
    task = task_of(store, task_id)
    assert task.status is Status.FAILED and task.last_error == REASON
    listed = [t.summary() for t in store.pending([Status.FAILED]) if t.id == task_id]
    assert listed[0]["report"] == report.summary() == result(task, [], "/x")["report"]
    assert listed[0]["report"]["state"] == "undeliverable" and listed[0]["report"]["attempts"] == 3
    # the failure receiver's figures beside the callbacks' (not in hook_deliveries_total)
    counted = {c.key: c for c in store.counted()}
    (host,) = [c for key, c in counted.items() if key.startswith("host|")]
    assert host.get("retried") == 3 and host.get("count") == 3
    assert not any(key.startswith("deliveries|") for key in counted)


def test_a_refusal_makes_the_report_undeliverable_at_once(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    store = TaskStore(db, clock=clock)
    fail_path, cb_path = paths()
    receiver.script[fail_path] = [410]
    task_id = failed(store, receiver.url(cb_path), (Target.FAILURE_URL,))
    assert reporter(store, ReportConfig(SHIPPED, failure_url=receiver.url(fail_path))).run_once()
    report = report_of(store, task_id)
    assert report.state is ReportState.UNDELIVERABLE and report.attempts == 1
    assert report.last_error == 'failure_url: callback answered 410: {"status": 410}'


def test_a_target_that_took_the_report_is_not_sent_it_again(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    store = TaskStore(db, clock=clock)
    fail_path, cb_path = paths()
    receiver.script[cb_path] = [503]
    task_id = failed(store, receiver.url(cb_path))
    config = ReportConfig(POLICY, failure_url=receiver.url(fail_path), to_callback=True)
    sender = reporter(store, config)
    assert sender.run_once()
    report = report_of(store, task_id)
    assert report.state is ReportState.DUE and report.targets == (Target.CALLBACK_URL,)
    assert report.delivered == (Target.FAILURE_URL,)
    assert report.summary()["pending"] == ["callback_url"]
    clock.now = report.run_at or 0.0
    assert sender.run_once()
    report = report_of(store, task_id)
    assert report.state is ReportState.SENT and set(report.delivered) == set(BOTH)
    assert len(receiver.bodies(fail_path)) == 1 and len(receiver.bodies(cb_path)) == 2


def test_a_warm_stop_settles_the_report_in_flight(db: Database, receiver: Receiver) -> None:
    store = TaskStore(db)
    fail_path, cb_path = paths()
    receiver.delay[fail_path] = 1.0
    task_id = failed(store, receiver.url(cb_path), (Target.FAILURE_URL,))
    stopping = threading.Event()
    sender = reporter(
        store, ReportConfig(SHIPPED, failure_url=receiver.url(fail_path)), stopping=stopping
    )
    thread = threading.Thread(target=sender.run)
    thread.start()
    receiver.wait_for(fail_path, 1, timeout=10)
    stopping.set()  # while the receiver still holds the POST
    thread.join(10)
    assert not thread.is_alive()
    assert report_of(store, task_id).state is ReportState.SENT


def test_with_reporting_off_nothing_runs(db: Database) -> None:
    assert ReportConfig(SHIPPED).targets == ()
    thread = threading.Thread(target=reporter(TaskStore(db), ReportConfig(SHIPPED)).run)
    thread.start()
    thread.join(2)  # returns at once although never stopped
    assert not thread.is_alive()


def test_a_target_turned_off_since_is_undeliverable_saying_so(
    db: Database, clock: FakeClock, receiver: Receiver
) -> None:
    store = TaskStore(db, clock=clock)
    _, cb_path = paths()
    task_id = failed(store, receiver.url(cb_path))
    assert reporter(store, ReportConfig(SHIPPED, to_callback=True)).run_once()
    report = report_of(store, task_id)
    assert report.state is ReportState.UNDELIVERABLE
    assert report.delivered == (Target.CALLBACK_URL,)
    assert report.last_error == "failure_url: HOOK_FAILURE_URL is not set any more"


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    owed = Report(ReportState.SENDING, (Target.FAILURE_URL,), attempts=1)
    busy = {Target.FAILURE_URL: Outcome(Verdict.RETRY, "callback answered 429", 300.0)}
    assert next_state(owed, busy, POLICY, 1000.0).run_at == 1300.0
    busy = {Target.FAILURE_URL: Outcome(Verdict.RETRY, "callback answered 429", 1e6)}
    assert next_state(owed, busy, POLICY, 1000.0).run_at == 1000.0 + POLICY.cap


def test_the_message_id_is_new_for_each_failure(db: Database, clock: FakeClock) -> None:
    store = TaskStore(db, clock=clock)
    task_id = failed(store, "https://www.camio.com/cb")
    first = message_id(task_of(store, task_id))
    assert store.retry_failed([task_id]).requeued == 1
    clock.now += 60
    assert store.claim("w#2", 30) is not None
    assert store.fail(task_id, "w#2", REASON, report=BOTH)
    assert message_id(task_of(store, task_id)) != first


def claimed_job(store: TaskStore, seed: int, attempts: int = 1) -> Job:
    """A task claimed for its `attempts`-th time, as the Settler gets it."""
    task_id, _ = store.enqueue(make_event(seed))
    for n in range(1, attempts):
        assert store.claim(f"w{seed}#{n}", 30) is not None
        store.reschedule(task_id, f"w{seed}#{n}", store.clock(), "callback answered 503")
    task = store.claim(f"w{seed}#{attempts}", 30)
    assert task is not None and task.id == task_id and task.attempts == attempts
    return Job(task, f"w{seed}#{attempts}", time.monotonic())


@pytest.mark.parametrize("targets", [BOTH, ()])
def test_every_way_a_task_fails_owes_a_report_when_reporting_is_on(
    db: Database, clock: FakeClock, targets: tuple[Target, ...]
) -> None:
    store = TaskStore(db, clock=clock)
    settler = Settler(store, Metrics(store), POLICY, report=targets, clock=clock)
    refused = claimed_job(store, 1)
    settler.delivery(refused, Outcome(Verdict.REFUSED, REASON))
    used_up = claimed_job(store, 2, attempts=3)
    settler.delivery(used_up, Outcome(Verdict.RETRY, "callback answered 503"))
    bad = claimed_job(store, 3)  # a bad image or missing images: the worker calls fail
    settler.fail(bad, "image 0 (timestamp x): not a JPEG")
    dead = claimed_job(store, 4)
    clock.now += 31  # its lease runs out on its last attempt: the sweep fails it
    Housekeeper(
        store,
        lease_seconds=30,
        retention_seconds=3600,
        max_attempts=1,
        keep_pictures_seconds=0,
        report=targets,
        report_attempts=SHIPPED.max_attempts,
        clock=clock,
    ).run_due()
    for job in (refused, used_up, bad, dead):
        task = task_of(store, job.task.id)
        assert task.status is Status.FAILED
        if targets:
            assert task.report is not None and task.report.state is ReportState.DUE
            assert task.report.targets == BOTH and task.report.run_at == task.finished_at
        else:
            assert task.report is None
    assert "gave up after 3 attempts" in (task_of(store, used_up.task.id).last_error or "")
    assert "lease expired on attempt 1 of 1" in (task_of(store, dead.task.id).last_error or "")
