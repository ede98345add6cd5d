"""TaskStore: the MongoDB task queue. The only module that knows the collections' shapes.

Contract (huey's storage, with leases):
    enqueue(event)            -> (task id, created?)   duplicate events map to the first task
    claim(worker, lease)      -> Task | None           ONE atomic find_one_and_update
    renew(ids, worker, lease) -> int                   extend the leases of running tasks
    release(id, worker)       -> bool                  give back unstarted, attempt not counted
    save_result(id, worker, result_json) -> bool       labels computed once, resent on retry
    complete(id, worker)      -> bool                  done; its image bytes are deleted
    reschedule(id, worker, run_at, error) -> bool      back to the queue at a later time
    fail(id, worker, reason)  -> bool                  failed for good, reason kept
    requeue_expired(max_attempts) -> (requeued, failed) tasks whose worker died
    pending(statuses, limit)  -> list[Task]            listing, never image bytes
    stats()                   -> {status: count}
    purge(before)             -> int                   remove finished tasks older than that
    purge_orphans(before)     -> int                   remove images of tasks never stored
    beat(worker, info)        / workers()              worker heartbeats, for `status`
    oldest_pending()          -> Task | None           the longest-waiting queued/running task
    load_images(task)         -> list[bytes]

Methods taking `worker` only act while that worker holds the lease, so a worker that lost its
task to lease expiry cannot overwrite the new owner's work; they return False then.

Portability (real MongoDB and nx-27017, see shared/mongo-compat.md): times are float epoch
seconds, because nx-27017 stores a datetime written by `$set` as text, which then no longer
compares; ids are strings, because nx-27017 cannot match an ObjectId outside `_id`; image bytes
live in their own collection so task documents stay small and the sorted claim stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from bson import Binary, ObjectId
from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from hook.event import Event
from hook.task import PENDING, Status, Task, iso

log = logging.getLogger(__name__)

Clock = Callable[[], float]


HISTORY = 10  # earlier failures kept on a task sent again


def image_ids(task_id: str, count: int) -> list[str]:
    """The `_id`s of a task's image documents: found and deleted through the _id index."""
    return [f"{task_id}:{index}" for index in range(count)]


