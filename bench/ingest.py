"""Ingest benchmark: events/s accepted by `gunicorn -w 2 hook.wsgi:app`, against a pymongo loop.

Each event carries 3 JPEGs of about 50 KB (about 150 KB of JPEG, 200 KB of JSON). Every event is
distinct (a unique JPEG comment per image), so de-duplication never short-cuts the work. The
ceiling is the same inserts (dedup look-up, images, task) done by a bare pymongo loop on the same
embedded nx-27017 server in the same run.

    .venv/bin/python bench/ingest.py [--seconds 8] [--clients 1,8,32]
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import random
import statistics
import threading
import time
from typing import Any

import requests
from PIL import Image, ImageDraw, ImageFilter
from pymongo import MongoClient

from bench.stack import Stack, percentile, run_threads
from hook.callbacks.hosts import HostAllowList
from hook.intake.event import Limits, parse_event
from hook.store import TaskStore

CALLBACK = "https://www.camio.com/api/callbacks/bench"


def photo_like_jpeg(seed: int, target: int = 50_000) -> bytes:
    """A 640x480 JPEG with shapes and grain, near `target` bytes: what a camera frame weighs."""
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 480), (90, 110, 130))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(640), rng.randrange(480)
        fill = tuple(rng.randrange(256) for _ in range(3))
        draw.rectangle((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 150)), fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(2))
    grain = Image.effect_noise((640, 480), 18).convert("RGB")
    image = Image.blend(image, grain, 0.12)
    for quality in range(95, 20, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= target:
            break
    return out.getvalue()


class EventMaker:
    """Distinct events for the cost of a counter: a JPEG comment segment (COM) right after SOI.

    The segment is 18 bytes, and SOI + it is 3-aligned, so only 24 base64 characters per image
    change from event to event; the rest of the base64 is computed once.
    """

    def __init__(self, jpegs: list[bytes]) -> None:
        self.tails = [base64.b64encode(jpeg[2:]).decode() for jpeg in jpegs]
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def body(self) -> bytes:
        with self.lock:
            n = next(self.counter)
        images = []
        for i, tail in enumerate(self.tails):
            comment = b"\xff\xd8\xff\xfe\x00\x0e" + f"{n:08d}{i:04d}".encode()
            images.append(
                {
                    "type": "image/jpeg",
                    "size": [640, 480],
                    "timestamp": f"2026-11-23T12:00:{i:02d}.{n % 1_000_000:06d}",
                    "image_b64": base64.b64encode(comment).decode() + tail,
                }
            )
        payload = {
            "callback_url": CALLBACK,
            "user_id": "bench",
            "camera": "bench cam",
            "images": images,
        }
        return json.dumps(payload).encode()


def run_clients(url: str, maker: EventMaker, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        session = requests.Session()
        while time.perf_counter() < deadline:
            body = maker.body()
            started = time.perf_counter()
            answer = session.post(
                url, data=body, timeout=30, headers={"Content-Type": "application/json"}
            )
            elapsed = time.perf_counter() - started
            with lock:
                if answer.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors += 1

    started = time.perf_counter()
    run_threads(client, clients)
    wall = time.perf_counter() - started
    return {
        "events": len(latencies),
        "errors": errors,
        "rate": len(latencies) / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


def pymongo_ceiling(uri: str, maker: EventMaker, seconds: float) -> float:
    """The same enqueue from one bare loop, no HTTP and no validation: what MongoDB allows."""
    client: MongoClient = MongoClient(uri)
    store = TaskStore(client["bench_ceiling"])
    store.ensure_indexes()
    hosts, limits = HostAllowList(("camio.com",)), Limits(64, 40_000_000, 8_000_000)
    # Parsing is the web's work, not MongoDB's: prepare the events first, time the inserts alone.
    events = [parse_event(maker.body(), hosts=hosts, limits=limits) for _ in range(1500)]
    done, started = 0, time.perf_counter()
    for event in events:
        store.enqueue(event)
        done += 1
        if time.perf_counter() - started > seconds:
            break
    rate = done / (time.perf_counter() - started)
    client.close()
    return rate


def measure(seconds: float = 8.0, levels: tuple[int, ...] = (1, 8, 32)) -> dict[str, Any]:
    """Events/s and latency per client count, and a one-client pymongo loop, in one run."""
    jpegs = [photo_like_jpeg(seed) for seed in range(3)]
    maker = EventMaker(jpegs)
    with Stack() as stack:
        ceiling = pymongo_ceiling(stack.mongo.uri, maker, seconds)
        rows = {c: run_clients(stack.url, maker, c, seconds) for c in levels}
    return {
        "rows": rows,
        "ceiling": ceiling,
        "jpeg_kb": sum(map(len, jpegs)) / 1000,
        "json_kb": len(maker.body()) / 1000,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", default="1,8,32")
    args = parser.parse_args()
    result = measure(args.seconds, tuple(int(c) for c in args.clients.split(",")))
    ceiling = result["ceiling"]
    print(
        f"ingest: gunicorn -w 2, 3 JPEGs/event ({result['jpeg_kb']:.0f} KB JPEG, "
        f"{result['json_kb']:.0f} KB JSON), embedded nx-27017, {args.seconds:.0f} s per level"
    )
    print(
        f"{'clients':>8} {'events':>7} {'errors':>6} {'events/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'of pymongo':>10}"
    )
    for clients, r in result["rows"].items():
        print(
            f"{clients:>8} {r['events']:>7.0f} {r['errors']:>6.0f} {r['rate']:>9.1f} "
            f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['rate'] / ceiling:>10.2f}"
        )
    print(
        f"{'pymongo':>8} {'':>7} {'':>6} {ceiling:>9.1f} {'':>8} {'':>8} {1:>10.2f}"
        "   (bare TaskStore.enqueue loop, one client, no HTTP)"
    )


if __name__ == "__main__":
    main()
