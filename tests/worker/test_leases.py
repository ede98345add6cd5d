"""The lease keeper's heartbeat: current soon after a task is done, not a whole period later."""

from __future__ import annotations

import threading
import time

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
