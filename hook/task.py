"""A task: one Camio event on its way through the queue, as the store hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


PENDING = (Status.QUEUED, Status.RUNNING)


@dataclass(frozen=True)
class Task:
    """A task document, typed. Times are seconds since the epoch (see TaskStore on why)."""

    id: str
    status: Status
    attempts: int
    callback_url: str
    camera: str | None
    user_id: str | None
    images: tuple[dict[str, Any], ...]
    created_at: float
    run_at: float
    lease_until: float | None = None
    lease_owner: str | None = None
    finished_at: float | None = None
    last_error: str | None = None
    result_json: str | None = None
    history: tuple[str, ...] = ()  # earlier failures, when the event was sent again

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Task:
        return cls(
            id=doc["_id"],
            status=Status(doc["status"]),
            attempts=int(doc.get("attempts", 0)),
            callback_url=doc["callback_url"],
            camera=doc.get("camera"),
            user_id=doc.get("user_id"),
            images=tuple(doc.get("images") or ()),
            created_at=doc["created_at"],
            run_at=doc["run_at"],
            lease_until=doc.get("lease_until"),
            lease_owner=doc.get("lease_owner"),
            finished_at=doc.get("finished_at"),
            last_error=doc.get("last_error"),
            result_json=doc.get("result_json"),
            history=tuple(str(h) for h in doc.get("history") or ()),
        )

    @property
    def image_keys(self) -> list[str]:
        """The label keys, i.e. the image timestamps exactly as Camio sent them."""
        return [image["key"] for image in self.images]

    def summary(self) -> dict[str, Any]:
        """The task as the listing endpoint shows it: never image bytes, times in ISO 8601."""
        return {
            "id": self.id,
            "status": self.status.value,
            "camera": self.camera,
            "user_id": self.user_id,
            "image_count": len(self.images),
            "timestamps": self.image_keys,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "next_run_at": iso(self.run_at) if self.status == Status.QUEUED else None,
            "lease_until": iso(self.lease_until),
            "finished_at": iso(self.finished_at),
            "last_error": self.last_error,
            "history": list(self.history),
        }


def iso(seconds: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 in UTC with milliseconds, or None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
