"""When `run` says "hook is up": the web answers (TCP or unix socket) and every worker it started
has beaten since it started, on this host."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from pymongo.database import Database

from hook.cli.readiness import Readiness, describe, local_address, web_answers, workers_waiting
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.records import Heartbeat
from tests.loopback import free_port, serve

HOST = socket.gethostname()


def hello(environ: dict, start_response) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    return [b'{"ok": false, "mongo": "down"}']  # any answer means gunicorn is bound and serving


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_web(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "web.sock"
    server = _UnixHTTPServer(str(path), _Answer)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"unix:{path}"
    server.shutdown()
    server.server_close()


def test_addresses_to_reach_a_bind_from_this_machine() -> None:
    assert local_address("0.0.0.0:8000") == "127.0.0.1:8000"
    assert local_address("[::]:8443") == "[::1]:8443"
    assert local_address("10.1.2.3:80") == "10.1.2.3:80"
    assert describe("0.0.0.0:8000", tls=True) == "https://127.0.0.1:8000"
    assert describe("unix:/run/hook.sock", tls=False) == "unix:/run/hook.sock"


def test_the_web_answers_over_tcp_or_a_unix_socket(unix_web: str, tmp_path: Path) -> None:
    with serve(hello) as base:
        assert web_answers(base.removeprefix("http://"), tls=False)
    assert web_answers(unix_web, tls=False)
    assert not web_answers(f"127.0.0.1:{free_port()}", tls=False)
    assert not web_answers(f"unix:{tmp_path / 'nothing.sock'}", tls=False)


def heartbeat(host: str, pid: int, seen_at: float) -> Heartbeat:
    return Heartbeat(
        worker=f"{host}:{pid}:x",
        host=host,
        pid=pid,
        state="running",
        started_at=seen_at,
        every=10.0,
        done=0,
        in_flight=0,
        seen_at=seen_at,
    )


def facts(worker: str, pid: int) -> Heartbeat:
    """What worker.py records in a heartbeat (the store adds seen_at)."""
    return Heartbeat(
        worker=worker,
        host=HOST,
        pid=pid,
        state="running",
        started_at=time.time(),
        every=10.0,
        done=0,
        in_flight=0,
    )


def test_a_worker_counts_once_it_beat_on_this_host_since_it_started() -> None:
    started = {101: 1000.0, 102: 1000.0, 103: 1000.0}
    beats = [
        heartbeat(HOST, 101, 1000.5),  # beat since it started: ready
        heartbeat(HOST, 102, 999.0),  # an earlier process with that pid
        heartbeat("elsewhere", 103, 1001.0),  # another machine's pid 103
    ]
    assert workers_waiting(beats, started, HOST) == [102, 103]
    assert workers_waiting([], {}, HOST) == []


def test_readiness_waits_for_the_web_then_for_each_worker(
    mongo: EmbeddedMongo, db: Database, db_name: str
) -> None:
    store = TaskStore(db)
    since = time.time()
    workers = {"worker 1": (4242, since), "worker 2": (4343, since)}
    with serve(hello) as base:
        ready = Readiness(base.removeprefix("http://"), False, mongo.uri, db_name, host=HOST)
        missing = Readiness(f"127.0.0.1:{free_port()}", False, mongo.uri, db_name, host=HOST)
        try:
            assert missing.waiting_for(workers) == [f"the web on http://{missing.bind}"]
            assert ready.waiting_for(workers) == [
                "worker 1 (pid 4242) to load its model",
                "worker 2 (pid 4343) to load its model",
            ]
            store.beat(facts(f"{HOST}:4242:a", 4242))
            assert ready.waiting_for(workers) == ["worker 2 (pid 4343) to load its model"]
            store.beat(facts(f"{HOST}:4343:b", 4343))
            assert ready.waiting_for(workers) == []
        finally:
            ready.close()
            missing.close()


def test_readiness_with_mongodb_down_is_waiting_not_an_error() -> None:
    with serve(hello) as base:
        ready = Readiness(
            base.removeprefix("http://"), False, f"mongodb://127.0.0.1:{free_port()}", "hook"
        )
        try:
            started = time.monotonic()
            assert ready.waiting_for({"worker 1": (1, 0.0)}) == ["MongoDB"]
            assert time.monotonic() - started < 5  # the launcher's loop is not held up long
        finally:
            ready.close()
