"""`python -m hook status`: the queue and the workers at a glance, from MongoDB.

A worker is `running` or `stopping` while it beats, `stopped` once it said so on its way out
(the workers' housekeeping drops heartbeats after a day), and `gone` when it stopped beating
without saying so (killed, its machine down).
"""

from __future__ import annotations

from typing import Any

from hook.store import TaskStore
from hook.store.records import Heartbeat
from hook.task import Status, iso


def gather(store: TaskStore, now: float, failures: int = 5) -> dict[str, Any]:
    """Everything the status report shows, as plain data (also printed with --json)."""
    oldest = store.oldest_pending()
    return {
        "tasks": store.stats(),
        "retrying": store.retrying(),
        "oldest_pending_seconds": round(now - oldest.created_at, 1) if oldest else None,
        "recent_failures": [
            {
                "id": t.id,
                "camera": t.camera,
                "finished_at": iso(t.finished_at),
                "reason": t.last_error,
            }
            for t in store.pending([Status.FAILED], failures)
        ],
        "workers": [_worker(beat, now) for beat in store.workers()],
    }


def _worker(beat: Heartbeat, now: float) -> dict[str, Any]:
    age = now - beat.seen_at
    state = beat.state
    if state != "stopped" and age >= 3 * beat.every:
        state = "gone"
    return {
        "id": beat.worker, "host": beat.host, "pid": beat.pid, "state": state,
        "seen_seconds_ago": round(age, 1), "done": beat.done, "in_flight": beat.in_flight,
    }  # fmt: skip


def report(data: dict[str, Any]) -> str:
    """The same, as lines for a person."""
    counts = [f"{status} {n}" for status, n in data["tasks"].items()]
    if data["retrying"]:  # queued again after a failed attempt, waiting for the next one
        counts = [f"{c} ({data['retrying']} retrying)" if c.startswith("queued ") else c
                  for c in counts]  # fmt: skip
    lines = ["tasks: " + ", ".join(counts)]
    oldest = data["oldest_pending_seconds"]
    lines.append(f"oldest pending task: {_age(oldest)} old" if oldest is not None
                 else "oldest pending task: none pending")  # fmt: skip
    states = [w["state"] for w in data["workers"]]
    alive = sum(state not in ("stopped", "gone") for state in states)
    lines.append(f"workers: {alive} alive, {states.count('stopped')} stopped, "
                 f"{states.count('gone')} gone")  # fmt: skip
    for w in data["workers"]:
        lines.append(f"  {w['id']}  {w['state']:<8} seen {_age(w['seen_seconds_ago'])} ago, "
                     f"{w['done']} done, {w['in_flight']} in hand")  # fmt: skip
    lines.append(f"recent failures: {len(data['recent_failures'])}")
    for f in data["recent_failures"]:
        lines.append(f"  {f['finished_at']}  {f['id']}  camera={f['camera']!r}: {f['reason']}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
