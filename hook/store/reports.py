"""Failure reports: an outbox kept in the failed task's own document.

    report {state, targets, delivered, errors, attempts, run_at, owner, until, settled_at}

The update that fails a task for good (Leases.fail, requeue_expired) sets `report` when
reporting is on (`owed`), so no crash can fail a task without its report being owed. A report
sender claims a due report with ONE find_one_and_update and a lease, as a worker claims a task;
it settles only while it holds that lease, and a dead sender's report comes back to be sent
again when the lease runs out (or is undeliverable, when that was its last attempt). A task
queued again (retry, or its event sent again) loses its report: it is no longer failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from hook.store.base import Base, log
from hook.task import Report, ReportState, Target, Task

SENDING = ReportState.SENDING.value


def owed(targets: Iterable[Target], now: float) -> dict[str, Any]:
    """The `report` a task failing now gets: due at once, to each of `targets`."""
    return {
        "state": ReportState.DUE.value,
        "targets": [Target(t).value for t in targets],
        "delivered": [],
        "errors": {},
        "attempts": 0,
        "run_at": now,
    }


class Reports(Base):
    """The report sender's side: claim_report, settle_report, requeue_expired_reports."""

    def claim_report(self, owner: str, lease_seconds: float) -> Task | None:
        """The due report that is due first, leased to `owner` (its attempt counted), with its
        task; None if none is due."""
        now = self.clock()
        doc = self.tasks.find_one_and_update(
            {"report.state": ReportState.DUE.value, "report.run_at": {"$lte": now}},
            {
                "$set": {
                    "report.state": SENDING,
                    "report.owner": owner,
                    "report.until": now + lease_seconds,
                },
                "$inc": {"report.attempts": 1},
            },
            sort=[("report.run_at", ASCENDING)],
            projection={"payload_json": 0, "result_json": 0},
            return_document=ReturnDocument.AFTER,
        )
        return Task.from_doc(doc) if doc else None

    def settle_report(
        self,
        task_id: str,
        owner: str,
        state: ReportState,
        *,
        targets: Iterable[Target],
        delivered: Iterable[Target],
        errors: Mapping[str, str],
        run_at: float | None = None,
    ) -> bool:
        """Record an attempt's outcome while `owner` holds the report: due again at `run_at`,
        sent or undeliverable. False if the lease was lost (or the task queued again)."""
        fields: dict[str, Any] = {
            "report.state": state.value,
            "report.targets": [Target(t).value for t in targets],
            "report.delivered": [Target(t).value for t in delivered],
            "report.errors": {str(k): str(v) for k, v in errors.items()},
        }
        if state is ReportState.DUE:
            fields["report.run_at"] = run_at if run_at is not None else self.clock()
        else:
            fields["report.settled_at"] = self.clock()
        return (
            self.tasks.update_one(
                {"_id": task_id, "report.state": SENDING, "report.owner": owner},
                {"$set": fields, "$unset": {"report.owner": "", "report.until": ""}},
            ).matched_count
            == 1
        )

    def requeue_expired_reports(self, max_attempts: int) -> tuple[int, int]:
        """Reports whose sender died or hung: due again, or undeliverable when that was their
        last attempt. (due again, undeliverable). Each is settled on its own lease, so a sender
        that settles meanwhile wins."""
        now = self.clock()
        expired = self.tasks.find(
            {"report.state": SENDING, "report.until": {"$lt": now}}, {"report": 1}
        )
        again = gone = 0
        for doc in list(expired):
            report = Report.from_doc(doc["report"])
            if report.owner is None:
                continue
            last = report.attempts >= max_attempts
            ran_out = f" on attempt {report.attempts} of {max_attempts}" if last else ""
            why = f"lease expired{ran_out}: the worker died or hung"
            errors = dict(report.errors) | {t.value: why for t in report.targets}
            state = ReportState.UNDELIVERABLE if last else ReportState.DUE
            targets = () if last else report.targets
            if self.settle_report(
                doc["_id"],
                report.owner,
                state,
                targets=targets,
                delivered=report.delivered,
                errors=errors,
                run_at=now,
            ):
                gone, again = gone + last, again + (not last)
        if again or gone:
            log.warning(
                "report leases expired: %d report(s) due again, %d undeliverable", again, gone
            )
        return again, gone
