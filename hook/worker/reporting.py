"""Failure reports: telling the operator (HOOK_FAILURE_URL) and, if asked, the event's own
callback_url that a task failed for good.

The store keeps each owed report with its task (hook.store.reports); a Reporter, one thread per
worker, claims the one due first with a lease, POSTs it to each target it still owes through
the callbacks' own machinery (`post_labels`: allow-list, same-origin redirects, the timeout,
judged as a Verdict; headers from hook.callbacks.outbound, so reports are signed like
callbacks), and
settles it: sent, due again after the backoff, or undeliverable with the reason, kept with
the task. Labeling never waits for it: it has its own thread and HTTP session.

Each target is judged alone: one that took the report is not sent it again by a later attempt
of the same report (only a sender that dies mid-report resends, at least once, under the same
webhook-id). A 4xx (or a URL refused) makes its target undeliverable at once; timeouts, 5xx
and 408/425/429 retry until the report's attempts are used up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from pymongo.errors import PyMongoError

from hook.callbacks.hosts import HostAllowList, allowing_only
from hook.callbacks.outbound import Outbound
from hook.callbacks.post import Outcome, Verdict, post_labels
from hook.callbacks.post import session as callback_session
from hook.metrics.recorder import Metrics
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.task import Report, ReportState, Target, Task, iso

log = logging.getLogger(__name__)

IDLE_FIRST, IDLE_MAX = 0.05, 1.0  # idle polling for due reports: from 50 ms up to 1 s


@dataclass(frozen=True)
class ReportConfig:
    """Where failure reports go, and how hard to try; nothing is owed while both are off."""

    policy: RetryPolicy  # hook.config.settings' report_policy
    failure_url: str | None = None  # HOOK_FAILURE_URL
    to_callback: bool = False  # HOOK_FAILURE_TO_CALLBACK

    @property
    def targets(self) -> tuple[Target, ...]:
        """What a task failing now owes: empty when reporting is off."""
        return ((Target.FAILURE_URL,) if self.failure_url else ()) + (
            (Target.CALLBACK_URL,) if self.to_callback else ()
        )


@dataclass(frozen=True)
class Settled:
    """What one attempt at a report comes to, for `TaskStore.settle_report`."""

    state: ReportState
    targets: tuple[Target, ...]  # still owed
    delivered: tuple[Target, ...]
    errors: dict[str, str]
    run_at: float | None = None


def failure_body(task: Task) -> str:
    """The report HOOK_FAILURE_URL gets: enough to act on without asking hook anything."""
    return json.dumps(
        {
            "status": "failure",
            "task_id": task.id,
            "reason": task.last_error,
            "attempts": task.attempts,
            "camera": task.camera,
            "user_id": task.user_id,
            "callback_url": task.callback_url,
            "timestamps": task.image_keys,
            "failed_at": iso(task.finished_at),
        }
    )


def callback_body(task: Task) -> str:
    """The report the event's own callback_url gets: Camio's shape, minimal."""
    return json.dumps({"status": "failure", "reason": task.last_error})


COUNTED = {Verdict.DELIVERED: "delivered", Verdict.RETRY: "retried", Verdict.REFUSED: "refused"}


def message_id(task: Task) -> str:
    """The report's webhook-id: the same on every attempt at it, by any worker, and new when
    the task fails again after a retry (receivers would drop it as a repeat otherwise)."""
    return f"{task.id}-failure-{round((task.finished_at or 0.0) * 1000)}"


def next_state(
    report: Report, outcomes: Mapping[Target, Outcome], policy: RetryPolicy, now: float
) -> Settled:
    """An attempt's outcomes per target in; the report's next state out (pure)."""
    delivered = report.delivered + tuple(
        t for t, o in outcomes.items() if o.verdict is Verdict.DELIVERED
    )
    errors = {t: why for t, why in report.errors if t not in delivered}
    errors.update(
        {t.value: o.reason for t, o in outcomes.items() if o.verdict is not Verdict.DELIVERED}
    )
    again = tuple(t for t, o in outcomes.items() if o.verdict is Verdict.RETRY)
    if not again:
        state = ReportState.UNDELIVERABLE if errors else ReportState.SENT
        return Settled(state, (), delivered, errors)
    if policy.exhausted(report.attempts):
        for target in again:
            why = errors[target.value]
            errors[target.value] = f"gave up after {report.attempts} attempts; last: {why}"
        return Settled(ReportState.UNDELIVERABLE, (), delivered, errors)
    wait = max((o.retry_after or 0.0 for o in outcomes.values()), default=0.0)
    return Settled(
        ReportState.DUE, again, delivered, errors, now + policy.delay(report.attempts, wait)
    )


class Reporter:
    """Claims due reports, delivers and settles them until `stopping`; a report in flight when
    stopping is finished and settled first (its POSTs are bounded by the timeout)."""

    def __init__(
        self,
        store: TaskStore,
        config: ReportConfig,
        *,
        hosts: HostAllowList,
        timeout: float,
        lease_seconds: float,
        worker_id: str,
        stopping: threading.Event,
        outbound: Outbound | None = None,
        metrics: Metrics | None = None,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.config, self.hosts, self.timeout = store, config, hosts, timeout
        # the operator's own URL: allowed by being configured (exactly its host and port)
        self.failure_hosts = allowing_only(config.failure_url) if config.failure_url else None
        # long enough for every target's POST: a live sender never loses its report
        self.lease = lease_seconds + timeout * len(Target)
        self.worker_id, self.stopping = worker_id, stopping
        self.outbound = outbound or Outbound()
        self.metrics = metrics or Metrics(store)
        self.http = http or callback_session()
        self.clock = clock
        self.claims = 0

    def run(self) -> None:
        """The report thread's loop; returns at once when reporting is off."""
        if not self.config.targets:
            return
        idle = IDLE_FIRST
        while not self.stopping.is_set():
            try:
                busy = self.run_once()
            except PyMongoError as exc:
                log.warning("reports: MongoDB unavailable (%s); retrying", type(exc).__name__)
                busy = False
                idle = IDLE_MAX
            except Exception:  # a bug must not end the reports, nor the worker
                log.exception("reports: claiming or sending failed")
                busy, idle = False, IDLE_MAX
            if busy:
                idle = IDLE_FIRST
                continue
            self.stopping.wait(idle)
            idle = min(idle * 2, IDLE_MAX)

    def run_once(self) -> bool:
        """Claim, send and settle one report; False when none was due. (A dead sender's
        report is brought back by every worker's housekeeping sweep, hook.worker.housekeeping.)"""
        self.claims += 1
        owner = f"{self.worker_id}#report{self.claims}"
        task = self.store.claim_report(owner, self.lease)
        if task is None or task.report is None:
            return False
        self.send(task, task.report, owner)
        return True

    def send(self, task: Task, report: Report, owner: str) -> Settled:
        """One attempt at `report`: POST to each target it still owes, then settle."""
        outcomes = {target: self._post(task, target, report.attempts) for target in report.targets}
        settled = next_state(report, outcomes, self.config.policy, self.clock())
        try:
            kept = self.store.settle_report(
                task.id,
                owner,
                settled.state,
                targets=settled.targets,
                delivered=settled.delivered,
                errors=settled.errors,
                run_at=settled.run_at,
            )
        except PyMongoError as exc:
            log.warning(
                "task %s: report attempt %d made, but MongoDB could not record it (%s); "
                "its lease will bring it back",
                task.id,
                report.attempts,
                type(exc).__name__,
            )
            return settled
        if not kept:
            log.warning(
                "task %s: report lease lost (or the task queued again) before it could be settled",
                task.id,
            )
        elif settled.state is ReportState.DUE:
            log.warning(
                "task %s: report attempt %d of %d not delivered (%s); again in %.1f s",
                task.id,
                report.attempts,
                self.config.policy.max_attempts,
                _said(settled),
                (settled.run_at or 0.0) - self.clock(),
            )
        elif settled.state is ReportState.SENT:
            log.info(
                "task %s: failure report sent to %s (attempt %d)",
                task.id,
                ", ".join(settled.delivered),
                report.attempts,
            )
        else:
            log.warning(
                "task %s: failure report undeliverable after %d attempt(s): %s",
                task.id,
                report.attempts,
                _said(settled),
            )
        return settled

    def _post(self, task: Task, target: Target, attempt: int) -> Outcome:
        """POST the report to one target; never raises (a bug is retried, and logged)."""
        if target is Target.FAILURE_URL:
            if not self.config.failure_url or self.failure_hosts is None:
                return Outcome(Verdict.REFUSED, "HOOK_FAILURE_URL is not set any more")
            url, hosts, body = self.config.failure_url, self.failure_hosts, failure_body(task)
        else:
            if not self.config.to_callback:
                return Outcome(Verdict.REFUSED, "HOOK_FAILURE_TO_CALLBACK is off now")
            url, hosts, body = task.callback_url, self.hosts, callback_body(task)
        try:
            # HOOK_CALLBACK_HEADERS (an Authorization, say) are for the callback's receiver:
            # the operator's failure URL is another host and gets signature and context only
            custom = target is not Target.FAILURE_URL
            headers = self.outbound.headers_for(
                message_id(task),
                body,
                camera=task.camera,
                user=task.user_id,
                attempt=attempt,
                now=self.clock(),
                custom=custom,
            )
            outcome = post_labels(
                self.http, url, body, hosts=hosts, timeout=self.timeout, headers=headers
            )
        except Exception as exc:
            log.exception("task %s: sending its report to %s failed", task.id, target)
            return Outcome(Verdict.RETRY, f"unexpected error: {type(exc).__name__}: {exc}")
        # the receiver's figures beside the callbacks' (hook_host_*), not in hook_deliveries
        self.metrics.delivery(
            url, COUNTED[outcome.verdict], outcome.elapsed, self.clock(), labels=False
        )
        return outcome


def _said(settled: Settled) -> str:
    return "; ".join(f"{t}: {why}" for t, why in sorted(settled.errors.items()))
