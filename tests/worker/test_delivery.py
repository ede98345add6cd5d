"""The delivery pool over real HTTP to receivers on 127.0.0.1, through a real requests session,
its Settler faked: what each POST came to, which job a busy host gives back, a crash on the way,
and a close that waits, each handed to the one Settler method it belongs to, with its words."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from hook.callbacks.outbound import Outbound
from hook.callbacks.post import Outcome, Verdict, origin, session
from hook.callbacks.signing import Signer
from hook.store import TaskStore
from hook.task import Status, Task
from hook.worker.delivery import DEFER_SECONDS, HOST_BACKLOG, IN_FLIGHT, PER_HOST, DeliveryPool
from hook.worker.job import Job
from tests.factories import SIGNING_SECRET
from tests.receiver import Receiver
from tests.worker.support import LOCAL, FakeSettler, path

BODY = (
    '{"status":"success","labels":{"2017-05-05T01:31:10.738647":'
    '{"dog":{"probability":0.9,"polygon":[[0,0],[1,0],[1,1],[0,1]]}}}}'
)


class Unused(TaskStore):
    """The pool's store: it keeps it but never calls it (the Settler writes what happens)."""

    def __init__(self) -> None:
        pass


class Gated(Outbound):
    """The real, signed headers; a job whose id is `held` waits for `gate` first (a delivery
    kept in flight without sleeping), one in `broken` raises instead (a bug while posting)."""

    def __init__(self) -> None:
        super().__init__(Signer([SIGNING_SECRET]))
        self.held: set[str] = set()
        self.broken: set[str] = set()
        self.gate = threading.Event()
        self.raised: dict[str, Exception] = {}

    def headers_for(
        self,
        msg_id: str,
        body: str,
        *,
        camera: str | None,
        user: str | None,
        attempt: int,
        now: float,
        custom: bool = True,
    ) -> dict[str, str]:
        if msg_id in self.broken:
            self.raised[msg_id] = RuntimeError(f"no headers for {msg_id}")
            raise self.raised[msg_id]
        if msg_id in self.held:
            assert self.gate.wait(10), "the gate was never opened"
        return super().headers_for(
            msg_id, body, camera=camera, user=user, attempt=attempt, now=now, custom=custom
        )


@pytest.fixture
def outbound() -> Gated:
    return Gated()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    client = session()
    yield client
    client.close()


@pytest.fixture
def pool(settler: FakeSettler, http: requests.Session, outbound: Gated) -> Iterator[DeliveryPool]:
    """A pool with the real clock: the receiver checks the signature's timestamp against its own."""
    deliveries = DeliveryPool(Unused(), settler, http, hosts=LOCAL, timeout=5, outbound=outbound)
    yield deliveries
    outbound.gate.set()  # a failed test must not leave a thread at the gate
    deliveries.close()


@pytest.fixture
def other() -> Iterator[Receiver]:
    """A second callback host: the same address, another port (so another origin)."""
    server = Receiver(secrets=[SIGNING_SECRET])
    yield server
    server.close()


def labeled(url: str, *, attempts: int = 1, body: str = BODY) -> Job:
    """A LABELED job for `url`, as the lanes hand it to the pool."""
    task_id = uuid.uuid4().hex
    task = Task(
        id=task_id,
        status=Status.RUNNING,
        attempts=attempts,
        callback_url=url,
        camera="front door",
        user_id="u1",
        images=(),
        created_at=time.time(),
        run_at=time.time(),
        lease_owner=f"w#{task_id}",
    )
    job = Job(task, f"w#{task_id}", time.monotonic())
    job.labeled(body, keep_images=False)
    return job


def path_of(job: Job) -> str:
    """The path of a job's callback_url, as the receiver records it."""
    return urlsplit(job.task.callback_url).path


def until(ok: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def submitted(pool: DeliveryPool, job: Job, timeout: float = 10) -> None:
    """Submit in a thread: a pool that never frees a slot blocks, and fails here, not hangs."""
    thread = threading.Thread(target=pool.submit, args=(job,), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "submit blocked: every slot is taken"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((200, None), (Verdict.DELIVERED, "callback answered 200", None)),
        ((503, "7"), (Verdict.RETRY, 'callback answered 503: {"status": 503}', 7.0)),
        ((404, None), (Verdict.REFUSED, 'callback answered 404: {"status": 404}', None)),
    ],
)
def test_a_labeled_job_is_posted_with_its_stored_body_and_its_outcome_settled(
    pool: DeliveryPool,
    settler: FakeSettler,
    receiver: Receiver,
    answer: tuple[int, str | None],
    expected: tuple[Verdict, str, float | None],
) -> None:
    """The stored bytes go as they are, signed and with their context; the Settler, not the
    pool, decides what the answer means for the task, so the pool only passes the outcome on."""
    status, retry_after = answer
    where = path()
    receiver.script[where] = [status]
    if retry_after is not None:
        receiver.headers[where] = {"Retry-After": retry_after}
    job = labeled(receiver.url(where), attempts=2)
    pool.submit(job)
    [(method, (outcome,))] = settler.wait_for(job)
    assert method == "delivery"
    assert isinstance(outcome, Outcome)
    assert (outcome.verdict, outcome.reason, outcome.retry_after) == expected
    assert outcome.elapsed > 0
    [request] = receiver.requests_to(where)
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert request.body == BODY.encode()
    assert request.verified_by == 0  # signed with the outbound's secret, over these bytes
    assert headers["webhook-id"] == job.task.id
    assert (headers["x-hook-attempt"], headers["x-hook-camera"]) == ("2", "front door")
    pool.close()
    assert len(settler.calls) == 1  # told once, of this job alone


