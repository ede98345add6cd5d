"""All the figures in one table: `python -m bench` (or bench/run.py), for docs/benchmarks.md.

Ingest events/s and p50/p99 at 1/8/32 clients against a bare pymongo loop; worker images/s
over raw engine images/s of the same models at the same precision (the very runs the default
makes, tiles included), on 1 core and on all, with bare single-threaded lanes beside them, for
three layouts (the default, one process per core, one lane of all threads) and against an
endpoint that answers after 100 ms, with the CPU per image of the worker and of nx-27017 (from
/proc), MongoDB round trips per task, POST-to-callback latency on an idle system against one
image's raw inference, and peak memory; the pipeline's own ceiling (the worker without model
runs) and where an image's CPU goes, stage by stage (bench/split.py); each engine and
precision's ms/image beside its accuracy (bench/engines.py); model load time; label accuracy
on the labeled photo set (bench/accuracy.py). Every figure
of a row comes from the same run; ratios are the figures to compare between machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

import onnxruntime

from bench import accuracy, engines, ingest, split, worker
from bench.stack import ROOT, cpu

LOAD = """
import time
started = time.perf_counter()
from hook.detect import ensemble
from hook.config.detectors import detector_from
from hook.config.settings import Settings
detector = detector_from(Settings.from_env({}, require_api_key=False))
print(detector.load_seconds, time.perf_counter() - started)
"""


def model_load() -> tuple[float, float]:
    """(session + warm-up seconds, with imports seconds) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def machine() -> str:
    name, flags = cpu()
    present = [flag for flag in FLAGS if flag in flags] or ["none of " + ", ".join(FLAGS)]
    return (
        f"{os.cpu_count()} cores ({name}; {', '.join(present)}), Python "
        f"{platform.python_version()}, onnxruntime {onnxruntime.__version__}, embedded nx-27017"
    )


def worker_rows(name: str, w: dict) -> list[tuple[str, str]]:
    """One worker layout's figures: throughput against the raw runs, CPU, round trips, latency."""
    inference = 1000 / w["ceiling"]  # ms of one image through the raw runs, default threads
    cpu_ms = w["cpu_ms"]
    rows = [
        (
            f"{name}: images/s (of raw {w['models']} images/s; of bare lanes)",
            f"{w['rate']:.1f} ({w['rate'] / w['ceiling']:.2f} of {w['ceiling']:.1f}; "
            f"{w['rate'] / w['lanes_ceiling']:.2f} of {w['lanes_ceiling']:.1f})",
        ),
        (
            f"{name}: CPU per image, worker / nx-27017; MongoDB round trips per task",
            f"{cpu_ms['worker']:.1f} / {cpu_ms['mongo']:.1f} ms; {w['round_trips']:.2f}",
        ),
    ]
    if w["p50"] is not None:  # measured on the default layout only
        rows.append(
            (
                f"{name}: POST-to-callback latency p50 / p99, idle (raw inference of one image)",
                f"{w['p50']:.0f} / {w['p99']:.0f} ms ({inference:.0f} ms; p50 is inference + "
                f"{w['p50'] - inference:.0f} ms)",
            )
        )
    rows.append((f"{name}: peak RSS per worker process", f"{w['peak_rss_mb']:.0f} MB"))
    return rows


def pipeline_rows(events: int) -> list[tuple[str, str]]:
    """The worker without model runs (its own ceiling), and an image's CPU stage by stage."""
    rows = []
    for endpoint in (0.0, 100.0):
        w = worker.measure(events, 0, 1, 0, endpoint_ms=endpoint, inference=False)
        cpu_ms = w["cpu_ms"]
        rows.append(
            (
                f"pipeline without inference, endpoint {endpoint:.0f} ms: images/s; CPU per "
                "image, worker / nx-27017; round trips per task",
                f"{w['rate']:.0f}; {cpu_ms['worker']:.1f} / {cpu_ms['mongo']:.1f} ms; "
                f"{w['round_trips']:.2f}",
            )
        )
    stages = split.measure()
    shown = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items())
    rest = cpu_ms["worker"] - stages["decode"] - stages["letterbox"] - stages["labels"]
    rows.append(
        (
            "CPU ms per image, by stage (one-thread sessions; pictures: none at labeling)",
            f"{shown}; MongoDB client, HTTP and threads {rest:.1f} (the worker without "
            f"inference, less its decode, letterbox and labels); nx-27017 {cpu_ms['mongo']:.1f}",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    args = parser.parse_args()
    seconds, events, latency = (3.0, 100, 15) if args.quick else (8.0, 300, 60)
    rows: list[tuple[str, str]] = []
    ing = ingest.measure(seconds)
    for clients, r in ing["rows"].items():
        rows.append(
            (
                f"ingest, {clients} client(s): events/s (of the pymongo loop), p50 / p99",
                f"{r['rate']:.0f} ({r['rate'] / ing['ceiling']:.2f}), "
                f"{r['p50']:.0f} / {r['p99']:.0f} ms",
            )
        )
    rows.append(
        ("ingest reference: one bare pymongo enqueue loop, events/s", f"{ing['ceiling']:.0f}")
    )
    layouts: list[tuple[str, int, dict[str, str], int | None]] = [
        ("default (1 worker, a lane per core)", 1, {}, None),
        ("default on 1 core", 1, {}, 1),
        ("2 workers of 1 lane (one process per core)", 2, {"HOOK_WORKERS": "2"}, None),
        ("1 worker, 1 lane of all threads (the old layout)", 1, {"HOOK_LANES": "1"}, None),
    ]
    for name, workers, env, cores in layouts:
        w = worker.measure(
            events, latency if cores is None else 0, workers, 0, env=env, cores=cores
        )
        rows += worker_rows(name, w)
    far = worker.measure(events, 0, 1, 0, endpoint_ms=100.0)  # every callback answered after 100 ms
    rows.append(
        (
            "default, the endpoint answering after 100 ms: images/s (of raw; of bare lanes)",
            f"{far['rate']:.1f} ({far['rate'] / far['ceiling']:.2f} of {far['ceiling']:.1f}; "
            f"{far['rate'] / far['lanes_ceiling']:.2f} of {far['lanes_ceiling']:.1f})",
        )
    )
    rows += pipeline_rows(events * 3)
    rows += engines.measure(rounds=1 if args.quick else 3)
    rows += accuracy.measure()
    session, total = model_load()
    rows.append(
        (
            "model load (the default pair): sessions + warm-up (with imports)",
            f"{session:.2f} s ({total:.2f} s)",
        )
    )
    print(f"Measured on {machine()}.\n")
    print("| figure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
