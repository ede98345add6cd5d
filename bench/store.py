"""The store's ceiling: tasks/s through MongoDB alone, doing exactly a worker's per-task work.

Events of one photo each are queued, then 1, 2 and 4 client processes do what a busy worker
does to the store per task, nothing else (no decoding, no model, no POST): claim 4 due tasks
at once, read their images in one query, store each task's labels (its images kept for the
pictures, as by default), record the 4 done in one bulk write. Tasks/s over the run, and the
embedded server's CPU per task: where one machine's embedded nx-27017 ends, whatever the
cores. `--mongo-uri` runs it against any MongoDB (a
replica set; its own database, dropped at the end).

    .venv/bin/python -m bench.store [--tasks 2000] [--mongo-uri URI]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.worker import PHOTOS, cpu_seconds, distinct, event
from hook.callbacks.hosts import HostAllowList
from hook.intake.event import Limits, parse_event
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.loopback import free_port
from tests.receiver import Receiver

KEEP = 24 * 3600.0  # HOOK_KEEP_PICTURES_HOURS's default: images stay past completion
LABELS = '{"status":"success","labels":{"2026-11-23T12:00:00.000000":{}}}'


def fill(store: TaskStore, count: int) -> None:
    """`count` one-photo events queued, as the web stores them."""
    photos = [p.read_bytes() for p in PHOTOS]
    receiver = Receiver()  # only for a callback URL; nothing is POSTed
    hosts, limits = HostAllowList(("127.0.0.1",)), Limits(64, 40_000_000, 8_000_000)
    try:
        for n in range(count):
            body = event(receiver, f"/t/{n}", distinct(photos[n % len(photos)], n))
            store.enqueue(parse_event(body, hosts=hosts, limits=limits))
    finally:
        receiver.close()


def client(uri: str, db: str, name: str) -> None:
    """A worker's store work per task until the queue is empty."""
    store = TaskStore(MongoClient(uri)[db])
    claims = 0
    while True:
        claims += 1
        owners = [f"{name}#{claims}:{n}" for n in range(4)]
        claimed = store.claim_many(owners, 60)
        if not claimed:
            return
        store.load_images_of([task for _, task in claimed])
        for owner, task in claimed:
            store.save_result(task.id, owner, LABELS, keep_images_for=KEEP)
        store.complete_many([(task.id, owner, 0, None) for owner, task in claimed])  # images kept


def run(uri: str, db: str, clients: int, tasks: int, pid: int | None) -> dict[str, Any]:
    store = TaskStore(MongoClient(uri)[db])
    fill(store, tasks)
    cpu = cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    procs = [
        multiprocessing.Process(target=client, args=(uri, db, f"c{n}")) for n in range(clients)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    done = store.stats().get("done", 0)
    return {
        "clients": clients,
        "rate": done / seconds,
        "cpu_ms": (cpu_seconds(pid) - cpu) * 1000 / max(1, done) if pid else None,
        "done": done,
    }


def measure(tasks: int = 2000, mongo_uri: str | None = None) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        mongo = None if mongo_uri else EmbeddedMongo(Path(folder), free_port())
        if mongo is not None:
            mongo.start()
        try:
            uri = mongo_uri or (mongo.uri if mongo else "")
            pid = mongo.process.pid if mongo and mongo.process else None
            for clients in (1, 2, 4):
                db = f"bench_store_{uuid.uuid4().hex[:8]}"
                rows.append(run(uri, db, clients, tasks, pid))
                cleanup: MongoClient[dict[str, Any]] = MongoClient(uri)
                with cleanup:
                    cleanup.drop_database(db)
        finally:
            if mongo is not None:
                mongo.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--mongo-uri", help="any MongoDB instead of an embedded nx-27017")
    args = parser.parse_args()
    where = "MongoDB at --mongo-uri" if args.mongo_uri else "embedded nx-27017"
    print(f"store ceiling, {where}, {args.tasks} one-photo tasks per run:")
    for r in measure(args.tasks, args.mongo_uri):
        cpu = f", server CPU {r['cpu_ms']:.1f} ms per task" if r["cpu_ms"] is not None else ""
        print(f"  {r['clients']} client process(es): {r['rate']:.0f} tasks/s{cpu}")


if __name__ == "__main__":
    main()
