"""Annotated pictures: one JPEG per image of a task, kept a while after its labels are made."""

from __future__ import annotations

from bson import Binary

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
        """Store the picture of image `index`, replacing one made by an earlier attempt.

        An upsert by `$set`: nx-27017's replace_one upsert ignores the filter's `_id` and
        inserts a second document with an ObjectId.
        """
        self._ready()
        fields = {"task_id": task_id, "index": index, "data": Binary(jpeg),
                  "created_at": self.clock()}  # fmt: skip
        self.pictures.update_one({"_id": picture_id(task_id, index)}, {"$set": fields}, upsert=True)

    def picture(self, task_id: str, index: int) -> bytes | None:
        """The JPEG of image `index`, or None if there is none (never made, or purged)."""
        doc = self.pictures.find_one({"_id": picture_id(task_id, index)}, {"data": 1})
        return None if doc is None else bytes(doc["data"])

    def picture_indexes(self, task_id: str) -> list[int]:
        """The indexes of the images of the task that have a picture, in order."""
        docs = self.pictures.find({"task_id": task_id}, {"index": 1})
        return sorted(int(doc["index"]) for doc in docs)

    def purge_pictures(self, before: float) -> int:
        """Delete pictures made before `before` (past HOOK_KEEP_PICTURES_HOURS)."""
        return self.pictures.delete_many({"created_at": {"$lt": before}}).deleted_count
