"""What the store hands out besides tasks: small frozen records, never raw documents."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hook.task import Task


@dataclass(frozen=True)
class Counter:
    """One counter document: its key (e.g. "deliveries|delivered") and its numbers."""

    key: str
    values: dict[str, float]

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


@dataclass(frozen=True)
class Heartbeat:
    """What a worker last said about itself; `seen_at` is set by the store when it is recorded."""

    worker: str  # host:pid:random, unique per process
    host: str
    pid: int
    state: str  # running, stopping, stopped
    started_at: float
    every: float  # seconds between beats: a worker silent for three of them is gone
    done: int  # tasks it finished
    in_flight: int
    round_trips: int = 0  # MongoDB commands the process has sent since it started
    seen_at: float = 0.0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Heartbeat:
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(worker=str(doc["_id"]), **fields)

    def to_doc(self, seen_at: float) -> dict[str, Any]:
        doc = asdict(self)
        del doc["worker"]
        return {**doc, "seen_at": seen_at}

    def state_at(self, now: float) -> str:
        """running, stopping, stopped (it said so on its way out), or gone: silent for three
        beats without saying it stopped (killed, hung, or its machine down)."""
        if self.state != "stopped" and now - self.seen_at >= 3 * self.every:
            return "gone"
        return self.state


@dataclass(frozen=True)
class Page:
    """One page of events, newest first, and the cursors to the pages beside it: `older` is the
    `before` of the next page down, `newer` the `after` of the one up (None: there is none)."""

    tasks: tuple[Task, ...]
    older: str | None
    newer: str | None
