"""Worker benchmark: images labeled per second against raw onnxruntime; POST-to-callback latency.

1. Throughput: a queue pre-filled with N one-image events (the test photos, each made distinct);
   `python worker.py` labels them and a local receiver records each callback's arrival. Images/s
   from the first callback to the last, over raw `session.run` images/s for the same model on the
   same letterboxed photos, measured in the same run while no worker runs.
2. Latency: on an idle system, POST one event through gunicorn and time until its callback
   arrives; p50 and p99 over many events sent one at a time.

    .venv/bin/python bench/worker.py [--events 300] [--latency 60] [--workers 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hook import yolo  # noqa: E402
from hook.detector import Detector  # noqa: E402
from hook.embedded import EmbeddedMongo  # noqa: E402
from hook.event import Limits, parse_event  # noqa: E402
from hook.hosts import HostAllowList  # noqa: E402
from hook.images import decode_image  # noqa: E402
from hook.launcher import gunicorn_argv, worker_argv  # noqa: E402
from hook.settings import DEFAULT_MODEL  # noqa: E402
from hook.store import TaskStore  # noqa: E402
from tests.factories import free_port  # noqa: E402
from tests.receiver import Receiver  # noqa: E402

API_KEY = "bench-key-0123456789abcdef"
PHOTOS = sorted((ROOT / "tests" / "data").glob("*.jpg"))


def distinct(jpeg: bytes, n: int) -> bytes:
    """The same picture with a unique JPEG comment, so de-duplication never merges events."""
    return jpeg[:2] + b"\xff\xfe\x00\x0a" + f"{n:08d}".encode() + jpeg[2:]


def event(receiver: Receiver, path: str, jpeg: bytes) -> bytes:
    return json.dumps({
        "callback_url": receiver.url(path), "camera": "bench", "user_id": "bench",
        "images": [{"timestamp": "2026-11-23T12:00:00.000000",
                    "image_b64": base64.b64encode(jpeg).decode()}],
    }).encode()  # fmt: skip


def raw_rate(seconds: float) -> float:
    """Images/s of bare session.run on the letterboxed photos, default session options."""
    detector = Detector(DEFAULT_MODEL)
    tensors = []
    for path in PHOTOS:
        image, size = decode_image(path.read_bytes(), max_pixels=40_000_000, fit=detector.canvas)
        canvas, _ = detector.prepare(image, size)
        tensors.append(yolo.to_tensor([canvas], channels_first=True, dtype=detector.dtype))
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        detector.session.run(None, {detector.input_name: tensors[done % len(tensors)]})
        done += 1
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--latency", type=int, default=60, help="events for the latency run")
    parser.add_argument("--workers", type=int, default=1, help="worker.py processes")
    parser.add_argument("--threads", type=int, default=0, help="HOOK_THREADS per worker")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in PHOTOS]
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "mongo", free_port())
        mongo.start()
        env = {"PATH": "/usr/bin:/bin", "HOOK_API_KEY": API_KEY, "HOOK_MONGO_URI": mongo.uri,
               "HOOK_CALLBACK_HOSTS": "127.0.0.1", "HOOK_LOG_LEVEL": "WARNING",
               "HOOK_THREADS": str(args.threads)}  # fmt: skip
        store = TaskStore(MongoClient(mongo.uri)["hook"])
        hosts, limits = HostAllowList(("127.0.0.1",)), Limits(64, 40_000_000, 8_000_000)
        for n in range(args.events):
            body = event(receiver, f"/t/{n}", distinct(photos[n % len(photos)], n))
            store.enqueue(parse_event(body, hosts=hosts, limits=limits))
        port = free_port()
        procs = [subprocess.Popen(gunicorn_argv(f"127.0.0.1:{port}", 2), env=env, cwd=ROOT,
                                  stderr=subprocess.DEVNULL)]  # fmt: skip
        try:
            started = time.monotonic()
            procs += [subprocess.Popen(worker_argv(), env=env, cwd=ROOT)
                      for _ in range(args.workers)]  # fmt: skip
            for n in range(args.events):
                receiver.wait_for(f"/t/{n}", 1, timeout=600)
            times = sorted(t for path, t in receiver.arrivals if path.startswith("/t/"))
            rate = (len(times) - 1) / (times[-1] - times[0])
            startup = times[0] - started

            latencies, posts = [], []
            for n in range(args.latency):
                body = event(receiver, f"/l/{n}", distinct(photos[n % len(photos)], 10**7 + n))
                sent = time.monotonic()
                answer = requests.post(
                    f"http://127.0.0.1:{port}/tasks/{API_KEY}",
                    data=body,
                    timeout=30,
                    headers={"Content-Type": "application/json"},
                )
                assert answer.status_code == 200, answer.text
                receiver.wait_for(f"/l/{n}", 1, timeout=60)
                arrived = next(t for path, t in receiver.arrivals if path == f"/l/{n}")
                latencies.append((arrived - sent) * 1000)
                posts.append((answer.elapsed.total_seconds()) * 1000)
                time.sleep(random.uniform(0.2, 0.6))  # not in step with the idle polling
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(60)
            mongo.stop()
            receiver.close()
    ceiling = raw_rate(10)
    latencies.sort()
    print(
        f"worker: {args.workers} x worker.py (HOOK_THREADS={args.threads}), {args.events} "
        f"one-image events from {len(PHOTOS)} photos (500-1352 px), embedded nx-27017"
    )
    print(f"  labeled: {rate:.1f} images/s first to last callback (first after {startup:.1f} s)")
    print(f"  raw onnxruntime session.run: {ceiling:.1f} images/s (1 session, default threads)")
    print(f"  ratio: {rate / ceiling:.2f}")
    print(f"  (the POST itself: p50 {statistics.median(posts):.0f} ms)")
    print(
        f"  POST-to-callback latency, idle, {len(latencies)} events one at a time: "
        f"p50 {statistics.median(latencies):.0f} ms, "
        f"p99 {latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]:.0f} ms"
    )


if __name__ == "__main__":
    main()
