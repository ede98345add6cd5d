"""Counters: the installation's figures, added to by every web and worker process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne

from hook.store.base import Base
from hook.store.records import Counter


class Counters(Base):
    """The `counters` collection: one document per key, each a set of numbers to add to.

    A document made by `admit` also holds the names it admitted (a list, not a number).
    """

    def add(
        self, key: str, amounts: dict[str, float], latest: dict[str, float] | None = None
    ) -> None:
        """Add `amounts` to the numbers under `key`, creating it at zero first; raise the
        numbers in `latest` to those values where they are lower (e.g. the time last seen)."""
        self.counters.update_one({"_id": key}, _addition(amounts, latest), upsert=True)

    def add_many(
        self, adds: Sequence[tuple[str, dict[str, float], dict[str, float] | None]]
    ) -> None:
        """`add` for several keys in one round trip: (key, amounts, latest) each."""
        if adds:
            self.counters.bulk_write(
                [
                    UpdateOne({"_id": key}, _addition(amounts, latest), upsert=True)
                    for key, amounts, latest in adds
                ],
                ordered=False,
            )

    def admit(self, key: str, name: str, cap: int) -> bool:
        """Is `name` one of the first `cap` names admitted under `key`? Admitted if there is room.

        One atomic update decides, so processes admitting names at once never exceed `cap`.
        """
        # $nin, on a list made up front: nx-27017's updates match $ne against a list as a whole
        self.counters.update_one({"_id": key}, {"$setOnInsert": {"n": 0, "names": []}}, upsert=True)
        room = {"_id": key, "n": {"$lt": cap}, "names": {"$nin": [name]}}
        taken = self.counters.update_one(room, {"$push": {"names": name}, "$inc": {"n": 1}})
        if taken.modified_count:
            return True
        return self.counters.find_one({"_id": key, "names": name}, {"_id": 1}) is not None

    def counted(self) -> list[Counter]:
        """Every counter, as added to so far (its numbers only)."""
        return [
            Counter(
                str(doc["_id"]),
                {k: float(v) for k, v in doc.items() if k != "_id" and isinstance(v, int | float)},
            )
            for doc in self.counters.find()
        ]


def _addition(amounts: dict[str, float], latest: dict[str, float] | None) -> dict[str, Any]:
    """The update that adds `amounts` and raises the numbers in `latest`."""
    return {"$inc": amounts, **({"$max": latest} if latest else {})}
