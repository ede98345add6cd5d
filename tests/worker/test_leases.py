"""The lease keeper's heartbeat: current soon after a task is done, not a whole period later."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from pymongo.database import Database

from hook.store import TaskStore
from hook.worker.leases import Holding, LeaseKeeper


def test_a_task_done_is_in_the_next_beat_within_a_second_or_so(db: Database) -> None:
    store = TaskStore(db)
    done = [0]
    stopping = threading.Event()
    keeper = LeaseKeeper(
        store,
        "host:1:abc",
        60.0,
        lambda: Holding([], [], done[0]),
        stopping,
        started_at=time.time(),
    )
    assert keeper.period == 10.0  # a beat every 10 s otherwise
    thread = threading.Thread(target=keeper.run)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not store.workers():
            assert time.monotonic() < deadline, "no first beat"
            time.sleep(0.05)
        done[0] = 3  # three tasks done since
        changed = time.monotonic()
        while store.workers()[0].done != 3:
            assert time.monotonic() - changed < 3, "the beat waited for its period"
            time.sleep(0.05)
    finally:
        stopping.set()
        thread.join(10)
    assert not thread.is_alive()
    (beat,) = store.workers()
    assert beat.state == "stopped" and beat.done == 3


def test_stopped_last_the_keeper_ends_even_if_a_task_is_still_held(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Once every other part has stopped nothing can settle what is held: the keeper says so
    and ends (the lease brings the task back) instead of renewing it for ever."""
    store, stopping = TaskStore(db), threading.Event()
    keeper = LeaseKeeper(
        store,
        "host:2:abc",
        60.0,
        lambda: Holding(["host:2:abc#1"], ["t1"], 0),
        stopping,
        started_at=time.time(),
    )
    keeper.start()
    stopping.set()
    time.sleep(0.6)  # stopping: it keeps renewing while something is held
    assert keeper.thread.is_alive()
    with caplog.at_level(logging.WARNING, logger="hook.worker.leases"):
        stopper = threading.Thread(target=keeper.stop)
        stopper.start()
        stopper.join(5)
    assert not stopper.is_alive() and not keeper.thread.is_alive()
    assert "1 task(s) still held at exit" in caplog.text
    assert store.workers()[0].state == "stopped"
