"""The real thing: gunicorn -w 2 hook.wsgi:app as a process, over real sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hook.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, event, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(
    mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_MONGO_URI=mongo.uri,
        HOOK_MONGO_DB="gunicorn_test",
        HOOK_MAX_BODY="2000000",
        HOOK_LOG_LEVEL="DEBUG",
    )
    process = procs.gunicorn(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert procs.wait_http(f"{base}/tasks/", process).status_code == 200
        yield base, log
    finally:
        procs.stop(process)


def test_event_through_gunicorn(web: tuple[str, Path]) -> None:
    base, log = web
    answer = requests.post(f"{base}/tasks/{API_KEY}", json=event(3, seed=40), timeout=10)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task_id"]
    listed = requests.get(f"{base}/tasks/{API_KEY}", timeout=10).json()
    assert task_id in [t["id"] for t in listed["tasks"]]
    again = requests.post(f"{base}/tasks/{API_KEY}", json=event(3, seed=40), timeout=10).json()
    assert again["task_id"] == task_id and again["duplicate"]
    requests.post(f"{base}/tasks/wrong-key-0123456789abcdef", json=event(1), timeout=10)
    assert API_KEY not in log.read_text()  # not in gunicorn's log, not in ours


def test_chunked_body_is_read(web: tuple[str, Path]) -> None:
    base, _ = web
    body = json.dumps(event(2, seed=41)).encode()
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    answer = requests.post(f"{base}/tasks/{API_KEY}", data=chunks, timeout=10)
    assert answer.status_code == 200, answer.text


def test_chunked_body_over_the_limit_is_413(web: tuple[str, Path]) -> None:
    base, _ = web
    chunks = (b" " * 100_000 for _ in range(30))  # 3 MB, over the 2 MB limit
    answer = requests.post(f"{base}/tasks/{API_KEY}", data=chunks, timeout=10)
    assert answer.status_code == 413 and "HOOK_MAX_BODY" in answer.json()["error"]


def test_413_is_sent_before_the_body_is_read(web: tuple[str, Path]) -> None:
    base, _ = web
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**9}\r\n\r\n".encode()
        )  # promises a gigabyte and sends none of it
        reply = b""
        while chunk := sock.recv(65536):  # gunicorn answers, then closes the connection
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "over the limit of 2000000 bytes" in reply


def test_405_and_health(web: tuple[str, Path]) -> None:
    base, _ = web
    assert requests.put(f"{base}/tasks/{API_KEY}", timeout=5).status_code == 405
    assert requests.get(f"{base}/tasks/", timeout=5).json()["mongo"] == "up"


def test_missing_api_key_stops_gunicorn_with_a_clear_message(
    mongo: EmbeddedMongo, tmp_path: Path
) -> None:
    log = tmp_path / "gunicorn.log"
    process = procs.gunicorn(free_port(), procs.hook_env(HOOK_MONGO_URI=mongo.uri), log, workers=1)
    assert process.wait(30) != 0
    assert "HOOK_API_KEY is not set" in log.read_text()
    assert "Traceback" not in log.read_text()
