"""Round trips: how many commands this process has sent MongoDB, counted by pymongo's monitor.

Each command is one round trip (a getMore of a long cursor is one more). The worker beats the
count with its heartbeat, so `bench/worker.py` can say how many a task costs.
"""

from __future__ import annotations

import threading

from pymongo import monitoring


class RoundTrips(monitoring.CommandListener):
    """Counts the commands started; cheap enough to stay on (one counter step per command)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:  # commands start in several threads at once
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
