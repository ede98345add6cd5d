"""What an operator does to tasks by hand: queue failed ones again, remove tasks for good.

Both act per task with a guarded update or delete, so a task that changes meanwhile (claimed by
a worker, requeued by its event sent again) is left as it is and reported as found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hook.store.base import FAILURE, image_ids
from hook.store.pictures import Pictures
from hook.task import Status

# what a task to be labeled again loses
RESULT: tuple[str, ...] = ("result_json", "labels", "labeled_at", "dropped", "pictures_until")


class RetryOutcome(StrEnum):
    REQUEUED = "requeued"  # queued to be labeled again from its images
    RESEND = "resend"  # its images are gone but its labels are stored: queued to send those
    NOT_FAILED = "not failed"  # only failed tasks are retried
    UNKNOWN = "unknown"
    IMAGES_GONE = "images gone"  # nothing to label and no labels to send


@dataclass(frozen=True)
class Retried:
    """What `retry_failed` did with one task; `status` is the task's when it was not failed."""

    task_id: str
    outcome: RetryOutcome
    status: Status | None = None

    @property
    def requeued(self) -> bool:
        return self.outcome in (RetryOutcome.REQUEUED, RetryOutcome.RESEND)


@dataclass(frozen=True)
class RetryReport:
    entries: tuple[Retried, ...]

    @property
    def requeued(self) -> int:
        return sum(entry.requeued for entry in self.entries)


class ForgetOutcome(StrEnum):
    REMOVED = "removed"
    RUNNING = "running"  # leased to a worker and not forced: left alone
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Forgotten:
    """What `forget` did with one task; `worker` held it when it was running."""

    task_id: str
    outcome: ForgetOutcome
    images: int = 0  # image documents removed with it
    pictures: int = 0  # annotated pictures removed with it
    worker: str | None = None


@dataclass(frozen=True)
class ForgetReport:
    entries: tuple[Forgotten, ...]

    @property
    def removed(self) -> int:
        return sum(entry.outcome is ForgetOutcome.REMOVED for entry in self.entries)


class Operations(Pictures):
    """The operator's verbs: `retry_failed`, `forget`; over the pictures, which both drop."""

    def retry_failed(self, task_ids: Sequence[str] | None = None) -> RetryReport:
        """Queue failed tasks again (None: every failed one), each reported by id.

        A retried task is labeled again: its stored labels, the rules' drops and its pictures
        are cleared. An operator retries after fixing something, the receiver or a rules file
        or the model, and labels made again under the fix are what is wanted then; sending the
        old labels again would undo a rules fix. Only when its images are gone (an image lost,
        removed by hand) and its labels are stored are those sent again as they are; with
        neither, it is refused. As intake's requeue: attempts start at 0, it runs at once, and
        its failure goes into `history`. The update is guarded on the failure read, so a task
        that changed meanwhile is not touched (reported with its new status).
        """
        if task_ids is None:
            ids = [d["_id"] for d in self.tasks.find({"status": Status.FAILED.value}, {"_id": 1})]
        else:
            ids = list(dict.fromkeys(task_ids))  # each once, in the order given
        return RetryReport(tuple(self._retry(task_id) for task_id in ids))

    def _retry(self, task_id: str) -> Retried:
        doc = self.tasks.find_one(
            {"_id": task_id}, {**FAILURE, "status": 1, "images": 1, "result_json": 1}
        )
        if doc is None:
            return Retried(task_id, RetryOutcome.UNKNOWN)
        if doc["status"] != Status.FAILED.value:
            return Retried(task_id, RetryOutcome.NOT_FAILED, Status(doc["status"]))
        ids = image_ids(task_id, len(doc.get("images") or ()))
        present = len(list(self.images.find({"_id": {"$in": ids}}, {"_id": 1})))
        if present == len(ids):
            outcome, cleared = RetryOutcome.REQUEUED, RESULT
            # drawn from the labels it is about to lose (the gallery would not serve them
            # anyway: they carry the old labels' time)
            self.drop_pictures([task_id])
        elif doc.get("result_json"):
            outcome, cleared = RetryOutcome.RESEND, ()
        else:
            return Retried(task_id, RetryOutcome.IMAGES_GONE)
        if not self._queue_again(doc, unset=cleared):
            now = self.tasks.find_one({"_id": task_id}, {"status": 1})
            if now is None:
                return Retried(task_id, RetryOutcome.UNKNOWN)
            return Retried(task_id, RetryOutcome.NOT_FAILED, Status(now["status"]))
        return Retried(task_id, outcome)

    def forget(self, task_ids: Sequence[str], *, force: bool = False) -> ForgetReport:
        """Remove tasks with their images and pictures, each reported by id.

        A running task is left alone unless `force`: its worker would still deliver what it
        has. Forced, the worker's settling finds no task (every settle is lease-guarded) and
        does nothing, though a callback already under way still arrives.
        """
        return ForgetReport(
            tuple(self._forget(task_id, force) for task_id in dict.fromkeys(task_ids))
        )

    def _forget(self, task_id: str, force: bool) -> Forgotten:
        doc = self.tasks.find_one({"_id": task_id}, {"status": 1, "images": 1, "lease_owner": 1})
        if doc is None:
            return Forgotten(task_id, ForgetOutcome.UNKNOWN)
        guard: dict[str, Any] = {"_id": task_id}
        if not force:
            idle = [s.value for s in Status if s is not Status.RUNNING]
            guard["status"] = {"$in": idle}
        if self.tasks.delete_one(guard).deleted_count != 1:
            now = self.tasks.find_one({"_id": task_id}, {"status": 1, "lease_owner": 1})
            if now is None:  # removed meanwhile by someone else
                return Forgotten(task_id, ForgetOutcome.UNKNOWN)
            return Forgotten(task_id, ForgetOutcome.RUNNING, worker=now.get("lease_owner"))
        ids = image_ids(task_id, len(doc.get("images") or ()))
        images = self.images.delete_many({"_id": {"$in": ids}}).deleted_count
        pictures = self.drop_pictures([task_id])
        running = doc["status"] == Status.RUNNING.value
        return Forgotten(
            task_id,
            ForgetOutcome.REMOVED,
            images,
            pictures,
            doc.get("lease_owner") if running else None,
        )
