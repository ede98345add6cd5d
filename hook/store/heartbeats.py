"""Worker heartbeats: who is alive, for `status` and the launcher."""

from __future__ import annotations

from pymongo import DESCENDING

from hook.store.base import Base
from hook.store.records import Heartbeat


class Heartbeats(Base):
    """The `workers` collection: one document per worker, refreshed while it runs."""

    def beat(self, heartbeat: Heartbeat) -> None:
        """Record that a worker is alive, as of now, with what it says about itself."""
        self.heartbeats.update_one(
            {"_id": heartbeat.worker}, {"$set": heartbeat.to_doc(self.clock())}, upsert=True
        )

    def workers(self) -> list[Heartbeat]:
        """Heartbeats, most recent first."""
        return [Heartbeat.from_doc(d) for d in self.heartbeats.find().sort("seen_at", DESCENDING)]

    def forget_workers(self, before: float) -> int:
        """Drop heartbeats last seen before `before` (workers long gone)."""
        return self.heartbeats.delete_many({"seen_at": {"$lt": before}}).deleted_count
