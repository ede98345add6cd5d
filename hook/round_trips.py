"""Round trips: how many commands this process has sent MongoDB, counted by pymongo's monitor.

Each command is one round trip (a getMore of a long cursor is one more). The worker beats the
count with its heartbeat, so `bench/worker.py` and `status` can say how many a task costs.
"""

from __future__ import annotations

import itertools

from pymongo import monitoring


class RoundTrips(monitoring.CommandListener):
    """Counts the commands started; cheap enough to stay on (one counter step per command)."""

    def __init__(self) -> None:
        self._started = itertools.count()
        self._seen = 0

    @property
    def count(self) -> int:
        return self._seen

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        # next() on itertools.count is atomic under the GIL, unlike `+= 1` on an attribute
        self._seen = next(self._started) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
