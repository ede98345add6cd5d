"""The worker's background parts, started and stopped in one listed order (celery's bootsteps).

    leases        renews the held tasks' leases and beats; ends once stopping and nothing is held
    reports       sends failure reports, a thread of their own; ends when stopping
    change feed   rings the worker on every newly queued task; ends when stopping
    housekeeping  the queue's chores (expired leases, retention); ends when stopping
    rules         reads HOOK_RULES again when it changes (never a lane); ends when stopping
    completions   records delivered jobs done in batches; stopped after the last delivery

They start in this order before the stages (fetch, lanes, delivery) and stop in the reverse
order after them: completions are written while the leases are still renewed, and the keeper
goes last, once nothing is held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Part(Protocol):
    """A background part: `start` returns at once; `stop` returns once the part has ended."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Loop:
    """A part that is a loop in a thread of its own, which ends by itself (on the worker's
    `stopping`, and whatever else it waits for); `stop` waits for it."""

    def __init__(self, name: str, loop: Callable[[], None]) -> None:
        self.name = name
        self.thread = threading.Thread(target=loop, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.join()


class Parts:
    """The parts in their order: started first to last, stopped last to first (only those
    started, so a failed start still stops what runs)."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = tuple(parts)
        self.started: list[Part] = []

    def start(self) -> None:
        for part in self.parts:
            part.start()
            self.started.append(part)
            log.debug("%s started", part.name)

    def stop(self) -> None:
        while self.started:
            part = self.started.pop()
            part.stop()
            log.debug("%s stopped", part.name)
