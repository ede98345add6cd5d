"""End to end, the delivery pool against slow callback hosts: a hanging host holds only its
share of the slots, and tasks waiting in a worker's memory for a slot survive its kill -9."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from hook.store import TaskStore
from hook.worker.delivery import PER_HOST
from tests.e2e.support import send
from tests.factories import DATA, image_bytes
from tests.procs import Stack
from tests.receiver import Receiver

pytestmark = pytest.mark.slow
DB = "e2e_delivery"


@pytest.mark.fault
def test_a_hanging_callback_host_does_not_hold_up_deliveries_to_others(
    stack: Stack, receiver: Receiver
) -> None:
    slow = Receiver()  # another host (port): it takes 8 s to answer each POST
    try:
        slow_paths = [f"/slow/{uuid.uuid4().hex}" for _ in range(PER_HOST + 2)]
        for path in slow_paths:
            slow.delay[path] = 8.0
        stack.start_worker()
        slow_ids = [
            send(stack, slow, [("2017-05-05T01:31:13Z", image_bytes(64, 48, seed=900 + n))], path)[
                0
            ]
            for n, path in enumerate(slow_paths)
        ]
        fast = [
            send(stack, receiver, [("2017-05-05T01:31:14Z", image_bytes(64, 48, seed=950 + n))])
            for n in range(3)
        ]
        for _, path in fast:
            receiver.wait_for(path, 1, timeout=6)
        for path in slow_paths:  # and the slow host gets every one of its own in the end
            slow.wait_for(path, 1, timeout=60)
        for task_id in slow_ids:  # its tasks waited their turn in memory: one attempt each
            assert stack.wait_status(task_id, "done")["attempts"] == 1
    finally:
        slow.close()
    # No slot came free on the slow host before 8 s: it held PER_HOST deliveries (its share of
    # the worker's IN_FLIGHT), the rest waited, and the others were all delivered meanwhile.
    first = min(at for _, at in slow.arrivals)
    assert sum(at < first + 7.5 for _, at in slow.arrivals) == PER_HOST
    assert len(slow.arrivals) == PER_HOST + 2
    fast_paths = {path for _, path in fast}
    assert max(at for path, at in receiver.arrivals if path in fast_paths) < first + 7.5


def test_tasks_waiting_in_a_killed_workers_memory_are_delivered_by_another(
    stack: Stack, receiver: Receiver, store: TaskStore
) -> None:
    """Deliveries to one slow host beyond its PER_HOST ceiling wait in the worker's memory,
    leased; kill -9 that worker and their leases bring them back: every task delivered, the
    waiting ones exactly once, with the labels the first worker stored."""
    paths = [f"/cb/{uuid.uuid4().hex}" for _ in range(PER_HOST + 4)]
    for path in paths:
        receiver.delay[path] = 8  # the first worker dies while these answers are awaited
    first = stack.start_worker(HOOK_LEASE_SECONDS="2")
    photo = (DATA / "dog.jpg").read_bytes()
    ids = [send(stack, receiver, [("2017-05-05T01:31:13Z", photo)], path)[0] for path in paths]
    deadline = time.monotonic() + 60
    while not all((task := store.get(i)) is not None and task.result_json for i in ids):
        assert time.monotonic() < deadline, "not every task was labeled"
        time.sleep(0.1)
    posted = {path for path in paths if receiver.requests_to(path)}
    while len(posted) < PER_HOST:
        assert time.monotonic() < deadline, f"only {len(posted)} POSTs under way"
        time.sleep(0.1)
        posted = {path for path in paths if receiver.requests_to(path)}
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    waited = [path for path in paths if path not in posted]
    assert len(posted) == PER_HOST and len(waited) == 4  # at the ceiling; the rest waited
    for path in paths:
        receiver.delay[path] = 0
    stack.start_worker(HOOK_LEASE_SECONDS="2")
    for task_id in ids:
        stack.wait_status(task_id, "done")
    for path in waited:
        assert len(receiver.requests_to(path)) == 1  # never posted by the worker that died
    for path in posted:
        bodies = receiver.wait_for(path, 2, timeout=30)
        assert bodies[0] == bodies[1]  # the stored labels, resent


def test_a_task_is_done_when_its_callback_answered_not_when_that_was_written(
    stack: Stack, receiver: Receiver, store: TaskStore
) -> None:
    """A task's finish (the page's "finished", `hook show`) was the time of the batched
    completion write, 0.4-0.8 s after the callback arrived; now it is the callback's answer,
    within 50 ms of the receiver seeing it, for each of a few events labeled together."""
    paths = [f"/cb/{uuid.uuid4().hex}" for _ in range(4)]
    ids = [
        send(stack, receiver, [("2017-05-05T01:31:13Z", image_bytes(64, 48, seed=990 + n))], p)[0]
        for n, p in enumerate(paths)
    ]
    wall_minus_monotonic = time.time() - time.monotonic()
    stack.start_worker()
    for task_id, path in zip(ids, paths, strict=True):
        stack.wait_status(task_id, "done")
        (arrived,) = [at + wall_minus_monotonic for p, at in receiver.arrivals if p == path]
        task = store.get(task_id)
        assert task is not None and task.finished_at is not None
        assert abs(task.finished_at - arrived) < 0.05, task.finished_at - arrived
