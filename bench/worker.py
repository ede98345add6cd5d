"""Worker benchmark: images labeled per second against raw onnxruntime; POST-to-callback latency.

1. Throughput: a queue pre-filled with N one-image events (the test photos, each made distinct);
   `python worker.py` labels them and a local receiver records each callback's arrival. Images/s
   from the first callback to the last, over raw `session.run` images/s for the same models (the
   default pair: one image is a run of each) on the same letterboxed photos, measured in the same
   run while no worker runs.
2. Latency: on an idle system, POST one event through gunicorn and time until its callback
   arrives; p50 and p99 over many events sent one at a time.

Throughput is measured against an endpoint that answers at once and against one that answers
after 100 ms, as Camio's does across the internet (`--endpoint-ms`, the receiver's latency;
the idle latency run goes with the first).

    .venv/bin/python bench/worker.py [--events 300] [--latency 60] [--workers 1]
                                     [--endpoint-ms 0 --endpoint-ms 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from pymongo import MongoClient

from bench.stack import Stack, peak_rss_mb, percentile
from hook.callbacks.hosts import HostAllowList
from hook.cli.argv import worker_argv
from hook.config.detectors import detector_from
from hook.config.lanes import usable_cores
from hook.config.settings import Settings
from hook.detect import ensemble, yolo
from hook.detect.detection import Detects
from hook.detect.detector import Detector
from hook.detect.ensemble import Ensemble
from hook.detect.tiled import Tiled
from hook.intake.event import Limits, parse_event
from hook.intake.images import decode_image, inspect_image
from hook.store import TaskStore
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "tests" / "data").glob("*.jpg"))


def distinct(jpeg: bytes, n: int) -> bytes:
    """The same picture with a unique JPEG comment, so de-duplication never merges events."""
    return jpeg[:2] + b"\xff\xfe\x00\x0a" + f"{n:08d}".encode() + jpeg[2:]


def event(receiver: Receiver, path: str, jpeg: bytes) -> bytes:
    return json.dumps(
        {
            "callback_url": receiver.url(path),
            "camera": "bench",
            "user_id": "bench",
            "images": [
                {
                    "timestamp": "2026-11-23T12:00:00.000000",
                    "image_b64": base64.b64encode(jpeg).decode(),
                }
            ],
        }
    ).encode()


def model_runs(detector: Detects, placed: Any) -> list[tuple[Detector, Any]]:
    """The engine runs the worker makes for one image `placed` by `detector.to_canvas`: each
    model on the whole frame, and the tiles' model on each tile of a large frame."""
    if isinstance(detector, Tiled):
        whole, tiles = placed
        runs = model_runs(detector.whole, whole)
        for canvas, _ in tiles[1] if tiles else ():
            runs.extend(model_runs(detector.tiler, canvas))
        return runs
    if isinstance(detector, Ensemble):
        return [
            run
            for member, (canvas, _) in zip(detector.members, placed, strict=True)
            for run in model_runs(member, canvas)
        ]
    assert isinstance(detector, Detector)
    return [(detector, placed)]


def header_size(data: bytes) -> tuple[int, int]:
    info = inspect_image(data, max_pixels=40_000_000)
    return info.width, info.height


