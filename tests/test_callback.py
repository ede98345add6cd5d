"""Delivery to a real receiver on 127.0.0.1: outcomes, redirects, and the SSRF guard."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from hook.callback import check_destination, is_public, post_labels, retry_after, session
from hook.hosts import HostAllowList
from tests.loopback import free_port
from tests.receiver import Receiver

LOCAL = HostAllowList(("127.0.0.1",))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def deliver(receiver: Receiver, path: str, hosts: HostAllowList = LOCAL, timeout: float = 5):
    return post_labels(requests.Session(), receiver.url(path), '{"status":"success","labels":{}}',
                       hosts=hosts, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "delivered", "permanent"),
    [(200, True, False), (204, True, False), (500, False, False), (503, False, False),
     (429, False, False), (408, False, False), (400, False, True), (404, False, True),
     (410, False, True)],
)  # fmt: skip
def test_outcome_by_status(
    receiver: Receiver, status: int, delivered: bool, permanent: bool
) -> None:
    path = f"/status/{status}"
    receiver.script[path] = [status]
    outcome = deliver(receiver, path)
    assert (outcome.delivered, outcome.permanent) == (delivered, permanent)
    assert str(status) in outcome.reason
    assert receiver.bodies(path)[-1] == {"status": "success", "labels": {}}


def test_timeout_and_refused_connection_are_retried(receiver: Receiver) -> None:
    receiver.delay["/slow"] = 1.5
    slow = deliver(receiver, "/slow", timeout=0.3)
    assert not slow.delivered and not slow.permanent and "timed out" in slow.reason
    closed = post_labels(requests.Session(), f"http://127.0.0.1:{free_port()}/x", "{}",
                         hosts=LOCAL, timeout=2)  # fmt: skip
    assert not closed.delivered and not closed.permanent and "unreachable" in closed.reason


def test_redirect_to_the_same_host_is_followed(receiver: Receiver) -> None:
    receiver.script["/moved"] = [307]
    receiver.headers["/moved"] = {"Location": "/new-home"}
    outcome = deliver(receiver, "/moved")
    assert outcome.delivered and receiver.bodies("/new-home")


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/same-host-other-scheme",
        "http://127.0.0.1:9/same-host-other-port",
    ],
)
def test_redirect_to_another_origin_is_not_followed(receiver: Receiver, location: str) -> None:
    receiver.script["/away"] = [302]
    receiver.headers["/away"] = {"Location": location}
    outcome = deliver(receiver, "/away")
    assert not outcome.delivered and outcome.permanent and "another origin" in outcome.reason


def test_destination_is_checked_again_at_delivery() -> None:
    default = HostAllowList(("camio.com",))
    assert "not allowed" in check_destination("http://127.0.0.1:9/cb", default).reason
    # an exactly listed name is trusted wherever it points; a subdomain must resolve publicly
    assert check_destination("http://localhost:9/cb", HostAllowList(("localhost",))) is None
    sub = check_destination("http://a.localhost:9/cb", HostAllowList(("localhost",)))
    assert sub is not None and not sub.delivered
    assert check_destination("http://127.0.0.1:9/cb", LOCAL) is None
    one_port = HostAllowList(("127.0.0.1:8101",))
    assert check_destination("http://127.0.0.1:8101/cb", one_port) is None
    other = check_destination("http://127.0.0.1:9/cb", one_port)
    assert other is not None and other.permanent and "not allowed" in other.reason
    unresolvable = check_destination("http://x.camio.invalid/cb", HostAllowList(("camio.invalid",)))
    assert unresolvable is not None and not unresolvable.permanent  # DNS trouble: try later


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\.camio.com/internal",
        "http://169.254.169.254\\.camio.com/latest",
        "http://127.0.0.1 .camio.com/",
        "http://x_y.camio.com/",
        "http://[::1]/cb",
    ],
)
def test_parser_confusion_cannot_reach_the_local_network(url: str) -> None:
    outcome = check_destination(url, HostAllowList(("camio.com",)))
    assert outcome is not None and outcome.permanent and not outcome.delivered


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("127.0.0.1", False), ("10.1.2.3", False), ("169.254.169.254", False),
     ("::ffff:127.0.0.1", False), ("64:ff9b::7f00:1", False), ("64:ff9b::808:808", True),
     ("::1", False), ("fd00::1", False)],
)  # fmt: skip
def test_is_public_sees_through_mapped_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_trickling_answer_is_cut_at_the_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def drip() -> None:  # headers at once, then the body a byte every 0.3 s
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(20):
            time.sleep(0.3)
            try:
                conn.sendall(b"x")
            except OSError:
                break
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    try:
        outcome = post_labels(session(), f"http://127.0.0.1:{port}/drip", "{}", hosts=LOCAL,
                              timeout=1.0)  # fmt: skip
    finally:
        server.close()
    assert time.monotonic() - started < 2.5
    assert not outcome.delivered and not outcome.permanent and "timed out" in outcome.reason


def raw_answer(answer: bytes) -> str:
    """A one-shot HTTP server on 127.0.0.1 that answers `answer` verbatim and hangs up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve_once() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(answer)
        conn.close()
        server.close()

    threading.Thread(target=serve_once, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/cb"


def send(url: str):
    return post_labels(session(), url, "{}", hosts=LOCAL, timeout=5)


@pytest.mark.parametrize(
    "location", ["http://[::1/next", "http://127.0.0.1:99999/next", "http://[zz::1]/x"]
)
def test_a_malformed_redirect_is_refused_with_a_reason(location: str) -> None:
    answer = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    outcome = send(raw_answer(answer.encode()))
    assert not outcome.delivered and outcome.permanent
    assert "malformed Location" in outcome.reason or "another origin" in outcome.reason


def test_an_interim_1xx_alone_is_tried_again_not_refused() -> None:
    answer = b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    outcome = send(raw_answer(answer))
    assert not outcome.delivered and not outcome.permanent
    assert "interim 102" in outcome.reason


def test_a_200_whose_answer_is_cut_short_is_delivered() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
    outcome = send(raw_answer(answer))
    assert outcome.delivered and "200" in outcome.reason


def test_429_and_503_pass_on_their_retry_after() -> None:
    for status in (429, 503):
        answer = f"HTTP/1.1 {status} Busy\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"
        outcome = send(raw_answer(answer.encode()))
        assert not outcome.permanent and outcome.retry_after == 120
    plain = send(raw_answer(b"HTTP/1.1 500 Oops\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"))
    assert plain.retry_after is None  # only 429 and 503 define it as a wait


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    assert retry_after("30", now) == 30
    assert retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now) == 30  # 1_800_000_030 in epoch s
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now) == 0.0  # in the past: no wait
