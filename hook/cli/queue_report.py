"""`python -m hook status`: the queue, the workers and the callback hosts at a glance.

A worker is `running` or `stopping` while it beats, `stopped` once it said so on its way out
(the workers' housekeeping drops heartbeats after a day), and `gone` when it stopped beating
without saying so (killed, its machine down). Callback hosts are listed with what became of
the deliveries to each since counting began, the most recently failing first.
"""

from __future__ import annotations

from typing import Any

from hook.metrics.hosts import MAX_HOSTS, HostFigures, figures
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
        "callback_hosts": [_host(row, now) for row in figures(store.counted())],
    }


def _host(row: HostFigures, now: float) -> dict[str, Any]:
    ago = round(now - row.last_at, 1) if row.last_at is not None else None
    return {**row.as_dict(), "last_at": iso(row.last_at), "last_seconds_ago": ago}


def _worker(beat: Heartbeat, now: float) -> dict[str, Any]:
    age = now - beat.seen_at
    state = beat.state_at(now)
    return {
        "id": beat.worker,
        "host": beat.host,
        "pid": beat.pid,
        "state": state,
        "seen_seconds_ago": round(age, 1),
        "done": beat.done,
        "in_flight": beat.in_flight,
    }


def report(data: dict[str, Any]) -> str:
    """The same, as lines for a person."""
    counts = [f"{status} {n}" for status, n in data["tasks"].items()]
    if data["retrying"]:  # queued again after a failed attempt, waiting for the next one
        counts = [
            f"{c} ({data['retrying']} retrying)" if c.startswith("queued ") else c for c in counts
        ]
    lines = ["tasks: " + ", ".join(counts)]
    oldest = data["oldest_pending_seconds"]
    lines.append(
        f"oldest pending task: {_age(oldest)} old"
        if oldest is not None
        else "oldest pending task: none pending"
    )
    states = [w["state"] for w in data["workers"]]
    alive = sum(state not in ("stopped", "gone") for state in states)
    lines.append(
        f"workers: {alive} alive, {states.count('stopped')} stopped, {states.count('gone')} gone"
    )
    for w in data["workers"]:
        lines.append(
            f"  {w['id']}  {w['state']:<8} seen {_age(w['seen_seconds_ago'])} ago, "
            f"{w['done']} done, {w['in_flight']} in hand"
        )
    lines.append(f"recent failures: {len(data['recent_failures'])}")
    for f in data["recent_failures"]:
        lines.append(f"  {f['finished_at']}  {f['id']}  camera={f['camera']!r}: {f['reason']}")
    lines.extend(_host_table(data["callback_hosts"]))
    return "\n".join(lines)


HOST_COLUMNS = ("delivered", "retried", "refused", "gave_up")


def _host_table(hosts: list[dict[str, Any]]) -> list[str]:
    """A row per callback host: deliveries by outcome, POST seconds, the last outcome."""
    if not hosts:
        return ["callback hosts: none delivered to yet"]
    width = max(len("HOST"), *(len(h["host"]) for h in hosts))
    heads = "  ".join(c.replace("_", " ").upper() for c in HOST_COLUMNS)
    lines = [
        f"callback hosts: {len(hosts)} (deliveries since counting began; after the first "
        f"{MAX_HOSTS}, hosts count as other)",
        f"  {'HOST':<{width}}  {heads}  {'MEAN':>7}  {'P90':>7}  LAST",
    ]
    for h in hosts:
        counts = "  ".join(f"{h[c]:>{len(c)}}" for c in HOST_COLUMNS)
        last = (
            f"{h['last_outcome']} {_age(h['last_seconds_ago'])} ago" if h["last_outcome"] else "-"
        )
        lines.append(
            f"  {h['host']:<{width}}  {counts}  {_seconds(h['mean_seconds']):>7}  "
            f"{_seconds(h['p90_seconds']):>7}  {last}"
        )
    return lines


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
