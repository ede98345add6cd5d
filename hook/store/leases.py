"""Leases: a worker claims a task, keeps it while it works, and settles it.

Methods taking `worker` only act while that worker holds the lease, so a worker that lost its
task to lease expiry cannot overwrite the new owner's work; they return False then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne

from hook.store.base import Base, log
from hook.store.reports import owed
from hook.task import Dropped, Status, Target, Task


class Leases(Base):
    """The consumer's side of the queue."""

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
        return (
            self.tasks.update_one(
                {"_id": task_id, "status": Status.RUNNING.value, "lease_owner": worker},
                {
                    "$set": {"status": Status.QUEUED.value, "run_at": run_at or self.clock()},
                    "$unset": {"lease_until": "", "lease_owner": ""},
                    "$inc": {"attempts": -1},
                },
            ).matched_count
            == 1
        )

    def save_result(
        self,
        task_id: str,
        worker: str,
        result_json: str,
        dropped: Sequence[Dropped] = (),
        *,
        keep_images_for: float = 0.0,
    ) -> bool:
        """Store the labels (the exact body every attempt sends) and what the rules dropped;
        with `keep_images_for` seconds, the images stay that long after (for the pictures).
        The label names reported go beside them as the list `labels`, for the page's filter."""
        now = self.clock()
        fields: dict[str, Any] = {
            "result_json": result_json,
            "labels": label_names(result_json),
            "labeled_at": now,
            "dropped": [d.to_doc() for d in dropped],
        }
        if keep_images_for > 0:
            fields["pictures_until"] = now + keep_images_for
        return self._update_owned(task_id, worker, fields)

    def complete(
        self,
        task_id: str,
        worker: str,
        *,
        keep_images: bool = False,
        finished_at: float | None = None,
    ) -> bool:
        """Done (at `finished_at`, when its callback answered; default now); the image bytes
        are deleted (the labels are what is kept), unless kept for the pictures (then
        housekeeping deletes them at the task's `pictures_until`)."""
        images = self._finish(task_id, worker, Status.DONE, None, at=finished_at)
        if images is not None and not keep_images:
            self._drop_images(task_id, images)
        return images is not None

    def fail(
        self, task_id: str, worker: str, reason: str, *, report: Sequence[Target] = ()
    ) -> bool:
        """Failed for good with `reason`; owing a failure report to `report`'s targets, if any,
        in the same update."""
        return self._finish(task_id, worker, Status.FAILED, reason, report) is not None

    def reschedule(self, task_id: str, worker: str, run_at: float, error: str) -> bool:
        """Queue the task again to run at `run_at`, remembering why the last attempt failed."""
        return self._update_owned(
            task_id,
            worker,
            {"status": Status.QUEUED.value, "run_at": run_at, "last_error": error},
            unset=("lease_until", "lease_owner"),
        )

    def requeue_expired(self, max_attempts: int, report: Sequence[Target] = ()) -> tuple[int, int]:
        """Return the tasks of dead workers to the queue; fail those out of attempts (owing a
        failure report to `report`'s targets, if any).

        A task whose labels were stored may have been delivered just before its worker died
        (a completion waits up to half a second for its batch): on its last attempt it gets one
        more, which resends the very labels (a receiver drops the repeat by webhook-id), rather
        than being failed and reported though delivered. Past that one, it fails like any other.
        """
        now = self.clock()
        expired = {"status": Status.RUNNING.value, "lease_until": {"$lt": now}}

        def fail(why: str) -> dict[str, Any]:
            fields = {"status": Status.FAILED.value, "finished_at": now, "last_error": why}
            if report:
                fields["report"] = owed(report, now)
            return {"$set": fields, "$unset": {"lease_until": "", "lease_owner": ""}}

        last = f"lease expired on attempt {max_attempts} of {max_attempts}: the worker died or hung"
        unlabeled = {**expired, "attempts": {"$gte": max_attempts}, "result_json": None}
        failed = self.tasks.update_many(unlabeled, fail(last)).modified_count
        beyond = {**expired, "attempts": {"$gte": max_attempts + 1}}  # its one more used too
        again = "lease expired again on the attempt resending its labels: the worker died or hung"
        failed += self.tasks.update_many(beyond, fail(again)).modified_count
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

    def _finish(
        self,
        task_id: str,
        worker: str,
        status: Status,
        error: str | None,
        report: Sequence[Target] = (),
        *,
        at: float | None = None,
    ) -> int | None:
        """Settle a running task (finished `at`, default now); its number of images, or None
        if `worker` did not hold it."""
        finished = self.clock() if at is None else at
        fields: dict[str, Any] = {"status": status.value, "finished_at": finished}
        cleared = {"lease_until": "", "lease_owner": ""}
        if report:
            fields["report"] = owed(report, fields["finished_at"])
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

    def backfill_labels(self, batch: int = 500) -> int:
        """Give tasks labeled before labels were stored as a list (the page's label filter)
        their `labels`, a batch at a time until none is left; how many were given them."""
        done = 0
        while True:
            missing = {"labels": {"$exists": False}, "labeled_at": {"$gt": 0}}
            docs = list(self.tasks.find(missing, {"result_json": 1}).limit(batch))
            if docs:
                self.tasks.bulk_write(
                    [
                        UpdateOne(
                            {"_id": doc["_id"]},
                            {"$set": {"labels": label_names(doc.get("result_json") or "")}},
                        )
                        for doc in docs
                    ],
                    ordered=False,
                )
            done += len(docs)
            if len(docs) < batch:
                return done


def label_names(result_json: str) -> list[str]:
    """The label names in a labels body ({"labels": {timestamp: {label: ...}}}), sorted, each
    once; none for a body of another shape (it is stored as given all the same)."""
    try:
        per_image = json.loads(result_json).get("labels") or {}
        return sorted({str(name) for found in per_image.values() for name in found})
    except (ValueError, AttributeError, TypeError):
        return []
