"""All the figures in one table: `python -m bench` (or bench/run.py), for the README.

Ingest events/s and p50/p99 at 1/8/32 clients against a bare pymongo loop; worker images/s
over raw engine images/s of the same models at the same precision, for three layouts (the
default lanes, one process per core, one lane of all threads), with the CPU per image of the
worker and of nx-27017 (from /proc), MongoDB round trips per task, POST-to-callback latency
on an idle system against one image's raw inference, and peak memory; each engine and
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

from bench import accuracy, engines, ingest, worker
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
    return [
        (
            f"{name}: images/s (of raw {w['models']} images/s; of bare lanes)",
            f"{w['rate']:.1f} ({w['rate'] / w['ceiling']:.2f} of {w['ceiling']:.1f}; "
            f"{w['rate'] / w['lanes_ceiling']:.2f} of {w['lanes_ceiling']:.1f})",
        ),
        (
            f"{name}: CPU per image, worker / nx-27017; MongoDB round trips per task",
            f"{cpu_ms['worker']:.1f} / {cpu_ms['mongo']:.1f} ms; {w['round_trips']:.2f}",
        ),
        (
            f"{name}: POST-to-callback latency p50 / p99, idle (raw inference of one image)",
            f"{w['p50']:.0f} / {w['p99']:.0f} ms ({inference:.0f} ms; p50 is inference + "
            f"{w['p50'] - inference:.0f} ms)",
        ),
        (f"{name}: peak RSS per worker process", f"{w['peak_rss_mb']:.0f} MB"),
    ]


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
    layouts: list[tuple[str, int, dict[str, str]]] = [
        ("1 worker, default lanes", 1, {}),
        ("2 workers of 1 lane (one process per core)", 2, {"HOOK_WORKERS": "2"}),
        ("1 worker, 1 lane of all threads (the old layout)", 1, {"HOOK_LANES": "1"}),
    ]
    for name, workers, env in layouts:
        w = worker.measure(events, latency, workers, 0, env=env)
        rows += worker_rows(name, w)
    far = worker.measure(events, 0, 1, 0, endpoint_ms=100.0)  # every callback answered after 100 ms
    rows.append(
        (
            "1 worker, default lanes, the endpoint answering after 100 ms: images/s (of raw)",
            f"{far['rate']:.1f} ({far['rate'] / far['ceiling']:.2f} of {far['ceiling']:.1f})",
        )
    )
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
