"""Load test: 10,000 events from a separate client process, as fast as the machine takes them.

A client process posts N one-image events (small distinct JPEGs) with C concurrent connections;
gunicorn takes them, workers label them, a receiver on 127.0.0.1 counts the callbacks. Prints
the accepted rate, the labeled rate, what was lost or delivered twice with different labels
(both must be 0), and the memory of every process at the start, middle and end (must stay flat).
Bounded in count and in time (--max-seconds).

    .venv/bin/python bench/load.py [--events 10000] [--clients 8] [--workers 2 --threads 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import threading
import time
from pathlib import Path

import requests

from bench.stack import Stack, rss_mb, run_threads
from tests.factories import image_bytes
from tests.receiver import Receiver


def client(url: str, callback: str, events: int, clients: int, out: multiprocessing.Queue) -> None:
    """The load generator, in its own process: closed loop, `clients` connections at once."""
    base_jpeg = image_bytes(96, 64, seed=1)
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(events))

    def loop() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            jpeg = base_jpeg[:2] + b"\xff\xfe\x00\x0a" + f"{n:08d}".encode() + base_jpeg[2:]
            body = json.dumps(
                {
                    "callback_url": f"{callback}/e/{n}",
                    "camera": "load",
                    "images": [
                        {
                            "timestamp": "2026-11-23T12:00:00Z",
                            "image_b64": base64.b64encode(jpeg).decode(),
                        }
                    ],
                }
            )
            try:
                code = session.post(
                    url, data=body, timeout=60, headers={"Content-Type": "application/json"}
                ).status_code
            except requests.RequestException:
                code = 0
            with lock:
                statuses[code] = statuses.get(code, 0) + 1
                if code == 200:
                    accepted.append(n)

    accepted: list[int] = []
    started = time.monotonic()
    run_threads(loop, clients)
    out.put({"statuses": statuses, "accepted": accepted, "seconds": time.monotonic() - started})


def processes(stack: Stack) -> dict[str, list[int]]:
    """PIDs by role: gunicorn master and workers, worker.py processes, nx-27017."""
    assert stack.web is not None and stack.mongo.process is not None
    children = Path(f"/proc/{stack.web.pid}/task/{stack.web.pid}/children").read_text().split()
    return {
        "web": [stack.web.pid, *map(int, children)],
        "worker": [w.pid for w in stack.workers],
        "mongo": [stack.mongo.process.pid],
    }


def memory(pids: dict[str, list[int]]) -> dict[str, float]:
    return {role: sum(rss_mb(pid) for pid in group) for role, group in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    receiver = Receiver()
    samples: list[tuple[str, dict[str, float]]] = []
    deadline = time.monotonic() + args.max_seconds
    try:
        with Stack() as stack:
            stack.start_workers(args.workers, args.threads)
            time.sleep(2)
            pids = processes(stack)
            samples.append(("start", memory(pids)))
            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            started = time.monotonic()
            gen = ctx.Process(
                target=client, args=(stack.url, receiver.url(""), args.events, args.clients, out)
            )
            gen.start()
            posted = out.get(timeout=args.max_seconds)
            gen.join()
            accepted = posted["accepted"]
            half = len(accepted) // 2
            while time.monotonic() < deadline:
                delivered = {p for p, _ in receiver.received}
                if len(delivered) >= half and len(samples) == 1:
                    samples.append(("middle", memory(pids)))
                if len(delivered) >= len(accepted):
                    break
                time.sleep(1)
            labeled_at = time.monotonic()
            samples.append(("end", memory(pids)))
    finally:
        receiver.close()
    by_path: dict[str, list] = {}
    for path, body in receiver.received:
        by_path.setdefault(path, []).append(body)
    lost = [n for n in accepted if f"/e/{n}" not in by_path]
    differing = [p for p, bodies in by_path.items() if any(b != bodies[0] for b in bodies)]
    times = sorted(t for _, t in receiver.arrivals)
    print(
        f"load: {args.events} one-image events (96x64 JPEG) from a client process with "
        f"{args.clients} connections; gunicorn -w 2; {args.workers} worker(s) x "
        f"HOOK_THREADS={args.threads}; embedded nx-27017"
    )
    print(
        f"  answers: {posted['statuses']} in {posted['seconds']:.0f} s = "
        f"{len(accepted) / posted['seconds']:.1f} events/s accepted"
    )
    print(
        f"  labeled: {len(by_path)} of {len(accepted)} in {labeled_at - started:.0f} s from the "
        f"first POST = {(len(times) - 1) / max(1e-9, times[-1] - times[0]):.1f} events/s"
    )
    print(
        f"  lost: {len(lost)}; delivered twice: {sum(len(b) > 1 for b in by_path.values())}, "
        f"with different labels: {len(differing)}"
    )
    print("  memory (RSS MB):  " + "  ".join(f"{role:>7}" for role in samples[0][1]))
    for name, mem in samples:
        print(f"  {name:>15}:  " + "  ".join(f"{mb:>7.0f}" for mb in mem.values()))


if __name__ == "__main__":
    main()
