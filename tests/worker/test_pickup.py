"""Idle pick-up by the wake-up (hook.wakeup), with the worker's polling made too slow to matter
(hook.worker.pipeline.IDLE_FIRST and IDLE_MAX at 30 s): a ring gets a new task labeled and delivered
at once, no ring leaves it to the poll, and stop() ends the idle wait. Real parts: nx-27017,
the default detector, a datagram socket in tmp_path, HTTP to a receiver on 127.0.0.1.

The bounds are generous (10 s against a 30 s poll): failing one means the ring did not work,
not that it worked slowly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from hook.detect.detector import Detector
from hook.metrics.recorder import Metrics
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.task import Status
from hook.wakeup import SUFFIX, Doorbell, WakeUp, wake_dir
from hook.worker import pipeline as worker_module
from hook.worker.pipeline import Worker
from tests.factories import DATA, event
from tests.procs import Stack
from tests.receiver import Receiver
from tests.worker.support import CONFIG, enqueue, settled_as, wait_task

SLOW_POLL = 30.0
WELL_BEFORE = 10.0  # a third of the poll: delivered by then only if the ring worked
PHOTO = (DATA / "dog.jpg").read_bytes()


@pytest.fixture
def slow_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle worker polls MongoDB only every 30 s: only a ring picks a task up sooner."""
    monkeypatch.setattr(worker_module, "IDLE_FIRST", SLOW_POLL)
    monkeypatch.setattr(worker_module, "IDLE_MAX", SLOW_POLL)


class FirstClaim(monitoring.CommandListener):
    """Set once a claim's read of the due tasks (a find on run_at) has its answer: from then
    on the worker's first claim has come up empty and it waits on its wake-up."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.claims: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "find" and "run_at" in (command.get("filter") or {}):
            self.claims.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.claims:
            self.answered.set()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Idle:
    worker: Worker
    thread: threading.Thread


@pytest.fixture
def idle(
    mongo: EmbeddedMongo, db: Database, detector: Detector, tmp_path: Path, slow_poll: None
) -> Iterator[Idle]:
    """A worker polling every 30 s, in a thread (a client of its own) with a wake-up socket
    bound in tmp_path, once idle: its first claim found nothing, so it waits on the wake-up.
    Stopped at the end if the test has not."""
    wake = WakeUp.open(tmp_path)
    assert wake.path is not None and wake.path.exists()
    first = FirstClaim()
    client: MongoClient = MongoClient(mongo.uri, event_listeners=[first])
    live_store = TaskStore(client[db.name])
    worker = Worker(live_store, [detector], CONFIG, metrics=Metrics(live_store), wake=wake)
    thread = threading.Thread(target=worker.run, name="worker")
    thread.start()
    try:
        assert first.answered.wait(30), "the worker never tried to claim"
        yield Idle(worker, thread)
    finally:
        worker.stop()
        thread.join(30)
        client.close()
        assert not thread.is_alive(), "the worker did not stop"


def path() -> str:
    return f"/pickup/{uuid.uuid4().hex}"


@pytest.mark.usefixtures("idle")
def test_a_rung_worker_labels_and_delivers_a_new_task_long_before_its_poll(
    live_store: TaskStore, receiver: Receiver, tmp_path: Path
) -> None:
    """An idle worker rung by the web's Doorbell after a task is stored has its labels
    delivered within 10 s, a third of the 30 s its poll would have taken."""
    where = path()
    task_id = enqueue(live_store, receiver.url(where), PHOTO)
    assert Doorbell(tmp_path).ring() == 1  # this worker's socket, and only it
    [body] = receiver.wait_for(where, 1, timeout=WELL_BEFORE)
    assert "labels" in body
    wait_task(live_store, task_id, settled_as(Status.DONE), timeout=WELL_BEFORE)


@pytest.mark.usefixtures("idle")
def test_without_a_ring_a_new_task_waits_for_the_poll(
    live_store: TaskStore, receiver: Receiver, tmp_path: Path
) -> None:
    """The same task stored without a ring is not even claimed within two seconds (the poll
    is 30 s away): the test above passes because of the ring. Rung then, it is delivered."""
    where = path()
    task_id = enqueue(live_store, receiver.url(where), PHOTO)
    time.sleep(2.0)
    task = live_store.get(task_id)
    assert task is not None and task.status is Status.QUEUED and task.attempts == 0
    assert receiver.bodies(where) == []
    assert Doorbell(tmp_path).ring() == 1
    receiver.wait_for(where, 1, timeout=WELL_BEFORE)


def test_stop_wakes_the_idle_fetch_loop_and_run_returns(idle: Idle, tmp_path: Path) -> None:
    """stop() on a worker waiting out a 30 s poll: run() returns within 10 s, and its wake-up
    socket is removed, so the web stops ringing it."""
    worker, thread = idle.worker, idle.thread
    assert worker.wake.path is not None
    assert thread.is_alive()
    worker.stop()
    thread.join(WELL_BEFORE)
    assert not thread.is_alive(), "run() did not return after stop(): the wait was not woken"
    assert not worker.wake.path.exists()
    assert Doorbell(tmp_path).ring() == 0


@pytest.mark.slow
def test_worker_py_is_rung_in_its_data_dir_and_leaves_no_socket_behind(
    receiver: Receiver, tmp_path: Path
) -> None:
    """The real processes: worker.py binds its wake-up socket in the stack's HOOK_DATA_DIR,
    an event POSTed after it has been idle a while comes back labeled, and a warm stop
    removes the socket."""
    with Stack(tmp_path) as stack:
        wakes = wake_dir(stack.logs / "data")
        stack.start_worker()
        deadline = time.monotonic() + 120  # the model loads first
        while not (sockets := sorted(wakes.glob(f"*{SUFFIX}"))):
            assert time.monotonic() < deadline, f"no wake-up socket; {stack.log('worker0')}"
            time.sleep(0.1)
        assert len(sockets) == 1
        time.sleep(3.0)  # idle a while: its polling is at its longest
        where = path()
        answer = stack.post(event(1, seed=7, callback_url=receiver.url(where)))
        assert answer.status_code == 200, answer.text
        [body] = receiver.wait_for(where, 1, timeout=60)
        assert "labels" in body
        stack.wait_status(answer.json()["task_id"], "done")
        stack.stop_workers()
        assert list(wakes.glob(f"*{SUFFIX}")) == []
