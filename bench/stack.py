"""The server as the benchmarks run it (tests.procs.Stack, quieter), and the figures' helpers."""

from __future__ import annotations

import platform
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from tests import procs
from tests.factories import API_KEY

__all__ = ["API_KEY", "ROOT", "Stack", "cpu", "peak_rss_mb", "percentile", "rss_mb", "run_threads"]

ROOT = procs.ROOT


class Stack(procs.Stack):
    """The tests' harness: embedded nx-27017, gunicorn and workers on loopback, every process
    stopped by its PID on exit; here with its logs in a temporary directory, warnings only."""

    def __init__(self, *, web_workers: int = 2, mongo_uri: str | None = None, **env: str) -> None:
        """`mongo_uri`: any MongoDB (a replica set, Atlas) instead of an embedded nx-27017;
        the benchmark's database there is new and dropped at the end."""
        # Every named parameter given, so the settings can only go to procs.Stack's **env.
        settings = {"HOOK_LOG_LEVEL": "WARNING", **env}
        self.mongo_uri = mongo_uri
        if mongo_uri:
            settings |= {
                "HOOK_MONGO_URI": mongo_uri,
                "HOOK_MONGO_DB": f"bench_{uuid.uuid4().hex[:8]}",
            }
        super().__init__(None, mongo=None, mongo_dir=None, web_workers=web_workers, **settings)
        if mongo_uri:
            self.own_mongo = False  # not started, nor stopped, here

    @property
    def uri(self) -> str:
        return self.env["HOOK_MONGO_URI"]

    @property
    def db_name(self) -> str:
        return self.env.get("HOOK_MONGO_DB", "hook")

    @property
    def mongo_pid(self) -> int | None:
        """The embedded server's process, whose CPU the benchmarks count; None for another."""
        process = self.mongo.process if self.own_mongo else None
        return process.pid if process else None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.mongo_uri:  # the benchmark's own database goes
                client: MongoClient[dict[str, Any]] = MongoClient(self.mongo_uri)
                with client:
                    client.drop_database(self.db_name)


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
