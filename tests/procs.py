"""Starting and stopping the project's real processes in tests, each by its own PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from hook.launcher import gunicorn_argv

ROOT = Path(__file__).resolve().parent.parent


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
    """Poll `url` until it answers (any status), failing early if `process` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
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
