"""All the figures in one table: `python -m bench` (or bench/run.py), for the README.

Ingest events/s and p50/p99 at 1/8/32 clients against a bare pymongo loop; worker images/s
over raw onnxruntime images/s (default: 1 worker with all cores; and 2 workers of 1 thread);
POST-to-callback latency on an idle system; worker peak memory; model load time; label
accuracy on the labeled photo set (bench/accuracy.py). Every figure
of a row comes from the same run; ratios are the figures to compare between machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

import onnxruntime

from bench import accuracy, ingest, worker
from bench.stack import ROOT, cpu

LOAD = """
import time
started = time.perf_counter()
from hook import ensemble
from hook.settings import Settings
detector = ensemble.from_settings(Settings.from_env({}, require_api_key=False))
print(detector.load_seconds, time.perf_counter() - started)
"""


def model_load() -> tuple[float, float]:
    """(session + warm-up seconds, with imports seconds) in a fresh process."""
    out = subprocess.run([sys.executable, "-c", LOAD], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({cpu()[0]}), Python {platform.python_version()}, "
        f"onnxruntime {onnxruntime.__version__}, embedded nx-27017"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    args = parser.parse_args()
    seconds, events, latency = (3.0, 100, 15) if args.quick else (8.0, 300, 60)
    rows: list[tuple[str, str]] = []
    ing = ingest.measure(seconds)
    for clients, r in ing["rows"].items():
        rows.append((f"ingest, {clients} client(s): events/s (of the pymongo loop), p50 / p99",
                     f"{r['rate']:.0f} ({r['rate'] / ing['ceiling']:.2f}), "
                     f"{r['p50']:.0f} / {r['p99']:.0f} ms"))  # fmt: skip
    rows.append(
        ("ingest reference: one bare pymongo enqueue loop, events/s", f"{ing['ceiling']:.0f}")
    )
    for workers, threads in ((1, 0), (2, 1)):
        w = worker.measure(events, latency, workers, threads)
        name = f"{workers} worker(s) x {threads or 'all'} thread(s)"
        rows.append(
            (
                f"{name}: images/s (of raw onnxruntime images/s)",
                f"{w['rate']:.1f} ({w['rate'] / w['ceiling']:.2f} of {w['ceiling']:.1f})",
            )
        )
        rows.append(
            (
                f"{name}: POST-to-callback latency p50 / p99, idle",
                f"{w['p50']:.0f} / {w['p99']:.0f} ms",
            )
        )
        rows.append((f"{name}: peak RSS per worker process", f"{w['peak_rss_mb']:.0f} MB"))
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
