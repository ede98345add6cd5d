"""Annotated pictures: one JPEG per image of a task, drawn when first asked for and kept a while;
and the originals they are drawn from, kept HOOK_KEEP_PICTURES_HOURS after labeling."""

from __future__ import annotations

from collections.abc import Sequence

from bson import Binary
from pymongo import UpdateOne

from hook.store.base import Base, image_ids
from hook.task import Status

KEPT_BATCH = 500  # tasks whose kept images one delete removes


def picture_id(task_id: str, index: int) -> str:
    """A picture's `_id`: the same as its image's, so one is found from the other."""
    return f"{task_id}:{index}"


class Pictures(Base):
    """The `pictures` collection: `_id` "<task id>:<index>", like the task's images.

    Apart from the task document for the same reason as the images (a sorted claim over big
    documents is slow); kept by age (`purge_pictures`) and removed with their task, or when
    the task's originals go (`drop_kept_images`).
    """

    def original(self, task_id: str, index: int) -> bytes | None:
        """The bytes of the task's image `index` as Camio sent it, while they are kept."""
        doc = self.images.find_one({"_id": picture_id(task_id, index)}, {"data": 1})
        return None if doc is None else bytes(doc["data"])

    def drop_kept_images(self, before: float) -> int:
        """Delete the images (and pictures) of done tasks kept for pictures until before
        `before`, a batch at a time off the labeling path; the number of tasks. Failed tasks
        keep theirs (an operator may send them again) until retention."""
        dropped = 0
        kept = {"status": Status.DONE.value, "pictures_until": {"$lt": before}}
        while docs := list(self.tasks.find(kept, {"images": 1}).limit(KEPT_BATCH)):
            ids = [str(doc["_id"]) for doc in docs]
            images = [i for doc in docs for i in image_ids(str(doc["_id"]), len(doc["images"]))]
            self.images.delete_many({"_id": {"$in": images}})
            self.drop_pictures(ids)
            self.tasks.update_many({"_id": {"$in": ids}}, {"$unset": {"pictures_until": ""}})
            dropped += len(ids)
        return dropped

    def save_picture(
        self, task_id: str, index: int, jpeg: bytes, labeled_at: float | None = None
    ) -> None:
        """Store the picture of image `index` drawn from the labels of `labeled_at`, replacing
        one drawn before."""
        self.save_pictures([(task_id, index, jpeg)], labeled_at)

    def save_pictures(
        self, pictures: Sequence[tuple[str, int, bytes]], labeled_at: float | None = None
    ) -> None:
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
                            "labeled_at": labeled_at,
                        }
                    },
                    upsert=True,
                )
                for task_id, index, jpeg in pictures
            ],
            ordered=False,
        )

    def picture(self, task_id: str, index: int, labeled_at: float | None = None) -> bytes | None:
        """The JPEG of image `index`, or None if there is none (never drawn, or purged); with
        `labeled_at`, only one drawn from the labels of that time (not a relabeled task's)."""
        query: dict[str, object] = {"_id": picture_id(task_id, index)}
        if labeled_at is not None:
            query["labeled_at"] = labeled_at
        doc = self.pictures.find_one(query, {"data": 1})
        return None if doc is None else bytes(doc["data"])

    def picture_indexes(self, task_id: str) -> list[int]:
        """The indexes of the task's images whose picture has been drawn (and kept), in order."""
        found = self.pictures.find({"task_id": task_id}, {"index": 1})
        return sorted(int(doc["index"]) for doc in found)

    def purge_pictures(self, before: float) -> int:
        """Delete pictures made before `before` (past HOOK_KEEP_PICTURES_HOURS)."""
        return self.pictures.delete_many({"created_at": {"$lt": before}}).deleted_count
