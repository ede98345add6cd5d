"""Change streams of the tasks that become queued: instant pick-up across machines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.change_stream import CollectionChangeStream

from hook.store.base import Base
from hook.task import Status

# an insert is a new task; an update setting status queued is one released, retried or
# requeued; only the resume token (_id) comes back, never a task's fields
QUEUED_CHANGES: list[dict[str, Any]] = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {
                    "operationType": "update",
                    "updateDescription.updatedFields.status": Status.QUEUED.value,
                },
            ]
        }
    },
    {"$project": {"_id": 1}},
]


class Feed(Base):
    """Whether the server streams changes, and the stream of newly queued tasks."""

    def streams_changes(self) -> bool:
        """True for a replica set member or mongos, the servers with change streams.

        Asked of `hello` rather than by trying: a standalone mongod refuses a watch, and
        nx-27017 accepts one but answers every getMore at once, without waiting (a client
        would spin on it), and it installs SQLite triggers on the collection that copy every
        later write, whole, into a change log kept in the database file for good (and never
        pruned while no stream is open: 2.4 MB after 1,200 writes of 2 KB documents).
        """
        hello = self.db.command("hello")
        return "setName" in hello or hello.get("msg") == "isdbgrid"

    def watch_queued(
        self, resume_after: Mapping[str, Any] | None, await_seconds: float
    ) -> CollectionChangeStream[Mapping[str, Any]]:
        """A change stream of tasks inserted or made queued, after `resume_after` (a resume
        token) or from now; each getMore waits up to `await_seconds` for a change."""
        return self.tasks.watch(
            QUEUED_CHANGES,
            resume_after=resume_after,
            max_await_time_ms=max(1, int(await_seconds * 1000)),
        )
