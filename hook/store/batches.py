"""Batches: several tasks claimed, loaded and completed in one round trip each.

A busy worker's MongoDB cost is its round trips, not the documents: claiming four tasks at
once costs what claiming one does (a find and one bulk update), and so do their images and
their completions. Each task keeps a lease of its own (its own owner), so the rest of the
store's per-task guarantees hold unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne

from hook.store.base import Base, image_ids
from hook.task import Status, Task

CLAIM_TRIES = 3  # another worker took every task found: look again at once, this often


class Batches(Base):
    """The consumer's side of the queue, a batch at a time."""

    def claim_many(self, owners: Sequence[str], lease_seconds: float) -> list[tuple[str, Task]]:
        """Up to one due task per owner, first due first, each leased to its owner; [] only
        when nothing is due (a batch another worker took first is tried again at once).

        Two round trips: the due tasks are read, then each is taken only if no claim came
        between (its `claimed_at` as read), so a task is never handed out twice; a third
        reads back which were taken if another worker won some.
        """
        for _ in range(CLAIM_TRIES):
            claimed = self._claim_once(owners, lease_seconds)
            if claimed is None or claimed:
                return claimed or []
        return []

    def _claim_once(
        self, owners: Sequence[str], lease_seconds: float
    ) -> list[tuple[str, Task]] | None:
        """The tasks this try took; None if none was due."""
        now = self.clock()
        docs = list(
            self.tasks.find(
                {"status": Status.QUEUED.value, "run_at": {"$lte": now}},
                sort=[("run_at", ASCENDING)],
                limit=len(owners),
            )
        )
        if not docs:
            return None
        taken = {
            "status": Status.RUNNING.value,
            "lease_until": now + lease_seconds,
            "claimed_at": now,
        }
        claims = [
            UpdateOne(
                {
                    "_id": doc["_id"],
                    "status": Status.QUEUED.value,
                    "claimed_at": doc.get("claimed_at"),
                },
                {"$set": {**taken, "lease_owner": owner}, "$inc": {"attempts": 1}},
            )
            for doc, owner in zip(docs, owners, strict=False)
        ]
        result = self.tasks.bulk_write(claims, ordered=False)
        pairs = list(zip(owners, docs, strict=False))
        if result.modified_count == len(docs):  # all ours: as read, with the claim applied
            return [
                (
                    owner,
                    Task.from_doc(
                        {
                            **doc,
                            **taken,
                            "lease_owner": owner,
                            "attempts": doc.get("attempts", 0) + 1,
                        }
                    ),
                )
                for owner, doc in pairs
            ]
        mine = self.tasks.find(
            {
                "_id": {"$in": [doc["_id"] for doc in docs]},
                "status": Status.RUNNING.value,
                "lease_owner": {"$in": [owner for owner, _ in pairs]},
            }
        )
        return [(str(doc["lease_owner"]), Task.from_doc(doc)) for doc in mine]

    def load_images_of(self, tasks: Sequence[Task]) -> dict[str, list[bytes]]:
        """Each task's image bytes in order, in one query; fewer than its images if missing."""
        wanted = {task.id: image_ids(task.id, len(task.images)) for task in tasks}
        ids = [image_id for ids in wanted.values() for image_id in ids]
        found = {doc["_id"]: bytes(doc["data"]) for doc in self.images.find({"_id": {"$in": ids}})}
        return {task_id: [found[i] for i in ids if i in found] for task_id, ids in wanted.items()}

    def load_images(self, task: Task) -> list[bytes]:
        """The task's image bytes in order; fewer than its images if some are missing."""
        return self.load_images_of([task])[task.id]

    def complete_many(
        self, claims: Sequence[tuple[str, str, int, float | None]]
    ) -> set[tuple[str, str]]:
        """Done, for each (task id, owner, images to delete, finished at) whose owner still
        holds it; the (task id, owner) of those, whose image bytes are deleted (the labels are
        what is kept; 0 images to delete: they stay for the pictures, until the task's
        `pictures_until`). Finished at is when its callback answered (None: now): the batch is
        written up to half a second later, and the task's times should say when it was done.

        A task may be in a batch twice (a stale claim, and this worker's claim of it since):
        only the claim holding the lease completes it, and only that pair is returned.
        """
        if not claims:
            return set()
        now = self.clock()
        done = [
            UpdateOne(
                self._owned(task_id, owner),
                {
                    "$set": {
                        "status": Status.DONE.value,
                        "finished_at": now if at is None else at,
                        "settled_by": owner,
                    },
                    "$unset": {"lease_until": "", "lease_owner": "", "last_error": ""},
                },
            )
            for task_id, owner, _, at in claims
        ]
        result = self.tasks.bulk_write(done, ordered=False)
        asked = {(task_id, owner) for task_id, owner, _, _ in claims}
        if result.matched_count == len(claims):
            completed = asked
        else:  # some leases were lost: which were settled by these very claims?
            query: dict[str, Any] = {
                "_id": {"$in": [task_id for task_id, *_ in claims]},
                "status": Status.DONE.value,
            }
            found = self.tasks.find(query, {"settled_by": 1})
            completed = asked & {(str(doc["_id"]), str(doc.get("settled_by"))) for doc in found}
        self._drop_images_of(
            [(task_id, n) for task_id, owner, n, _ in claims if (task_id, owner) in completed]
        )
        return completed
