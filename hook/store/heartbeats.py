"""Worker heartbeats: who is alive, for `status` and the launcher."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING

from hook.store.base import Base


class Heartbeats(Base):
    """The `workers` collection: one document per worker, refreshed while it runs."""

    def beat(self, worker: str, info: dict[str, Any]) -> None:
        """Record that `worker` is alive, with a few facts about it."""
        self.heartbeats.update_one(
            {"_id": worker}, {"$set": {**info, "seen_at": self.clock()}}, upsert=True
        )

    def workers(self) -> list[dict[str, Any]]:
        """Heartbeats, most recent first."""
        return list(self.heartbeats.find().sort("seen_at", DESCENDING))

    def forget_workers(self, before: float) -> int:
        """Drop heartbeats last seen before `before` (workers long gone)."""
        return self.heartbeats.delete_many({"seen_at": {"$lt": before}}).deleted_count
