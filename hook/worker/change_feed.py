"""Instant pick-up across machines: a worker thread that follows MongoDB's change stream of
queued tasks and rings the worker's WakeUp on each one.

Only replica sets and mongos stream changes; against a standalone mongod or the embedded
nx-27017 the thread says so once and ends, and the local wake-up (hook.wakeup) and polling
do the work. A stream that worked and then failed (network, election) is opened again after
a backoff, from its last resume token, so no change is missed; the feed never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from pymongo.errors import OperationFailure, PyMongoError

from hook.wakeup import WakeUp

log = logging.getLogger(__name__)

AWAIT = 1.0  # seconds each getMore waits for a change: also how long a stop may take
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
# a server that answers an empty getMore in under a tenth of AWAIT this many times in a row
# does not wait for changes (nx-27017 does not): following it would be polling it flat out
FAST_EMPTY = 5
HISTORY_LOST = (280, 286)  # ChangeStreamFatalError, ChangeStreamHistoryLost: start from now


class Stream(Protocol):
    """What the feed uses of a pymongo change stream."""

    @property
    def resume_token(self) -> Mapping[str, Any] | None: ...

    def try_next(self) -> Mapping[str, Any] | None: ...

    def close(self) -> None: ...


class Source(Protocol):
    """What the feed uses of the store (hook.store.feed.Feed)."""

    def streams_changes(self) -> bool: ...

    def watch_queued(self, resume_after: Mapping[str, Any] | None, await_seconds: float) -> Any:
        """A Stream (pymongo's CollectionChangeStream)."""


class ChangeFeed:
    """`run()` is a thread's target: it rings `wake` on every task that becomes queued until
    `stopping` is set (then within AWAIT seconds), or returns at once where the server has
    no change streams."""

    def __init__(
        self,
        source: Source,
        wake: WakeUp,
        stopping: threading.Event,
        *,
        await_seconds: float = AWAIT,
        backoff: tuple[float, float] = (BACKOFF_FIRST, BACKOFF_MAX),
    ) -> None:
        self.source, self.wake, self.stopping = source, wake, stopping
        self.await_seconds = await_seconds
        self.backoff = backoff
        self.resume: Mapping[str, Any] | None = None
        self.following = False  # a stream has opened: later errors are transient
        self.rings = 0

    def run(self) -> None:
        delay = self.backoff[0]
        supported: bool | None = None
        while not self.stopping.is_set():
            try:
                if supported is None:
                    supported = self.source.streams_changes()
                if not supported:
                    return _fall_back("the MongoDB server has no change streams")
                if self._follow():
                    return _fall_back("the MongoDB server's change stream does not wait")
                delay = self.backoff[0]
            except OperationFailure as exc:
                if not self.following:
                    return _fall_back(f"the MongoDB server refuses change streams: {exc}")
                if exc.code in HISTORY_LOST:
                    self.resume = None
                delay = self._pause(exc, delay)
            except PyMongoError as exc:
                delay = self._pause(exc, delay)
            except Exception as exc:  # the loop's edge: never end the worker's pick-up
                log.exception("change feed: unexpected error")
                delay = self._pause(exc, delay)

    def _follow(self) -> bool:
        """Ring on each change until stopping or an error; True if the server does not wait."""
        stream = self.source.watch_queued(self.resume, self.await_seconds)
        try:
            if not self.following:
                log.info("pick-up follows MongoDB's change stream of queued tasks")
                self.following = True
            fast = 0
            while not self.stopping.is_set():
                began = time.monotonic()
                change = stream.try_next()
                self.resume = stream.resume_token or self.resume
                if change is not None:
                    self.wake.ring()
                    self.rings += 1
                    fast = 0
                elif time.monotonic() - began < self.await_seconds / 10:
                    fast += 1
                    if fast >= FAST_EMPTY:
                        return True
                else:
                    fast = 0
            return False
        finally:
            stream.close()

    def _pause(self, exc: BaseException, delay: float) -> float:
        log.warning(
            "change feed: %s: %s; opening it again in %.1f s (polling meanwhile)",
            type(exc).__name__,
            exc,
            delay,
        )
        self.wake.ring()  # a task may have come meanwhile: look now
        self.stopping.wait(delay)
        return min(delay * 2, self.backoff[1])


def _fall_back(why: str) -> None:
    log.info("%s: pick-up uses the local wake-up and polling", why)
