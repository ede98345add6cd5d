"""Commands: what a MongoClient sent, as (command name, collection), for tests that count the
round trips of a batch ("update", "tasks"), ("delete", "images") and so on."""

from __future__ import annotations

import threading

from pymongo import monitoring


class Commands(monitoring.CommandListener):
    """Give it to a MongoClient's event_listeners; commands start in several threads."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def to(self, name: str, collection: str) -> int:
        """How many `name` commands went to `collection` so far."""
        with self.lock:
            return self.sent.count((name, collection))

    def mark(self) -> int:
        """A place in the record, for `since`."""
        with self.lock:
            return len(self.sent)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self.lock:
            return self.sent[mark:]

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        with self.lock:
            self.sent.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
