"""A task: one Camio event on its way through the queue, as the store hands it out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
class ImageMeta:
    """What a task keeps of each image: everything but the bytes (those are in `images`)."""

    key: str  # the timestamp exactly as Camio sent it: the label key
    taken_at: float
    format: str
    width: int
    height: int
    bytes: int
    sha256: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ImageMeta:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Dropped:
    """A detection the camera's rules kept out of the labels, and why (for the result)."""

    key: str  # the image's timestamp, as its label key
    label: str  # as detected, before any renaming
    score: float
    why: str  # e.g. "min_score 0.6", "ignore_zones[0]", "not in labels"

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Dropped:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


class ReportState(StrEnum):
    """Where a failed task's report stands (see hook.store.reports)."""

    DUE = "due"  # to be sent at `run_at`
    SENDING = "sending"  # leased to a report sender
    SENT = "sent"  # every target took it
    UNDELIVERABLE = "undeliverable"  # a target refused it, or its attempts ran out: kept so


class Target(StrEnum):
    """Where a report goes: the operator's HOOK_FAILURE_URL, or the event's own callback_url."""

    FAILURE_URL = "failure_url"
    CALLBACK_URL = "callback_url"


@dataclass(frozen=True)
class Report:
    """A failed task's report to its receivers (its `report` sub-document), typed."""

    state: ReportState
    targets: tuple[Target, ...]  # still to be sent to
    delivered: tuple[Target, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()  # (target, why it is not delivered), by target
    attempts: int = 0
    run_at: float | None = None  # when it is due (DUE)
    owner: str | None = None  # the sender holding its lease (SENDING)
    until: float | None = None
    settled_at: float | None = None  # when it became SENT or UNDELIVERABLE

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Report:
        return cls(
            state=ReportState(doc["state"]),
            targets=tuple(Target(t) for t in doc.get("targets") or ()),
            delivered=tuple(Target(t) for t in doc.get("delivered") or ()),
            errors=tuple(sorted((str(k), str(v)) for k, v in (doc.get("errors") or {}).items())),
            attempts=int(doc.get("attempts", 0)),
            run_at=doc.get("run_at"),
            owner=doc.get("owner"),
            until=doc.get("until"),
            settled_at=doc.get("settled_at"),
        )

    @property
    def last_error(self) -> str | None:
        """Why it is not (yet) delivered, per target: "failure_url: callback answered 404"."""
        return "; ".join(f"{target}: {why}" for target, why in self.errors) or None

    def summary(self) -> dict[str, Any]:
        """As the listing and the result document show it."""
        return {
            "state": self.state.value,
            "attempts": self.attempts,
            "pending": [t.value for t in self.targets],
            "delivered": [t.value for t in self.delivered],
            "last_error": self.last_error,
            "next_attempt_at": iso(self.run_at) if self.state is ReportState.DUE else None,
            "settled_at": iso(self.settled_at),
        }


@dataclass(frozen=True)
class Task:
    """A task document, typed. Times are seconds since the epoch (see TaskStore on why)."""

    id: str
    status: Status
    attempts: int
    callback_url: str
    camera: str | None
    user_id: str | None
    images: tuple[ImageMeta, ...]
    created_at: float
    run_at: float
    lease_until: float | None = None
    lease_owner: str | None = None
    finished_at: float | None = None
    last_error: str | None = None
    result_json: str | None = None
    labeled_at: float | None = None  # when the labels were computed and stored
    pictures_until: float | None = None  # its images are kept until then, for its pictures
    dropped: tuple[Dropped, ...] = ()  # what the camera's rules kept out of the labels
    history: tuple[str, ...] = ()  # earlier failures, when the event was sent again
    report: Report | None = None  # owed by a task failed for good while reporting is on

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Task:
        return cls(
            id=doc["_id"],
            status=Status(doc["status"]),
            attempts=int(doc.get("attempts", 0)),
            callback_url=doc["callback_url"],
            camera=doc.get("camera"),
            user_id=doc.get("user_id"),
            images=tuple(ImageMeta.from_doc(i) for i in doc.get("images") or ()),
            created_at=doc["created_at"],
            run_at=doc["run_at"],
            lease_until=doc.get("lease_until"),
            lease_owner=doc.get("lease_owner"),
            finished_at=doc.get("finished_at"),
            last_error=doc.get("last_error"),
            result_json=doc.get("result_json"),
            labeled_at=doc.get("labeled_at"),
            pictures_until=doc.get("pictures_until"),
            dropped=tuple(Dropped.from_doc(d) for d in doc.get("dropped") or ()),
            history=tuple(str(h) for h in doc.get("history") or ()),
            report=Report.from_doc(doc["report"]) if doc.get("report") else None,
        )

    @property
    def image_keys(self) -> list[str]:
        """The label keys, i.e. the image timestamps exactly as Camio sent them."""
        return [image.key for image in self.images]

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
            "report": self.report.summary() if self.report else None,
        }


def iso(seconds: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 in UTC with milliseconds, or None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
