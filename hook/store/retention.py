"""Retention: finished tasks and stray images removed once they are old enough."""

from __future__ import annotations

from hook.store.base import Base, image_ids
from hook.task import ReportState, Status


class Retention(Base):
    """What the worker's housekeeping deletes."""

    def purge(self, before: float, batch: int = 500) -> int:
        """Delete done and failed tasks finished before `before`, with any images left and
        their pictures; a failed task whose report is still owed (due, or being sent) stays
        until the report is sent or given up on."""
        removed = 0
        owed = [ReportState.DUE.value, ReportState.SENDING.value]
        finished = {
            "status": {"$in": [Status.DONE.value, Status.FAILED.value]},
            "finished_at": {"$lt": before},
            "report.state": {"$nin": owed},
        }
        while docs := list(self.tasks.find(finished, {"images": 1}).limit(batch)):
            images = [i for doc in docs for i in image_ids(doc["_id"], len(doc["images"]))]
            ids = [d["_id"] for d in docs]
            self.images.delete_many({"_id": {"$in": images}})
            self.drop_pictures(ids)
            removed += self.tasks.delete_many({"_id": {"$in": ids}}).deleted_count
        return removed

    def purge_orphans(self, before: float, batch: int = 500) -> int:
        """Delete images stored before `before` whose task never appeared (a failed enqueue)."""
        old = self.images.find({"created_at": {"$lt": before}}, {"task_id": 1}).limit(batch)
        task_ids = {doc["task_id"] for doc in old}
        if not task_ids:
            return 0
        alive = {
            doc["_id"] for doc in self.tasks.find({"_id": {"$in": list(task_ids)}}, {"_id": 1})
        }
        orphans = list(task_ids - alive)
        if not orphans:
            return 0
        return self.images.delete_many({"task_id": {"$in": orphans}}).deleted_count