def raw_rate(seconds: float, lanes: int = 1, env: dict[str, str] | None = None) -> float:
    """Images/s of bare engine runs on the letterboxed photos: every run the default makes of
    each (every model on the whole frame, and the tiles of a large one), nothing else.

    One lane: one session per model with a thread per usable core, as the engine's default on
    an unpinned machine (the reference the worker is held to). Several: that many threads,
    each with single-threaded sessions of its own, running side by side (the layout the worker
    uses by default, bare).
    """
    # one lane: a thread per usable core, said outright (onnxruntime's own default counts
    # the machine's cores, whatever this process's affinity)
    threads = usable_cores() if lanes == 1 else 1
    settings = Settings.from_env(
        {**(env or {}), "HOOK_THREADS": str(threads)}, require_api_key=False
    )
    detectors = [detector_from(settings) for _ in range(lanes)]
    placed = []
    for path in PHOTOS:
        data = path.read_bytes()
        image, size = decode_image(
            data, max_pixels=40_000_000, fit=detectors[0].fit_for(header_size(data))
        )
        placed.append(detectors[0].to_canvas(image, size)[0])

    def feeds(detector: Detects) -> list[list[tuple[Any, dict[str, Any]]]]:
        """Per photo, each run's session and its input, made before the clock starts."""
        return [
            [
                (
                    model.engine,
                    model.feeds(
                        yolo.to_tensor(
                            [canvas], channels_first=model.channels_first, dtype=model.dtype
                        )
                    ),
                )
                for model, canvas in model_runs(detector, views)
            ]
            for views in placed
        ]

    sets = [feeds(d) for d in detectors]
    counts = [0] * lanes
    started = time.perf_counter()

    def lane(n: int) -> None:
        done = 0
        while time.perf_counter() - started < seconds:
            for engine, inputs in sets[n][done % len(placed)]:
                engine.run(None, inputs)
            done += 1
        counts[n] = done

    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(lane, range(lanes)))
    return sum(counts) / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_trips(store: TaskStore, events: int, timeout: float = 10) -> float:
    """MongoDB commands per task the workers sent (their heartbeats' count over tasks done),
    start-up, leases, heartbeats and housekeeping included."""
    deadline = time.monotonic() + timeout
    while True:  # a heartbeat follows a finished task within about a second
        beats = store.workers()
        if sum(b.done for b in beats) >= events or time.monotonic() > deadline:
            return sum(b.round_trips for b in beats) / max(1, sum(b.done for b in beats))
        time.sleep(0.2)


def measure(
    events: int = 300,
    latency: int = 60,
    workers: int = 1,
    threads: int = 0,
    *,
    endpoint_ms: float = 0.0,
    env: dict[str, str] | None = None,
    inference: bool = True,
    cores: int | None = None,
    mongo_uri: str | None = None,
) -> dict:
    """Throughput against the raw ceiling, idle latency (`latency` events; 0: none), CPU per
    image and peak memory, with every callback answered after `endpoint_ms`."""
    env = env or {}
    photos = [p.read_bytes() for p in PHOTOS]
    # as Camio's HTTPS endpoint: connections reused, each answer after the endpoint's latency
    receiver = Receiver(keep_alive=True, latency=endpoint_ms / 1000)
    try:
        with Stack(web_workers=2, mongo_uri=mongo_uri, **env) as stack:
            store = TaskStore(MongoClient(stack.uri)[stack.db_name])
            hosts, limits = HostAllowList(("127.0.0.1",)), Limits(64, 40_000_000, 8_000_000)
            for n in range(events):
                body = event(receiver, f"/t/{n}", distinct(photos[n % len(photos)], n))
                store.enqueue(parse_event(body, hosts=hosts, limits=limits))
            # and again after the workers: the machine's load drifts
            with pinned(cores):
                before_raw = raw_rate(6, env=env) if inference else 0.0
            started = time.monotonic()
            argv = worker_argv() if inference else [sys.executable, "-m", "bench.no_inference"]
            if cores is not None:  # the worker on the first `cores` CPUs, as taskset does
                argv = ["taskset", "-c", ",".join(map(str, first_cpus(cores))), *argv]
            # HOOK_WORKERS as many as run, so each plans its share of the cores (not one
            # process per 4 cores, the default's rule for a machine of its own)
            stack.start_workers(workers, threads, argv, HOOK_WORKERS=str(workers))
            receiver.wait_for("/t/0", 1, timeout=600)
            pids = {"worker": [w.pid for w in stack.workers]}
            if stack.mongo_pid is not None:  # the embedded server's CPU; another's is not ours
                pids["mongo"] = [stack.mongo_pid]
            before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
            for n in range(events):
                receiver.wait_for(f"/t/{n}", 1, timeout=600)
            spent = {k: sum(cpu_seconds(p) for p in v) - before[k] for k, v in pids.items()}
            trips = round_trips(store, events)
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
        "rate": (len(times) - 1) / (times[-1] - times[0]),
        "first": times[0] - started,
        **(raw_after(before_raw, env, cores) if inference else NO_RAW),
        "cores": cores or usable_cores(),
        "models": describe(env),
        "p50": statistics.median(latencies) if latencies else None,
        "p99": percentile(latencies, 0.99) if latencies else None,
        "endpoint_ms": endpoint_ms,
        "round_trips": trips,
        "cpu_ms": {k: v * 1000 / (events - 1) for k, v in spent.items()},
        "peak_rss_mb": rss,
        "workers": workers,
        "threads": threads,
        "inference": inference,
        "store": "MongoDB at --mongo-uri" if mongo_uri else "embedded nx-27017",
        "events": events,
    }


