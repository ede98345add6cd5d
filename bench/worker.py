"""Worker benchmark: images labeled per second against raw onnxruntime; POST-to-callback latency.

1. Throughput: a queue pre-filled with N one-image events (the test photos, each made distinct);
   `python worker.py` labels them and a local receiver records each callback's arrival. Images/s
   from the first callback to the last, over raw `session.run` images/s for the same models (the
   default pair: one image is a run of each) on the same letterboxed photos, measured in the same
   run while no worker runs.
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
import time
from pathlib import Path

import requests
from pymongo import MongoClient

from bench.stack import Stack, peak_rss_mb, percentile
from hook import yolo
from hook.detector import Detector
from hook.event import Limits, parse_event
from hook.hosts import HostAllowList
from hook.images import decode_image
from hook.settings import DEFAULT_MODELS
from hook.store import TaskStore
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
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
    """Images/s of bare session.run on the letterboxed photos, every model of the default."""
    detectors = [Detector(model) for model in DEFAULT_MODELS]
    tensors = []
    for path in PHOTOS:
        image, size = decode_image(path.read_bytes(), max_pixels=40_000_000,
                                   fit=detectors[0].canvas)  # fmt: skip
        tensors.append([
            yolo.to_tensor([d.to_canvas(image, size)[0]], channels_first=True, dtype=d.dtype)
            for d in detectors
        ])  # fmt: skip
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for detector, tensor in zip(detectors, tensors[done % len(tensors)], strict=True):
            detector.session.run(None, {detector.input_name: tensor})
        done += 1
    return done / (time.perf_counter() - started)


def measure(events: int = 300, latency: int = 60, workers: int = 1, threads: int = 0) -> dict:
    """Throughput against the raw ceiling, idle latency and the workers' peak memory."""
    photos = [p.read_bytes() for p in PHOTOS]
    receiver = Receiver()
    try:
        with Stack() as stack:
            store = TaskStore(MongoClient(stack.mongo.uri)["hook"])
            hosts, limits = HostAllowList(("127.0.0.1",)), Limits(64, 40_000_000, 8_000_000)
            for n in range(events):
                body = event(receiver, f"/t/{n}", distinct(photos[n % len(photos)], n))
                store.enqueue(parse_event(body, hosts=hosts, limits=limits))
            started = time.monotonic()
            stack.start_workers(workers, threads)
            for n in range(events):
                receiver.wait_for(f"/t/{n}", 1, timeout=600)
            times = sorted(t for path, t in receiver.arrivals if path.startswith("/t/"))
            latencies = []
            for n in range(latency):
                body = event(receiver, f"/l/{n}", distinct(photos[n % len(photos)], 10**7 + n))
                sent = time.monotonic()
                answer = requests.post(
                    stack.url, data=body, timeout=30, headers={"Content-Type": "application/json"}
                )
                assert answer.status_code == 200, answer.text
                receiver.wait_for(f"/l/{n}", 1, timeout=60)
                arrived = next(t for path, t in receiver.arrivals if path == f"/l/{n}")
                latencies.append((arrived - sent) * 1000)
                time.sleep(random.uniform(0.2, 0.6))  # not in step with the idle polling
            rss = max(peak_rss_mb(w.pid) for w in stack.workers)
    finally:
        receiver.close()
    return {
        "rate": (len(times) - 1) / (times[-1] - times[0]), "first": times[0] - started,
        "ceiling": raw_rate(10), "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "peak_rss_mb": rss, "workers": workers, "threads": threads, "events": events,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--latency", type=int, default=60, help="events for the latency run")
    parser.add_argument("--workers", type=int, default=1, help="worker.py processes")
    parser.add_argument("--threads", type=int, default=0, help="HOOK_THREADS per worker")
    args = parser.parse_args()
    r = measure(args.events, args.latency, args.workers, args.threads)
    print(
        f"worker: {r['workers']} x worker.py (HOOK_THREADS={r['threads']}), {r['events']} "
        f"one-image events from {len(PHOTOS)} photos (500-1352 px), embedded nx-27017"
    )
    print(
        f"  labeled: {r['rate']:.1f} images/s first to last callback "
        f"(first after {r['first']:.1f} s)"
    )
    print(
        f"  raw onnxruntime session.run: {r['ceiling']:.1f} images/s "
        f"({len(DEFAULT_MODELS)} models, a session each, default threads)"
    )
    print(f"  ratio: {r['rate'] / r['ceiling']:.2f}")
    print(
        f"  POST-to-callback latency, idle, one event at a time: p50 {r['p50']:.0f} ms, "
        f"p99 {r['p99']:.0f} ms"
    )
    print(f"  worker peak RSS: {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
