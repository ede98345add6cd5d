"""Taking events in: each stored once as a queued task, however often it is sent."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from bson import Binary, ObjectId
from bson.errors import InvalidDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from hook.store.base import FAILURE, Base, image_ids, log
from hook.task import ImageMeta, Status


class NewImage(Protocol):
    """An image as the store takes it in: its bytes and what the task keeps of it."""

    @property
    def data(self) -> bytes: ...

    def meta(self) -> ImageMeta: ...


class NewEvent(Protocol):
    """An event as the store takes it in (hook.intake.event.Event is one): the store needs
    only these fields, so it never imports the intake's parsing (or Pillow)."""

    @property
    def callback_url(self) -> str: ...
    @property
    def camera(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def images(self) -> Sequence[NewImage]: ...
    @property
    def payload_json(self) -> str: ...
    @property
    def dedup_key(self) -> str: ...


class Intake(Base):
    """The producer's side of the queue."""

    def enqueue(self, event: NewEvent) -> tuple[str, bool]:
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
            "_id": task_id,
            "status": Status.QUEUED.value,
            "attempts": 0,
            "dedup_key": key,
            "callback_url": event.callback_url,
            "camera": event.camera,
            "user_id": event.user_id,
            "images": [image.meta().to_doc() for image in event.images],
            "payload_json": event.payload_json,
            "created_at": now,
            "run_at": now,
        }
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

    def _image_docs(self, task_id: str, event: NewEvent, now: float) -> list[dict[str, Any]]:
        ids = image_ids(task_id, len(event.images))
        return [
            {
                "_id": ids[index],
                "task_id": task_id,
                "index": index,
                "data": Binary(image.data),
                "created_at": now,
            }
            for index, image in enumerate(event.images)
        ]

    def _requeue(self, task_id: str, event: NewEvent) -> bool:
        """A failed task's event sent again: a new series of attempts, the failure in `history`.

        Its images are put back where retention or an operator removed them. False when another
        request requeued it first (then this one is a duplicate of that).
        """
        doc = self.tasks.find_one({"_id": task_id, "status": Status.FAILED.value}, FAILURE)
        if doc is None:
            return False
        now = self.clock()
        images = self._image_docs(task_id, event, now)
        ids = [image["_id"] for image in images]
        present = {d["_id"] for d in self.images.find({"_id": {"$in": ids}}, {"_id": 1})}
        for image in (i for i in images if i["_id"] not in present):
            with contextlib.suppress(DuplicateKeyError):  # a concurrent requeue put it back
                self.images.insert_one(image)
        requeued = self._queue_again(doc)
        if requeued:
            log.info("task %s: sent again after failing for good; queued again", task_id)
        return requeued

    def _task_exists(self, task_id: str) -> bool:
        try:
            return self.tasks.find_one({"_id": task_id}, {"_id": 1}) is not None
        except PyMongoError:
            return False
