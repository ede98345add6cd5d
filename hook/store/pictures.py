"""Annotated pictures: one JPEG per image of a task, kept a while after its labels are made."""

from __future__ import annotations

from collections.abc import Sequence

from bson import Binary
from pymongo import UpdateOne

from hook.store.base import Base


def picture_id(task_id: str, index: int) -> str:
    """A picture's `_id`: the same as its image's, so one is found from the other."""
    return f"{task_id}:{index}"


class Pictures(Base):
    """The `pictures` collection: `_id` "<task id>:<index>", like the task's images.

    Apart from the task document for the same reason as the images (a sorted claim over big
    documents is slow); kept by age (`purge_pictures`) and removed with their task.
    """

    def save_picture(self, task_id: str, index: int, jpeg: bytes) -> None:
        """Store the picture of image `index`, replacing one made by an earlier attempt."""
        self.save_pictures([(task_id, index, jpeg)])

    def save_pictures(self, pictures: Sequence[tuple[str, int, bytes]]) -> None:
        """`save_picture` for several (task id, index, JPEG), in one round trip.

        Upserts by `$set`: nx-27017's replace_one upsert ignores the filter's `_id` and
        inserts a second document with an ObjectId.
        """
        if not pictures:
            return
        self._ready()
        now = self.clock()
        self.pictures.bulk_write(
            [
                UpdateOne(
                    {"_id": picture_id(task_id, index)},
                    {
                        "$set": {
                            "task_id": task_id,
                            "index": index,
                            "data": Binary(jpeg),
                            "created_at": now,
                        }
                    },
                    upsert=True,
                )
                for task_id, index, jpeg in pictures
            ],
            ordered=False,
        )

    def existing(self, task_ids: Sequence[str]) -> set[str]:
        """Which of these tasks are still there (not forgotten), in one round trip."""
        found = self.tasks.find({"_id": {"$in": list(task_ids)}}, {"_id": 1})
        return {str(doc["_id"]) for doc in found}

    def picture(self, task_id: str, index: int) -> bytes | None:
        """The JPEG of image `index`, or None if there is none (never made, or purged)."""
        doc = self.pictures.find_one({"_id": picture_id(task_id, index)}, {"data": 1})
        return None if doc is None else bytes(doc["data"])

    def picture_indexes(self, task_id: str) -> list[int]:
        """The indexes of the images of the task that have a picture, in order."""
        return self.pictures_of([task_id]).get(task_id, [])

    def pictures_of(self, task_ids: Sequence[str]) -> dict[str, list[int]]:
        """`picture_indexes` of several tasks in one query (tasks without any left out)."""
        found: dict[str, list[int]] = {}
        if task_ids:
            docs = self.pictures.find(
                {"task_id": {"$in": list(task_ids)}}, {"task_id": 1, "index": 1}
            )
            for doc in docs:
                found.setdefault(str(doc["task_id"]), []).append(int(doc["index"]))
        return {task_id: sorted(indexes) for task_id, indexes in found.items()}

    def purge_pictures(self, before: float) -> int:
        """Delete pictures made before `before` (past HOOK_KEEP_PICTURES_HOURS)."""
        return self.pictures.delete_many({"created_at": {"$lt": before}}).deleted_count