def test_a_busy_hosts_next_job_waits_in_memory_while_another_host_is_delivered(
    pool: DeliveryPool,
    settler: FakeSettler,
    outbound: Gated,
    receiver: Receiver,
    other: Receiver,
) -> None:
    """A host at its PER_HOST ceiling holds only its share of the slots: its next job waits
    here (never back to MongoDB) and goes the moment one of its POSTs ends, while the rest of
    the slots keep delivering to other hosts."""
    assert PER_HOST < IN_FLIGHT  # else the busy host alone would fill the pool
    busy = [labeled(receiver.url(path())) for _ in range(PER_HOST)]
    outbound.held.update(job.task.id for job in busy)
    for job in busy:
        pool.submit(job)
    waiting, elsewhere = labeled(receiver.url(path())), labeled(other.url(path()))
    pool.submit(waiting)  # returns at once: it waits in the pool, not in the lane
    pool.submit(elsewhere)
    [(method, (outcome,))] = settler.wait_for(elsewhere)
    assert method == "delivery" and isinstance(outcome, Outcome)
    assert outcome.verdict is Verdict.DELIVERED
    assert all(settler.of(job) == [] for job in [*busy, waiting])  # held, and waiting
    assert all(receiver.requests_to(path_of(job)) == [] for job in [*busy, waiting])

    outbound.gate.set()
    for job in [*busy, waiting]:
        [(method, (outcome,))] = settler.wait_for(job)
        assert method == "delivery" and isinstance(outcome, Outcome)
        assert outcome.verdict is Verdict.DELIVERED
    assert [request.body for request in receiver.requests_to(path_of(waiting))] == [BODY.encode()]
    assert "give_back" not in [method for method, _, _ in settler.calls]


def test_a_host_too_far_behind_gets_its_next_job_given_back(
    pool: DeliveryPool, settler: FakeSettler, outbound: Gated, receiver: Receiver
) -> None:
    """Memory stays bounded for a hanging host: past HOST_BACKLOG jobs waiting for it, the
    next is given back for a moment, unstarted, its attempt not counted."""
    held = [labeled(receiver.url(path())) for _ in range(PER_HOST + HOST_BACKLOG)]
    outbound.held.update(job.task.id for job in held)
    for job in held:
        pool.submit(job)
    turned = labeled(receiver.url(path()))
    pool.submit(turned)  # decided at once, in the caller's thread
    host = f"http://127.0.0.1:{receiver.server.server_port}"
    why = f"callback host {host} has {HOST_BACKLOG} waiting"
    assert settler.of(turned) == [("give_back", (why, DEFER_SECONDS))]
    outbound.gate.set()
    pool.close()
    assert all([m for m, _ in settler.of(job)] == ["delivery"] for job in held)
    assert receiver.requests_to(path_of(turned)) == []


def test_a_crash_while_posting_is_settled_as_crashed_and_frees_its_slot(
    pool: DeliveryPool, settler: FakeSettler, outbound: Gated, receiver: Receiver
) -> None:
    """A bug while posting retries that task, saying why, and costs no slot: more crashes than
    the pool has slots, all to one host, and the next job there is still delivered."""
    host = origin(receiver.url("/"))
    for _ in range(IN_FLIGHT + PER_HOST):
        job = labeled(receiver.url(path()))
        outbound.broken.add(job.task.id)
        submitted(pool, job)
        assert settler.wait_for(job) == [("crashed", ("delivering", outbound.raised[job.task.id]))]
        until(lambda: pool.posting[host] == 0, "a crashed delivery kept its host's slot")
        assert receiver.requests_to(path_of(job)) == []
    fine = labeled(receiver.url(path()))
    submitted(pool, fine)
    [(method, (outcome,))] = settler.wait_for(fine)
    assert method == "delivery" and isinstance(outcome, Outcome)
    assert outcome.verdict is Verdict.DELIVERED
    assert [request.body for request in receiver.requests_to(path_of(fine))] == [BODY.encode()]
    assert [method for method, _, _ in settler.calls] == ["crashed"] * (IN_FLIGHT + PER_HOST) + [
        "delivery"
    ]


def test_close_waits_for_the_deliveries_under_way(
    pool: DeliveryPool, settler: FakeSettler, receiver: Receiver, other: Receiver
) -> None:
    """A warm stop settles what is being delivered before the worker exits: close returns only
    once each POST under way has its answer and the Settler has it."""
    jobs = [labeled(receiver.url(path())), labeled(other.url(path()))]
    for job in jobs:
        receiver.delay[path_of(job)] = other.delay[path_of(job)] = 0.4
    started = time.monotonic()
    for job in jobs:
        pool.submit(job)
    assert settler.calls == []  # under way, not answered yet
    pool.close()
    assert time.monotonic() - started >= 0.35
    for job in jobs:
        [(method, (outcome,))] = settler.of(job)
        assert method == "delivery" and isinstance(outcome, Outcome)
        assert outcome.verdict is Verdict.DELIVERED
