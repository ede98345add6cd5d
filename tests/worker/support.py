"""What the worker's in-process tests share: a worker config for loopback, tasks enqueued and
waited on, a worker running in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import Outcome
from hook.callbacks.signing import Signer
from hook.detect.detector import Detector
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.task import Status, Task
from hook.worker.job import Job
from hook.worker.pipeline import Worker, WorkerConfig
from hook.worker.reporting import ReportConfig
from hook.worker.settling import Settlement, Settler
from tests.factories import DATA, SIGNING_SECRET, make_event

FIRST, SECOND = "2017-05-05T01:31:10.738647", "2017-05-05T01:31:11.738647"  # event()'s
LOCAL = HostAllowList(("127.0.0.1",))
POLICY = RetryPolicy(base=30.0, max_attempts=3)  # the first retry waits 15-30 s: none in a test
CONFIG = WorkerConfig(
    lease_seconds=3,
    callback_timeout=10,
    retention_seconds=3600,
    max_image_pixels=40_000_000,
    policy=POLICY,
    hosts=LOCAL,
    keep_pictures_seconds=0,  # no pictures unless a test asks
    reports=ReportConfig(POLICY),  # none owed: off
    batch_images=1,
    outbound=Outbound(Signer([SIGNING_SECRET])),
)
TRUNCATED_JPEG = (DATA / "dog.jpg").read_bytes()[:60000]


def enqueue(store: TaskStore, url: str, *images: bytes) -> str:
    """An event with these images, parsed as the web does and stored; its task id."""
    task_id, created = store.enqueue(make_event(callback_url=url, images=images))
    assert created
    return task_id


def wait_task(
    store: TaskStore, task_id: str, ok: Callable[[Task | None], bool], timeout: float = 30
) -> Task:
    """The task once `ok(task)`; AssertionError with its last state after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not ok(task := store.get(task_id)):
        assert time.monotonic() < deadline, f"task {task_id} is still {task}"
        time.sleep(0.05)
    assert task is not None
    return task


def settled_as(status: Status) -> Callable[[Task | None], bool]:
    return lambda task: task is not None and task.status is status


def queued_again(task: Task | None) -> bool:
    return task is not None and task.status is Status.QUEUED and task.attempts >= 1


def delivered(store: TaskStore, outcome: str) -> float:
    """How many deliveries the metrics counted with `outcome`."""
    key = f"deliveries|{outcome}"
    return sum(c.get("n") for c in store.counted() if c.key == key)


@contextmanager
def running(
    store: TaskStore,
    detector: Detector,
    config: WorkerConfig = CONFIG,
    rules: RulesFile | None = None,
    more_lanes: tuple[Detector, ...] = (),
) -> Iterator[Worker]:
    """A worker running in a thread; warm-stopped at the end, which must return in time."""
    worker = Worker(store, [detector, *more_lanes], config, metrics=Metrics(store), rules=rules)
    thread = threading.Thread(target=worker.run, name="worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"


def path() -> str:
    return f"/cb/{uuid.uuid4().hex}"


class Told:
    """A Settler's `finished`: what each job came to, by its task, and how often it was told
    (the Settler tells of each job once)."""

    def __init__(self) -> None:
        self.settled: dict[str, Settlement] = {}
        self.times: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, job: Job, settlement: Settlement) -> None:
        with self.lock:
            self.settled[job.task.id] = settlement
            self.times[job.task.id] = self.times.get(job.task.id, 0) + 1

    def of(self, job: Job) -> Settlement:
        return self.settled[job.task.id]

    def count(self, job: Job) -> int:
        return self.times.get(job.task.id, 0)


# a Settler method's name, the job, the rest of its arguments
Call = tuple[str, Job, tuple[object, ...]]


class FakeSettler(Settler):
    """Records what a stage (the pool, the loader, the labeler) hands the Settler, in order;
    settles and stores nothing."""

    def __init__(self) -> None:  # no store, metrics or policy: nothing here may use them
        self.calls: list[Call] = []
        self.cond = threading.Condition()

    def _record(self, method: str, job: Job, *args: object) -> None:
        job.settle()  # as the Settler does, whatever it comes to
        with self.cond:
            self.calls.append((method, job, args))
            self.cond.notify_all()

    def delivery(self, job: Job, outcome: Outcome) -> None:
        self._record("delivery", job, outcome)

    def fail(self, job: Job, reason: str) -> None:
        self._record("fail", job, reason)

    def retry(self, job: Job, reason: str, *, retry_after: float | None = None) -> None:
        self._record("retry", job, reason, retry_after)

    def crashed(self, job: Job, doing: str, exc: Exception) -> None:
        self._record("crashed", job, doing, exc)

    def give_back(self, job: Job, why: str, *, after: float = 0.0) -> None:
        self._record("give_back", job, why, after)

    def lost(self, job: Job) -> None:
        self._record("lost", job)

    def of(self, job: Job) -> list[tuple[str, tuple[object, ...]]]:
        """What the Settler was told of `job`."""
        with self.cond:
            return [(method, args) for method, told, args in self.calls if told is job]

    def wait_for(self, job: Job, timeout: float = 10) -> list[tuple[str, tuple[object, ...]]]:
        """What it was told of `job`, once it was told anything; AssertionError after `timeout`."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.of(job), timeout), f"{job.task.id}: untold"
            return self.of(job)
