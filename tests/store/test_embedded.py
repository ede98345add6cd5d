"""The embedded default: HOOK_MONGO_URI unset starts one nx-27017 per data dir, however many ask."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from hook.errors import ConfigError
from hook.store.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, event
from tests.loopback import free_port
from tests.procs import servers_for

pytestmark = pytest.mark.slow


def kill_servers(data_dir: Path) -> None:
    for pid in servers_for(data_dir):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while servers_for(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)


def _ensure(
    data_dir: str, port: int, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue
) -> None:
    start.wait()
    out.put(EmbeddedMongo(Path(data_dir), port).ensure_running())


def test_concurrent_ensure_running_starts_exactly_one_server(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "mongo", free_port()
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_ensure, args=(str(data_dir), port, start, out)) for _ in range(4)
    ]
    try:
        for w in workers:
            w.start()
        start.set()
        started = [out.get(timeout=60) for _ in workers]
        for w in workers:
            w.join(10)
        assert sorted(started) == [False, False, False, True]
        assert len(servers_for(data_dir)) == 1
        assert EmbeddedMongo(data_dir, port).answers()
    finally:
        kill_servers(data_dir)


def test_gunicorn_workers_share_one_embedded_server(tmp_path: Path) -> None:
    data_dir, web_port = tmp_path / "data", free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY, HOOK_DATA_DIR=str(data_dir), HOOK_EMBEDDED_PORT=str(free_port())
    )
    process = procs.gunicorn(web_port, env, tmp_path / "gunicorn.log", workers=3)
    base = f"http://127.0.0.1:{web_port}"
    try:
        assert procs.wait_http(f"{base}/tasks/", process).json()["mongo"] == "up"
        ids = {
            requests.post(f"{base}/tasks/{API_KEY}", json=event(1, seed=s), timeout=10).json()[
                "task_id"
            ]
            for s in range(6)
        }
        assert len(ids) == 6
        assert len(servers_for(data_dir / "mongo")) == 1
        assert (data_dir / "mongo" / "hook.db").exists()
    finally:
        procs.stop(process)
        kill_servers(data_dir / "mongo")


def test_another_data_dirs_server_on_the_port_is_not_adopted(tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedMongo(tmp_path / "one", port)
    first.start()
    try:
        assert first.ensure_running() is False  # ours: adopted
        with pytest.raises(ConfigError, match="not the embedded MongoDB of"):
            EmbeddedMongo(tmp_path / "two", port).ensure_running()
    finally:
        first.stop()
