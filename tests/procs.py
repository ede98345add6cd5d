"""The project's real processes, for tests and benchmarks: nx-27017, gunicorn serving
hook.wsgi:app and worker.py, each started with a clean environment and stopped by its own PID.

`Stack` is the whole server on loopback; the functions below it start and stop single ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import requests

from hook.cli.argv import gunicorn_argv, worker_argv
from hook.store.embedded import EmbeddedMongo
from tests.factories import API_KEY, ROOT, SIGNING_SECRET
from tests.loopback import free_port


class Stack:
    """A MongoDB, gunicorn on a free port and worker.py processes, all of one set of settings.

    The MongoDB is `mongo` if given (left running at the end), else an embedded nx-27017 the
    stack starts in `mongo_dir` (default `logs/mongo`) and stops. Each process writes its
    output to a file in `logs` (a temporary directory, removed at the end, if None), and its
    HOOK_DATA_DIR is `logs/data` (so its web rings only its own workers). `env` are HOOK_*
    settings for every process, over the stack's defaults; started by `start()` or `with`,
    everything is stopped by `close()`.
    """

    def __init__(
        self,
        logs: Path | None = None,
        *,
        mongo: EmbeddedMongo | None = None,
        mongo_dir: Path | None = None,
        web_workers: int = 2,
        **env: str,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if logs is None:
            self._tmp = tempfile.TemporaryDirectory()
            logs = Path(self._tmp.name)
        self.logs = logs
        self.own_mongo = mongo is None
        self.mongo = mongo or EmbeddedMongo(mongo_dir or self.logs / "mongo", free_port())
        defaults = {
            "HOOK_API_KEY": API_KEY,
            "HOOK_MONGO_URI": self.mongo.uri,
            "HOOK_CALLBACK_HOSTS": "127.0.0.1,camio.com",
            "HOOK_SIGNING_SECRET": SIGNING_SECRET,
            # its own wake-up sockets (hook.wakeup): parallel stacks never ring each other
            "HOOK_DATA_DIR": str(self.logs / "data"),
        }
        self.env = hook_env(**{**defaults, **env})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/tasks/{API_KEY}"  # where events are posted and listed
        self.argv = gunicorn_argv(f"127.0.0.1:{self.port}", web_workers)
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> Self:
        """Start the MongoDB (if the stack's own) and gunicorn; return once the web is healthy."""
        if self.own_mongo:
            self.mongo.start()
        self.web = start(self.argv, self.env, self.logs / "web.log")
        try:
            health = wait_http(f"{self.base}/tasks/", self.web)
            # a loaded machine: MongoDB may not be selected within a short HOOK_MONGO_TIMEOUT_MS
            # at first, which the health check rightly answers 503; it is up once it says 200
            deadline = time.monotonic() + 30
            while health.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
                health = wait_http(f"{self.base}/tasks/", self.web)
        except (AssertionError, requests.ConnectionError) as exc:
            raise AssertionError(f"{exc}; its log:\n{self.log('web')}") from None
        assert health.status_code == 200, health.text
        return self

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """One more worker.py, with `env` over the stack's settings."""
        return self.start_command(worker_argv(), env)

    def start_command(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """One more worker process of `argv` (worker.py, or a benchmark's stand-in)."""
        log = self.logs / f"worker{len(self.workers)}.log"
        process = start(argv, {**self.env, **env}, log)
        self.workers.append(process)
        return process

    def start_workers(
        self, count: int, threads: int = 0, argv: list[str] | None = None, **env: str
    ) -> None:
        """`count` workers of `threads` ONNX threads each (0: onnxruntime's default)."""
        for _ in range(count):
            self.start_command(argv or worker_argv(), {"HOOK_THREADS": str(threads), **env})

    def log(self, name: str) -> str:
        """A process's output so far: "web", or "worker0", "worker1"... in the order started."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def post(self, payload: Any) -> requests.Response:
        return requests.post(self.url, json=payload, timeout=20)

    def listing(self, status: str = "pending", limit: int = 1000) -> list[dict[str, Any]]:
        """The tasks in `status` (one, several comma-separated, or "pending"), as listed."""
        params: dict[str, str | int] = {"status": status, "limit": limit}
        answer = requests.get(self.url, params=params, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["tasks"]

    def task(self, task_id: str, status: str) -> dict[str, Any] | None:
        """The task as listed, if it is in `status`; None if it is not."""
        return next((t for t in self.listing(status) if t["id"] == task_id), None)

    def wait_status(self, task_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        """The task as listed once it is in `status`; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (found := self.task(task_id, status)) is None:
            assert time.monotonic() < deadline, f"task {task_id} not {status} in {timeout} s"
            time.sleep(0.1)
        return found

    def wait_listed(self, status: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The listing of `status` once it has at least `count` tasks (a worker records
        delivered tasks done in batches, half a second after); as it is after `timeout`."""
        deadline = time.monotonic() + timeout
        while len(listed := self.listing(status)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return listed

    def stop_workers(self, timeout: float = 30) -> None:
        """SIGTERM every worker (a warm stop), SIGKILL one that takes over `timeout` s."""
        for worker in self.workers:
            stop(worker, timeout=timeout)
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        if self.web is not None:
            stop(self.web)
        if self.own_mongo:
            self.mongo.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def hook_env(**env: str) -> dict[str, str]:
    """The test process's environment without any HOOK_* leaking in, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    return {**base, "PYTHONUNBUFFERED": "1", **env}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def gunicorn(
    port: int, env: dict[str, str], log: Path, workers: int = 2
) -> subprocess.Popen[bytes]:
    return start(gunicorn_argv(f"127.0.0.1:{port}", workers), env, log)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> requests.Response:
    """Poll `url` until it answers (any status), failing early if `process` dies. A slow first
    answer (a server still warming up on a loaded machine) is asked again, like a refusal."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            return requests.get(url, timeout=2)
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Signal the process and wait for it; SIGKILL it if it takes over `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def servers_for(data_dir: Path) -> list[int]:
    """PIDs of processes whose command line names `data_dir`: our nx-27017 servers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"nx_27017" in b" ".join(cmdline) and str(data_dir).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def children_of(pid: int) -> list[int]:
    """PIDs of the processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def hook_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m hook ARGS` from the checkout with only `env` for HOOK_* settings."""
    argv = [sys.executable, "-m", "hook", *args]
    return subprocess.run(
        argv, cwd=ROOT, text=True, capture_output=True, env=hook_env(**env), timeout=60, check=False
    )
