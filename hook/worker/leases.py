"""The lease keeper: a worker's tasks stay leased to it while it works, and it says it is alive.

One thread renews the leases of every task the worker holds, more often than they would run out,
and records a heartbeat (hook.store.Heartbeat) each time, for `status` and `hook run`. When the
worker is stopping it keeps on until the last task is settled, then records "stopped" and ends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from hook.store import Heartbeat, TaskStore

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # how often a worker records that it is alive
EAGER_SECONDS = 1.0  # a beat comes this soon after a task is done, not a whole period later


@dataclass(frozen=True)
class Holding:
    """What the worker holds at one moment: its claims (lease owners), their tasks, tasks done."""

    owners: list[str]
    task_ids: list[str]
    done: int
    round_trips: int = 0  # MongoDB commands sent so far (hook.store.round_trips), 0 if not counted


class LeaseKeeper:
    """Renews leases and beats until the worker has stopped and holds nothing; a part of the
    worker (hook.worker.parts), started first and stopped last."""

    name = "leases"

    def __init__(
        self,
        store: TaskStore,
        worker_id: str,
        lease_seconds: float,
        holding: Callable[[], Holding],
        stopping: threading.Event,
        *,
        started_at: float,
    ) -> None:
        self.store, self.worker_id, self.lease_seconds = store, worker_id, lease_seconds
        self.holding, self.stopping, self.started_at = holding, stopping, started_at
        self.period = min(lease_seconds / 3, HEARTBEAT_SECONDS)
        self.last = threading.Event()  # every other part has stopped: what is held stays so
        self.thread = threading.Thread(target=self.run, name="leases", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Once every other part has stopped: end as soon as nothing is held, or at once if
        something still is (nothing can settle it now; its lease brings it back)."""
        self.last.set()
        self.thread.join()

    def run(self) -> None:
        """The keeper thread's loop; returns once stopping and nothing is held (or, stopped
        last, at once)."""
        while True:
            held = self.holding()
            if self.last.is_set() and held.task_ids:
                log.warning(
                    "worker %s: %d task(s) still held at exit; their leases will bring them back",
                    self.worker_id,
                    len(held.task_ids),
                )
            if self.stopping.is_set() and (not held.task_ids or self.last.is_set()):
                try:
                    self._beat(held, state="stopped")
                except PyMongoError as exc:  # stopping while MongoDB is down: say so, end cleanly
                    log.warning(
                        "worker %s: could not record that it stopped: %s", self.worker_id, exc
                    )
                return
            try:
                if held.task_ids:
                    self.store.renew(held.task_ids, held.owners, self.lease_seconds)
                self._beat(held, state="stopping" if self.stopping.is_set() else "running")
            except PyMongoError as exc:
                log.warning("worker %s: could not renew leases: %s", self.worker_id, exc)
            if self.stopping.is_set():
                time.sleep(0.5)  # draining: check often enough to exit soon after the last task
            else:
                self._rest(held.done)

    def _rest(self, done: int) -> None:
        """Wait a period, or less once more tasks are done (then the next beat says so, at
        most one beat a second: `status` and the live page show a count that is current)."""
        deadline = time.monotonic() + self.period
        while not self.stopping.wait(min(EAGER_SECONDS, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self.holding().done != done:
                return

    def _beat(self, held: Holding, state: str) -> None:
        self.store.beat(
            Heartbeat(
                worker=self.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                state=state,
                started_at=self.started_at,
                every=self.period,
                done=held.done,
                in_flight=len(held.task_ids),
                round_trips=held.round_trips,
            )
        )
