"""The real thing: gunicorn -w 2 hook.wsgi:app as a process, over real sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hook.store.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, event
from tests.loopback import free_port
from tests.procs import Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn alone (no workers) on the session's MongoDB."""
    with Stack(
        tmp_path_factory.mktemp("gunicorn"),
        mongo=mongo,
        HOOK_MONGO_DB="gunicorn_test",
        HOOK_MAX_BODY="2000000",
        HOOK_BODY_TIMEOUT="1",
        HOOK_LOG_LEVEL="DEBUG",
    ) as stack:
        yield stack


def test_event_through_gunicorn(web: Stack) -> None:
    answer = web.post(event(3, seed=40))
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task_id"]
    listed = {t["id"]: t["status"] for t in requests.get(web.url, timeout=10).json()["tasks"]}
    assert listed.get(task_id) == "queued"  # listed as pending by default; no worker runs here
    again = web.post(event(3, seed=40)).json()
    assert again["task_id"] == task_id and again["duplicate"]
    requests.post(f"{web.base}/tasks/wrong-key-0123456789abcdef", json=event(1), timeout=10)
    assert API_KEY not in web.log("web")  # not in gunicorn's log, not in ours


def test_chunked_body_is_read(web: Stack) -> None:
    base = web.base
    body = json.dumps(event(2, seed=41)).encode()
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    answer = requests.post(f"{base}/tasks/{API_KEY}", data=chunks, timeout=10)
    assert answer.status_code == 200, answer.text


def test_chunked_body_over_the_limit_is_413(web: Stack) -> None:
    base = web.base
    chunks = (b" " * 100_000 for _ in range(30))  # 3 MB, over the 2 MB limit
    answer = requests.post(f"{base}/tasks/{API_KEY}", data=chunks, timeout=10)
    assert answer.status_code == 413 and "HOOK_MAX_BODY" in answer.json()["error"]


def test_413_is_sent_before_the_body_is_read(web: Stack) -> None:
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
        sock.sendall(
            f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**9}\r\n\r\n".encode()
        )  # promises a gigabyte and sends none of it
        received = b""
        while chunk := sock.recv(65536):  # gunicorn answers, then closes the connection
            received += chunk
    reply = received.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "over the limit of 2000000 bytes" in reply


def test_405_and_health(web: Stack) -> None:
    base = web.base
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


def raw_request(base: str, data: bytes, timeout: float = 10) -> str:
    """Send raw bytes, read the answer until the server closes the connection."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
    return reply.decode("latin-1")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"zz\r\nabc\r\n0\r\n\r\n", 400),
        (b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 408),
        (b"5\r\nab", 408),
    ],
    ids=["bad-size", "huge-size", "cut-off"],
)
def test_a_malformed_chunked_body_is_400_and_one_that_never_ends_408(
    web: Stack, body: bytes, status: int
) -> None:
    """A chunk shorter than its size (a huge one, or one cut off) is waited for until
    HOOK_BODY_TIMEOUT, like any body that stalls; a size that is no number is refused at once."""
    head = (
        f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    reply = raw_request(web.base, head + body)
    assert reply.startswith(f"HTTP/1.1 {status} "), reply[:200]
    assert "application/json" in reply and "Traceback" not in reply


def test_a_stalled_body_is_408_and_does_not_block_others(web: Stack) -> None:
    base, port = web.base, web.port
    stalled = []
    for _ in range(3):  # more stalled clients than gunicorn has worker processes
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            '\r\n{"callb'.encode()
        )
        stalled.append(sock)
    try:
        assert requests.get(f"{base}/tasks/", timeout=5).status_code == 200
        reply = b""
        while chunk := stalled[0].recv(65536):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in reply
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.fault
def test_slow_and_idle_clients_do_not_silence_the_web(web: Stack) -> None:
    """Slowloris: headers a byte at a time, and connections that send nothing at all."""
    base, port = web.base, web.port
    attackers = []
    for n in range(60):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n % 2:
            sock.sendall(f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nX-Pad: a".encode())
        attackers.append(sock)
    try:
        for _ in range(5):  # more attackers than gunicorn had threads before: still answered
            assert requests.get(f"{base}/tasks/", timeout=5).status_code == 200
            answer = requests.post(f"{base}/tasks/{API_KEY}", json=event(1, seed=43), timeout=5)
            assert answer.status_code == 200, answer.text
            attackers[1].sendall(b"a")  # one keeps trickling its headers
        started = time.monotonic()
        attackers[1].settimeout(15)
        while attackers[1].recv(4096):  # dropped: no request line and headers within 5 s
            pass
        assert time.monotonic() - started < 10
    finally:
        for sock in attackers:
            sock.close()


@pytest.mark.fault
def test_a_trickled_body_is_408_at_the_body_timeout_in_all(web: Stack) -> None:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    sock.sendall(
        f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
    )
    sock.settimeout(0.2)
    reply, started = b"", time.monotonic()
    try:
        for _ in range(100):  # a byte every 0.2 s never stalls for HOOK_BODY_TIMEOUT (1 s)...
            sock.sendall(b" ")
            try:
                reply += sock.recv(65536)
            except TimeoutError:
                continue
            if reply:
                break
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply  # ...but the body must arrive in 1 s in all
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /tasks/wrong-key-0123456789abcdef HTTP/1.1\r\nHost: x\r\n\r\n", b"403"),
        (
            (
                f"POST /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{{"
            ).encode(),
            b"413",
        ),
    ],
    ids=["403", "413 with the body unread"],
)
def test_an_error_answer_closes_its_connection(
    web: Stack, request_bytes: bytes, status: bytes
) -> None:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    try:
        sock.sendall(request_bytes)
        reply = b""
        while chunk := sock.recv(65536):  # ends: the server closed the connection
            reply += chunk
    finally:
        sock.close()
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 " + status + b" ") and b"connection: close" in head


def test_the_key_stays_out_of_gunicorns_own_log(web: Stack) -> None:
    base = web.base
    raw_request(
        base, f"GET /tasks/{API_KEY}?status=\xff HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1")
    )
    raw_request(base, f"GET /tasks/{API_KEY} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".encode())
    time.sleep(0.5)
    assert API_KEY not in web.log("web")


def test_the_key_is_compared_on_the_raw_path(web: Stack) -> None:
    base = web.base
    answer = requests.post(f"{base}/tasks/%ff%80{API_KEY}", json=event(1, seed=99), timeout=10)
    assert answer.status_code == 403
