"""What every part of the store shares: the collections, the clock and the lease filter."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from hook.task import Status, iso

log = logging.getLogger("hook.store")

Clock = Callable[[], float]

HISTORY = 10  # earlier failures kept on a task queued again
# the fields of a failed task that _queue_again reads
FAILURE = {"attempts": 1, "last_error": 1, "finished_at": 1, "history": 1}


def image_ids(task_id: str, count: int) -> list[str]:
    """The `_id`s of a task's image documents: found and deleted through the _id index."""
    return [f"{task_id}:{index}" for index in range(count)]


class Base:
    """The collections over one pymongo Database; the store never builds its own client."""

    def __init__(self, db: Database, *, clock: Clock = time.time) -> None:
        self.db = db
        self.tasks = db["tasks"]
        self.images = db["images"]
        self.heartbeats = db["workers"]
        self.counters = db["counters"]
        self.pictures = db["pictures"]  # annotated JPEGs, one per image, kept a while
        self.clock = clock
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the indexes the claim, sweeps and de-duplication rely on (idempotent)."""
        self.tasks.create_index([("status", ASCENDING), ("run_at", ASCENDING)])
        self.tasks.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        self.tasks.create_index([("status", ASCENDING), ("finished_at", DESCENDING)])
        self.tasks.create_index("dedup_key", unique=True)
        self.tasks.create_index([("report.state", ASCENDING), ("report.run_at", ASCENDING)])
        self.tasks.create_index([("report.state", ASCENDING), ("report.until", ASCENDING)])
        self.images.create_index("created_at")  # purge_orphans; all else goes by _id
        self.pictures.create_index("created_at")  # purge_pictures
        self.pictures.create_index("task_id")  # picture_indexes, drop_pictures
        self.tasks.create_index("pictures_until")  # drop_kept_images
        self.tasks.create_index([("camera", ASCENDING), ("labeled_at", DESCENDING)])  # latest
        # the page's label filter (a multikey index); its camera and status filters use the
        # indexes above ((field, _id) would serve them better, but nx-27017 cannot build it)
        self.tasks.create_index("labels")
        self._indexed = True

    def _ready(self) -> None:
        # Lazily, so a store can be built while MongoDB is still down; the unique index must
        # exist before the first insert or de-duplication would silently not happen.
        if not self._indexed:
            self.ensure_indexes()

    def ping(self) -> None:
        """Raise a PyMongoError unless the server answers."""
        self.db.command("ping")

    def _drop_images(self, task_id: str, count: int) -> None:
        self._drop_images_of([(task_id, count)])

    def _drop_images_of(self, tasks: Sequence[tuple[str, int]]) -> None:
        """Delete the images of these (task id, image count) in one round trip; best effort,
        as the purge of orphans catches what is left."""
        ids = [image_id for task_id, count in tasks for image_id in image_ids(task_id, count)]
        if not ids:
            return
        try:
            self.images.delete_many({"_id": {"$in": ids}})
        except PyMongoError:
            log.warning(
                "task(s) %s: could not delete their images; purge will",
                ", ".join(task_id for task_id, _ in tasks),
            )

    def _queue_again(self, failed: Mapping[str, Any], unset: Iterable[str] = ()) -> bool:
        """Queue a failed task again: a new series of attempts, its failure the newest entry of
        `history`. `failed` is the task document as read (its _id and the FAILURE fields); the
        update is guarded on that very failure, so False if the task changed meanwhile."""
        entry = (
            f"failed {iso(failed.get('finished_at'))} after {failed.get('attempts', 0)} "
            f"attempt(s): {failed.get('last_error')}"
        )
        history = [*list(failed.get("history") or [])[-(HISTORY - 1) :], entry]
        return (
            self.tasks.update_one(
                {
                    "_id": failed["_id"],
                    "status": Status.FAILED.value,
                    "finished_at": failed.get("finished_at"),
                },
                {
                    "$set": {
                        "status": Status.QUEUED.value,
                        "attempts": 0,
                        "run_at": self.clock(),
                        "history": history,
                    },
                    "$unset": dict.fromkeys(("finished_at", "last_error", "report", *unset), ""),
                },
            ).modified_count
            == 1
        )

    def drop_pictures(self, task_ids: Sequence[str]) -> int:
        """Delete every picture of these tasks (removed or forgotten)."""
        if not task_ids:
            return 0
        return self.pictures.delete_many({"task_id": {"$in": list(task_ids)}}).deleted_count

    def _update_owned(
        self, task_id: str, worker: str, fields: dict[str, Any], unset: Iterable[str] = ()
    ) -> bool:
        update: dict[str, Any] = {"$set": fields}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        return self.tasks.update_one(self._owned(task_id, worker), update).matched_count == 1

    @staticmethod
    def _owned(task_id: str, worker: str) -> dict[str, Any]:
        """The filter for a task `worker` holds."""
        return {"_id": task_id, "status": Status.RUNNING.value, "lease_owner": worker}
