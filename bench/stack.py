"""The server as the benchmarks run it: embedded nx-27017, gunicorn and workers, on loopback."""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hook.embedded import EmbeddedMongo  # noqa: E402
from hook.launcher import gunicorn_argv, worker_argv  # noqa: E402
from tests.factories import free_port  # noqa: E402

API_KEY = "bench-key-0123456789abcdef"


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


class Stack:
    """Started on enter, every process stopped (by PID) on exit."""

    def __init__(self, *, web_workers: int = 2, **env: str) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.mongo = EmbeddedMongo(Path(self.tmp.name) / "mongo", free_port())
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/tasks/{API_KEY}"
        self.web_workers = web_workers
        self.env = {"PATH": "/usr/bin:/bin", "HOOK_API_KEY": API_KEY, "HOOK_LOG_LEVEL": "WARNING",
                    "HOOK_CALLBACK_HOSTS": "127.0.0.1,camio.com", **env}  # fmt: skip
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Stack:
        self.mongo.start()
        self.env["HOOK_MONGO_URI"] = self.mongo.uri
        self.argv = gunicorn_argv(f"127.0.0.1:{self.port}", self.web_workers)
        self.web = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.base}/tasks/", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not come up")
            time.sleep(0.1)

    def start_workers(self, count: int, threads: int = 0) -> None:
        env = {**self.env, "HOOK_THREADS": str(threads)}
        self.workers += [subprocess.Popen(worker_argv(), env=env, cwd=ROOT) for _ in range(count)]

    def __exit__(self, *exc: object) -> None:
        for proc in [*self.workers, self.web]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.web]:
            if proc is not None:
                proc.wait(60)
        self.mongo.stop()
        self.tmp.cleanup()