NO_RAW = {"ceiling": None, "lanes_ceiling": None}  # without inference there is nothing to compare


def raw_after(before: float, env: dict[str, str], cores: int | None) -> dict[str, float]:
    """The raw references on the worker's cores: a thread per core (the mean of before and
    now), and bare single-threaded lanes, one per core."""
    with pinned(cores):
        return {
            "ceiling": (before + raw_rate(6, env=env)) / 2,
            "lanes_ceiling": raw_rate(6, usable_cores(), env),
        }


def first_cpus(count: int) -> list[int]:
    return sorted(os.sched_getaffinity(0))[:count]


@contextmanager
def pinned(cores: int | None) -> Iterator[None]:
    """This process on its first `cores` CPUs meanwhile (None: left as it is)."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, first_cpus(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def describe(env: dict[str, str]) -> str:
    """The models as the worker runs them: "yolov3-tiny + nanodet-g, onnxruntime CPU int8"."""
    detectors = ensemble.members_of(detector_from(Settings.from_env(env, require_api_key=False)))
    names = " + ".join(d.model.stem for d in detectors)
    return f"{names}, {detectors[0].engine.description}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--latency", type=int, default=60, help="events for the latency run")
    parser.add_argument("--workers", type=int, default=1, help="worker.py processes")
    parser.add_argument("--threads", type=int, default=0, help="HOOK_THREADS per worker")
    parser.add_argument(
        "--mongo-uri",
        help="any MongoDB (e.g. a replica set) instead of an embedded nx-27017; a database of "
        "its own, dropped at the end",
    )
    parser.add_argument(
        "--cores", type=int, help="the worker (and the raw runs) on this many cores only"
    )
    parser.add_argument(
        "--no-inference",
        action="store_true",
        help="run bench.no_inference: the pipeline with every model run taken out",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every process, e.g. HOOK_KEEP_PICTURES_HOURS=0",
    )
    parser.add_argument(
        "--endpoint-ms",
        type=float,
        action="append",
        help="the callback endpoint's answer time; repeat for several (default: 0 and 100)",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    for n, endpoint in enumerate(args.endpoint_ms or [0.0, 100.0]):
        latency = args.latency if n == 0 else 0
        report(
            measure(
                args.events,
                latency,
                args.workers,
                args.threads,
                endpoint_ms=endpoint,
                env=env,
                inference=not args.no_inference,
                cores=args.cores,
                mongo_uri=args.mongo_uri,
            )
        )


def report(r: dict) -> None:
    what = "worker.py" if r["inference"] else "worker.py without inference (bench.no_inference)"
    print(
        f"worker: {r['workers']} x {what} on {r['cores']} core(s) (HOOK_THREADS={r['threads']}), "
        f"{r['events']} one-image events from {len(PHOTOS)} photos (500-1352 px), {r['store']}"
    )
    print(
        f"  labeled, endpoint answering after {r['endpoint_ms']:.0f} ms: {r['rate']:.1f} "
        f"images/s first to last callback (first after {r['first']:.1f} s)"
    )
    if r["ceiling"] is None:
        report_costs(r)
        return
    print(
        f"  raw engine runs: {r['ceiling']:.1f} images/s ({r['models']}, a session each, "
        "a thread per core; the runs the default makes: each model on the frame, tiles of "
        "large ones)"
    )
    print(f"  ratio: {r['rate'] / r['ceiling']:.2f}")
    print(
        f"  bare lanes, {r['cores']} threads of single-threaded sessions side by side: "
        f"{r['lanes_ceiling']:.1f} images/s (worker at {r['rate'] / r['lanes_ceiling']:.2f})"
    )
    if r["p50"] is not None:
        print(
            f"  POST-to-callback latency, idle, one event at a time: p50 {r['p50']:.0f} ms, "
            f"p99 {r['p99']:.0f} ms"
        )
    report_costs(r)


def report_costs(r: dict) -> None:
    cpu = r["cpu_ms"]
    print(f"  MongoDB round trips per task: {r['round_trips']:.2f}")
    mongo = f"nx-27017 {cpu['mongo']:.1f} ms" if "mongo" in cpu else "MongoDB not measured here"
    print(f"  CPU per image: worker {cpu['worker']:.1f} ms, {mongo}")
    print(f"  worker peak RSS: {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
