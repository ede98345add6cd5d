"""Reading the queue for people: the listing, the status report, the metrics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING

from hook.store.base import Base
from hook.store.records import Page
from hook.task import PENDING, Status, Task


class Reading(Base):
    """Tasks as the listing and reports show them; never image bytes."""

    def get(self, task_id: str) -> Task | None:
        doc = self.tasks.find_one({"_id": task_id}, {"payload_json": 0})
        return Task.from_doc(doc) if doc else None

    def pending(self, statuses: Iterable[Status] = PENDING, limit: int = 100) -> list[Task]:
        """Tasks in `statuses`: pending ones by next run, finished ones newest first."""
        wanted = [Status(s).value for s in statuses]
        finished = all(s in (Status.DONE, Status.FAILED) for s in wanted)
        # ties (one batch's completions) in a stable order: the same listing twice is the same
        order = (
            [("finished_at", DESCENDING), ("_id", DESCENDING)]
            if finished
            else [("run_at", ASCENDING), ("_id", ASCENDING)]
        )
        cursor = (
            self.tasks.find({"status": {"$in": wanted}}, {"payload_json": 0, "result_json": 0})
            .sort(order)
            .limit(limit)
        )
        return [Task.from_doc(doc) for doc in cursor]

    def page(
        self,
        *,
        camera: str | None = None,
        label: str | None = None,
        status: Status | None = None,
        before: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> Page:
        """Events of `camera`, with `label` reported, in `status` (each None: any), `limit` of
        them newest first: those just older than the task id `before`, or just newer than
        `after`, or the newest. Paged by `_id` (ids sort as they were made), so a page is the
        same each time and a cursor stays good while tasks arrive or go; within a page they are
        in order of arrival, as ids made in one second by several web processes are not."""
        match: dict[str, Any] = {}
        if camera is not None:
            match["camera"] = camera
        if label is not None:
            match["labels"] = {"$in": [label]}  # nx-27017 misses a bare value in a list
        if status is not None:
            match["status"] = Status(status).value
        if after is not None:  # up: the `limit` just newer, found oldest first
            found = self._paged({**match, "_id": {"$gt": after}}, ASCENDING, limit + 1)
            if len(found) <= limit:  # up to the newest: the first page, full
                return self.page(camera=camera, label=label, status=status, limit=limit)
            older = found[0].id if self._any(match, "$lt", found[0].id) else None
            return Page(_arrived(found[:limit]), older, found[limit - 1].id)
        down = {**match, "_id": {"$lt": before}} if before is not None else match
        found = self._paged(down, DESCENDING, limit + 1)
        edge = found[0].id if found else before
        newer = edge if edge is not None and self._any(match, "$gt", edge) else None
        older = found[limit - 1].id if len(found) > limit else None
        return Page(_arrived(found[:limit]), older, newer)

    def _paged(self, match: dict[str, Any], direction: int, limit: int) -> list[Task]:
        cursor = self.tasks.find(match, {"payload_json": 0}).sort("_id", direction).limit(limit)
        return [Task.from_doc(doc) for doc in cursor]

    def _any(self, match: dict[str, Any], side: str, task_id: str) -> bool:
        """Whether a task of `match` lies on `side` ($lt, $gt) of `task_id`."""
        found = self.tasks.find({**match, "_id": {side: task_id}}, {"_id": 1}).limit(1)
        return any(True for _ in found)

    def oldest_pending(self) -> Task | None:
        docs = self.tasks.find(
            {"status": {"$in": [s.value for s in PENDING]}}, {"payload_json": 0, "result_json": 0}
        )
        for doc in docs.sort("created_at", ASCENDING).limit(1):
            return Task.from_doc(doc)
        return None

    def latest_of_camera(self, camera: str, now: float) -> Task | None:
        """The camera's last labeled event whose images are still kept for pictures."""
        kept = {"camera": camera, "pictures_until": {"$gt": now}}
        newest = [("labeled_at", DESCENDING), ("_id", DESCENDING)]
        for doc in self.tasks.find(kept, {"payload_json": 0}).sort(newest).limit(1):
            return Task.from_doc(doc)
        return None

    def oldest_due(self, now: float) -> float | None:
        """When the queued task due longest became due (its run_at), or None: none is due.
        Workers that claim keep this near now; a growing age means none is labeling."""
        due = {"status": Status.QUEUED.value, "run_at": {"$lte": now}}
        for doc in self.tasks.find(due, {"run_at": 1}).sort("run_at", ASCENDING).limit(1):
            return float(doc["run_at"])
        return None

    def pictures_overdue(self, now: float) -> int:
        """Done tasks still holding their images past `pictures_until`: housekeeping's backlog
        (it drops them hourly, in batches)."""
        return self.tasks.count_documents(
            {"status": Status.DONE.value, "pictures_until": {"$lt": now}}
        )

    def stats(self) -> dict[str, int]:
        """Task count by status, every status present (zero when none)."""
        counts = {status.value: 0 for status in Status}
        for row in self.tasks.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
            counts[str(row["_id"])] = int(row["n"])
        return counts

    def retrying(self) -> int:
        """Queued tasks that failed an attempt already and wait for their next one."""
        return self.tasks.count_documents({"status": Status.QUEUED.value, "attempts": {"$gt": 0}})


def _arrived(tasks: list[Task]) -> tuple[Task, ...]:
    """Newest first by arrival (then id, for ties)."""
    return tuple(sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True))
