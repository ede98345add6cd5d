"""Counters: the installation's figures, added to by every web and worker process."""

from __future__ import annotations

from hook.store.base import Base
from hook.store.records import Counter


class Counters(Base):
    """The `counters` collection: one document per key, each a set of numbers to add to."""

    def add(self, key: str, amounts: dict[str, float]) -> None:
        """Add `amounts` to the numbers under `key`, creating it at zero first."""
        self.counters.update_one({"_id": key}, {"$inc": amounts}, upsert=True)

    def counted(self) -> list[Counter]:
        """Every counter, as added to so far."""
        return [
            Counter(str(doc["_id"]), {k: float(v) for k, v in doc.items() if k != "_id"})
            for doc in self.counters.find()
        ]
