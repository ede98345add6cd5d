"""The server as the benchmarks run it (tests.procs.Stack, quieter), and the figures' helpers."""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from pathlib import Path

from tests import procs
from tests.factories import API_KEY

__all__ = ["API_KEY", "ROOT", "Stack", "cpu", "peak_rss_mb", "percentile", "rss_mb", "run_threads"]

ROOT = procs.ROOT


class Stack(procs.Stack):
    """The tests' harness: embedded nx-27017, gunicorn and workers on loopback, every process
    stopped by its PID on exit; here with its logs in a temporary directory, warnings only."""

    def __init__(self, *, web_workers: int = 2, **env: str) -> None:
        # Every named parameter given, so the settings can only go to procs.Stack's **env.
        settings = {"HOOK_LOG_LEVEL": "WARNING", **env}
        super().__init__(None, mongo=None, mongo_dir=None, web_workers=web_workers, **settings)


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and flags, to print beside figures (machines here differ)."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    name = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), ""
    )
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return name or platform.machine(), flags


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run_threads(target: Callable[[], None], count: int) -> None:
    """Run `count` threads of `target` and wait for them all: the benchmarks' clients."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