class TaskStore:
    """The queue over one pymongo Database; it never builds its own client."""

    def __init__(self, db: Database, *, clock: Clock = time.time) -> None:
        self.db = db
        self.tasks = db["tasks"]
        self.images = db["images"]
        self.heartbeats = db["workers"]
        self.clock = clock
        self._indexed = False

    # -- set-up -------------------------------------------------------------------------------
    def ensure_indexes(self) -> None:
        """Create the indexes the claim, sweeps and de-duplication rely on (idempotent)."""
        self.tasks.create_index([("status", ASCENDING), ("run_at", ASCENDING)])
        self.tasks.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        self.tasks.create_index([("status", ASCENDING), ("finished_at", DESCENDING)])
        self.tasks.create_index("dedup_key", unique=True)
        self.images.create_index("created_at")  # purge_orphans; all else goes by _id
        self._indexed = True

    def _ready(self) -> None:
        # Lazily, so a store can be built while MongoDB is still down; the unique index must
        # exist before the first insert or de-duplication would silently not happen.
        if not self._indexed:
            self.ensure_indexes()

    def ping(self) -> None:
        """Raise a PyMongoError unless the server answers."""
        self.db.command("ping")

    # -- producer -----------------------------------------------------------------------------
    def enqueue(self, event: Event) -> tuple[str, bool]:
        """Store the event as a queued task; return its id and whether it is new.

        Image bytes go in first and the task document last, so a worker never sees a task
        without its images. If the task insert fails, the images are removed again, unless
        the insert may have landed after all (its answer lost): then the task is looked up,
        and images whose task never appeared are left to `purge`, never deleted blindly.
        """
        self._ready()
        key = event.dedup_key
        existing = self.tasks.find_one({"dedup_key": key}, {"_id": 1, "status": 1})
        if existing:
            failed = existing["status"] == Status.FAILED.value
            return existing["_id"], failed and self._requeue(existing["_id"], event)
        task_id = str(ObjectId())
        now = self.clock()
        count = len(event.images)
        images = self._image_docs(task_id, event, now)
        task = {
            "_id": task_id, "status": Status.QUEUED.value, "attempts": 0, "dedup_key": key,
            "callback_url": event.callback_url, "camera": event.camera, "user_id": event.user_id,
            "images": [image.meta() for image in event.images],
            "payload_json": event.payload_json, "created_at": now, "run_at": now,
        }  # fmt: skip
        try:
            self.images.insert_many(images)
        except (PyMongoError, InvalidDocument):
            self._drop_images(task_id, count)
            raise
        try:
            self.tasks.insert_one(task)
        except DuplicateKeyError:  # the same event arrived twice at once; the other one won
            self._drop_images(task_id, count)
            winner = self.tasks.find_one({"dedup_key": key}, {"_id": 1})
            if winner is None:  # deleted in between by retention; extremely unlikely
                raise
            return winner["_id"], False
        except InvalidDocument:
            self._drop_images(task_id, count)
            raise
        except PyMongoError:
            if self._task_exists(task_id):  # the insert landed; only its answer was lost
                return task_id, True
            raise
        return task_id, True

    def _image_docs(self, task_id: str, event: Event, now: float) -> list[dict[str, Any]]:
        ids = image_ids(task_id, len(event.images))
        return [
            {"_id": ids[index], "task_id": task_id, "index": index, "data": Binary(image.data),
             "created_at": now}
            for index, image in enumerate(event.images)
        ]  # fmt: skip

    def _requeue(self, task_id: str, event: Event) -> bool:
        """A failed task's event sent again: a new series of attempts, the failure in `history`.

        Its images are put back where retention or an operator removed them. False when another
        request requeued it first (then this one is a duplicate of that).
        """
        doc = self.tasks.find_one(
            {"_id": task_id, "status": Status.FAILED.value},
            {"attempts": 1, "last_error": 1, "finished_at": 1, "history": 1},
        )
        if doc is None:
            return False
        now = self.clock()
        images = self._image_docs(task_id, event, now)
        ids = [image["_id"] for image in images]
        present = {d["_id"] for d in self.images.find({"_id": {"$in": ids}}, {"_id": 1})}
        for image in (i for i in images if i["_id"] not in present):
            with contextlib.suppress(DuplicateKeyError):  # a concurrent requeue put it back
                self.images.insert_one(image)
        entry = (
            f"failed {iso(doc.get('finished_at'))} after {doc.get('attempts', 0)} attempt(s): "
            f"{doc.get('last_error')}"
        )
        history = [*list(doc.get("history") or [])[-(HISTORY - 1) :], entry]
        requeued = self.tasks.update_one(
            {"_id": task_id, "status": Status.FAILED.value, "finished_at": doc.get("finished_at")},
            {"$set": {"status": Status.QUEUED.value, "attempts": 0, "run_at": now,
                      "history": history},
             "$unset": {"finished_at": "", "last_error": ""}},
        )  # fmt: skip
        if requeued.modified_count == 1:
            log.info("task %s: sent again after failing for good; queued again", task_id)
        return requeued.modified_count == 1

    def _task_exists(self, task_id: str) -> bool:
        try:
            return self.tasks.find_one({"_id": task_id}, {"_id": 1}) is not None
        except PyMongoError:
            return False

    def _drop_images(self, task_id: str, count: int) -> None:
        try:
            self.images.delete_many({"_id": {"$in": image_ids(task_id, count)}})
        except PyMongoError:
            log.warning("task %s: could not delete its images; purge will", task_id)

    # -- consumer -----------------------------------------------------------------------------
    def claim(self, worker: str, lease_seconds: float) -> Task | None:
        """Take the queued task that is due first, leased to `worker`; None if nothing is due."""
        now = self.clock()
        doc = self.tasks.find_one_and_update(
            {"status": Status.QUEUED.value, "run_at": {"$lte": now}},
            {
                "$set": {
                    "status": Status.RUNNING.value,
                    "lease_owner": worker,
                    "lease_until": now + lease_seconds,
                    "claimed_at": now,
                },
                "$inc": {"attempts": 1},
            },
            sort=[("run_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return Task.from_doc(doc) if doc else None

    def renew(
        self, task_ids: Iterable[str], owners: str | Iterable[str], lease_seconds: float
    ) -> int:
        """Extend the leases these owners hold on these tasks; how many are still held."""
        ids = list(task_ids)
        held = [owners] if isinstance(owners, str) else list(owners)
        if not ids:
            return 0
        return self.tasks.update_many(
            {"_id": {"$in": ids}, "status": Status.RUNNING.value, "lease_owner": {"$in": held}},
            {"$set": {"lease_until": self.clock() + lease_seconds}},
        ).matched_count

    def release(self, task_id: str, worker: str, run_at: float | None = None) -> bool:
        """Give a claimed task back, its attempt not counted: at once (shutdown) or at `run_at`
        (its callback host is busy)."""
        return self.tasks.update_one(
            {"_id": task_id, "status": Status.RUNNING.value, "lease_owner": worker},
            {"$set": {"status": Status.QUEUED.value, "run_at": run_at or self.clock()},
             "$unset": {"lease_until": "", "lease_owner": ""}, "$inc": {"attempts": -1}},
        ).matched_count == 1  # fmt: skip

    def save_result(self, task_id: str, worker: str, result_json: str) -> bool:
        return self._update_owned(task_id, worker, {"result_json": result_json})

    def complete(self, task_id: str, worker: str) -> bool:
        """Done; the image bytes are deleted (the labels are what is kept)."""
        images = self._finish(task_id, worker, Status.DONE, None)
        if images is not None:
            self._drop_images(task_id, images)
        return images is not None

    def fail(self, task_id: str, worker: str | None, reason: str) -> bool:
        """Failed for good with `reason`; worker None acts regardless of the lease (operators)."""
        return self._finish(task_id, worker, Status.FAILED, reason) is not None

    def reschedule(self, task_id: str, worker: str, run_at: float, error: str) -> bool:
        """Queue the task again to run at `run_at`, remembering why the last attempt failed."""
        return self._update_owned(
            task_id,
            worker,
            {"status": Status.QUEUED.value, "run_at": run_at, "last_error": error},
            unset=("lease_until", "lease_owner"),
        )

    def requeue_expired(self, max_attempts: int) -> tuple[int, int]:
        """Return the tasks of dead workers to the queue; fail those out of attempts."""
        now = self.clock()
        expired = {"status": Status.RUNNING.value, "lease_until": {"$lt": now}}
        failed = self.tasks.update_many(
            {**expired, "attempts": {"$gte": max_attempts}},
            {
                "$set": {
                    "status": Status.FAILED.value,
                    "finished_at": now,
                    "last_error": f"lease expired on attempt {max_attempts} of "
                    f"{max_attempts}: the worker died or hung",
                },
                "$unset": {"lease_until": "", "lease_owner": ""},
            },
        ).modified_count
        requeued = self.tasks.update_many(
            expired,
            {
                "$set": {
                    "status": Status.QUEUED.value,
                    "run_at": now,
                    "last_error": "lease expired: the worker died or hung",
                },
                "$unset": {"lease_until": "", "lease_owner": ""},
            },
        ).modified_count
        if failed or requeued:
            log.warning("leases expired: %d task(s) requeued, %d failed", requeued, failed)
        return requeued, failed

    def load_images(self, task: Task) -> list[bytes]:
        """The task's image bytes in order; fewer than its images if some are missing."""
        ids = image_ids(task.id, len(task.images))
        found = {doc["_id"]: bytes(doc["data"]) for doc in self.images.find({"_id": {"$in": ids}})}
        return [found[i] for i in ids if i in found]

    # -- reading ------------------------------------------------------------------------------
    def get(self, task_id: str) -> Task | None:
        doc = self.tasks.find_one({"_id": task_id}, {"payload_json": 0})
        return Task.from_doc(doc) if doc else None

    def pending(self, statuses: Iterable[Status] = PENDING, limit: int = 100) -> list[Task]:
        """Tasks in `statuses`: pending ones by next run, finished ones newest first."""
        wanted = [Status(s).value for s in statuses]
        finished = all(s in (Status.DONE, Status.FAILED) for s in wanted)
        order = [("finished_at", DESCENDING)] if finished else [("run_at", ASCENDING)]
        cursor = (
            self.tasks.find({"status": {"$in": wanted}}, {"payload_json": 0, "result_json": 0})
            .sort(order)
            .limit(limit)
        )
        return [Task.from_doc(doc) for doc in cursor]

    def oldest_pending(self) -> Task | None:
        docs = self.tasks.find(
            {"status": {"$in": [s.value for s in PENDING]}}, {"payload_json": 0, "result_json": 0}
        )
        for doc in docs.sort("created_at", ASCENDING).limit(1):
            return Task.from_doc(doc)
        return None

    def beat(self, worker: str, info: dict[str, Any]) -> None:
        """Record that `worker` is alive, with a few facts about it."""
        self.heartbeats.update_one(
            {"_id": worker}, {"$set": {**info, "seen_at": self.clock()}}, upsert=True
        )

    def workers(self) -> list[dict[str, Any]]:
        """Heartbeats, most recent first."""
        return list(self.heartbeats.find().sort("seen_at", DESCENDING))

    def stats(self) -> dict[str, int]:
        """Task count by status, every status present (zero when none)."""
        counts = {status.value: 0 for status in Status}
        for row in self.tasks.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
            counts[str(row["_id"])] = int(row["n"])
        return counts

    def retrying(self) -> int:
        """Queued tasks that failed an attempt already and wait for their next one."""
        return self.tasks.count_documents({"status": Status.QUEUED.value, "attempts": {"$gt": 0}})

    def purge(self, before: float, batch: int = 500) -> int:
        """Delete done and failed tasks finished before `before`, with any images left."""
        removed = 0
        finished = {"status": {"$in": [Status.DONE.value, Status.FAILED.value]},
                    "finished_at": {"$lt": before}}  # fmt: skip
        while docs := list(self.tasks.find(finished, {"images": 1}).limit(batch)):
            images = [i for doc in docs for i in image_ids(doc["_id"], len(doc["images"]))]
            self.images.delete_many({"_id": {"$in": images}})
            removed += self.tasks.delete_many(
                {"_id": {"$in": [d["_id"] for d in docs]}}
            ).deleted_count
        return removed

    def forget_workers(self, before: float) -> int:
        """Drop heartbeats last seen before `before` (workers long gone)."""
        return self.heartbeats.delete_many({"seen_at": {"$lt": before}}).deleted_count

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

    # -- internals ----------------------------------------------------------------------------
    def _finish(
        self, task_id: str, worker: str | None, status: Status, error: str | None
    ) -> int | None:
        """Settle a running task; its number of images, or None if `worker` did not hold it."""
        fields: dict[str, Any] = {"status": status.value, "finished_at": self.clock()}
        cleared = {"lease_until": "", "lease_owner": ""}
        if error is not None:
            fields["last_error"] = error
        else:  # done: the errors of earlier attempts no longer describe the task
            cleared["last_error"] = ""
        doc = self.tasks.find_one_and_update(
            self._owned(task_id, worker),
            {"$set": fields, "$unset": cleared},
            projection={"images": 1},
        )
        return None if doc is None else len(doc.get("images") or ())

    def _update_owned(
        self, task_id: str, worker: str | None, fields: dict[str, Any], unset: Iterable[str] = ()
    ) -> bool:
        update: dict[str, Any] = {"$set": fields}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        return self.tasks.update_one(self._owned(task_id, worker), update).matched_count == 1

    @staticmethod
    def _owned(task_id: str, worker: str | None) -> dict[str, Any]:
        """The filter for a task `worker` holds; worker None: any pending task (operators)."""
        if worker is None:
            return {"_id": task_id, "status": {"$in": [s.value for s in PENDING]}}
        return {"_id": task_id, "status": Status.RUNNING.value, "lease_owner": worker}
