"""Delivery to a real receiver on 127.0.0.1: outcomes, redirects, and the SSRF guard."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import urllib3

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.post import (
    Verdict,
    check_destination,
    is_public,
    post_labels,
    retry_after,
    session,
    unreachable,
)
from tests.loopback import free_port, trickler
from tests.receiver import Receiver

LOCAL = HostAllowList(("127.0.0.1",))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """An unsigned receiver: these tests judge answers, not signatures (test_signing.py)."""
    server = Receiver()
    yield server
    server.close()


def deliver(receiver: Receiver, path: str, hosts: HostAllowList = LOCAL, timeout: float = 5):
    return post_labels(
        requests.Session(),
        receiver.url(path),
        '{"status":"success","labels":{}}',
        hosts=hosts,
        timeout=timeout,
    )


DELIVERED, RETRY, REFUSED = Verdict.DELIVERED, Verdict.RETRY, Verdict.REFUSED


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, DELIVERED),
        (204, DELIVERED),
        (500, RETRY),
        (503, RETRY),
        (429, RETRY),
        (408, RETRY),
        (425, RETRY),
        (400, REFUSED),
        (404, REFUSED),
        (410, REFUSED),
    ],
)
def test_outcome_by_status(receiver: Receiver, status: int, verdict: Verdict) -> None:
    path = f"/status/{status}"
    receiver.script[path] = [status]
    outcome = deliver(receiver, path)
    assert outcome.verdict is verdict
    assert str(status) in outcome.reason
    assert receiver.bodies(path)[-1] == {"status": "success", "labels": {}}


def test_timeout_and_refused_connection_are_retried(receiver: Receiver) -> None:
    receiver.delay["/slow"] = 1.5
    slow = deliver(receiver, "/slow", timeout=0.3)
    assert slow.verdict is RETRY and "timed out" in slow.reason
    port = free_port()
    closed = post_labels(
        requests.Session(), f"http://127.0.0.1:{port}/x", "{}", hosts=LOCAL, timeout=2
    )
    assert closed.verdict is RETRY
    assert closed.reason == f"callback unreachable: connection refused by 127.0.0.1:{port}"


def test_redirect_to_the_same_host_is_followed(receiver: Receiver) -> None:
    receiver.script["/moved"] = [307]
    receiver.headers["/moved"] = {"Location": "/new-home"}
    outcome = deliver(receiver, "/moved")
    assert outcome.verdict is DELIVERED and receiver.bodies("/new-home")


def test_elapsed_covers_the_whole_attempt_redirects_included(receiver: Receiver) -> None:
    receiver.script["/slow-move"] = [307]
    receiver.headers["/slow-move"] = {"Location": "/slow-home"}
    receiver.delay["/slow-move"] = receiver.delay["/slow-home"] = 0.3
    started = time.monotonic()
    outcome = deliver(receiver, "/slow-move")
    assert outcome.verdict is DELIVERED
    assert 0.6 <= outcome.elapsed <= time.monotonic() - started
    refused = deliver(receiver, "/x", hosts=HostAllowList(("camio.com",)))
    assert refused.verdict is REFUSED and 0 <= refused.elapsed < 1  # nothing sent, still timed


def test_a_redirect_loop_is_refused_after_the_limit(receiver: Receiver) -> None:
    receiver.script["/loop"] = [307] * 10
    receiver.headers["/loop"] = {"Location": "/loop"}
    outcome = deliver(receiver, "/loop")
    assert outcome.verdict is REFUSED and "redirected more than 3 times" in outcome.reason
    assert len(receiver.bodies("/loop")) == 4  # the first POST and three redirects followed


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
    assert outcome.verdict is REFUSED and "another origin" in outcome.reason


def test_destination_is_checked_again_at_delivery() -> None:
    default = HostAllowList(("camio.com",))
    refused = check_destination("http://127.0.0.1:9/cb", default)
    assert refused is not None and refused.verdict is REFUSED and "not allowed" in refused.reason
    # an exactly listed name is trusted wherever it points; a subdomain must resolve publicly
    assert check_destination("http://localhost:9/cb", HostAllowList(("localhost",))) is None
    sub = check_destination("http://a.localhost:9/cb", HostAllowList(("localhost",)))
    assert sub is not None and sub.verdict is not DELIVERED
    assert check_destination("http://127.0.0.1:9/cb", LOCAL) is None
    one_port = HostAllowList(("127.0.0.1:8101",))
    assert check_destination("http://127.0.0.1:8101/cb", one_port) is None
    other = check_destination("http://127.0.0.1:9/cb", one_port)
    assert other is not None and other.verdict is REFUSED and "not allowed" in other.reason
    unresolvable = check_destination("http://x.camio.invalid/cb", HostAllowList(("camio.invalid",)))
    assert unresolvable is not None and unresolvable.verdict is RETRY  # DNS trouble: try later


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
    assert outcome is not None and outcome.verdict is REFUSED


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::808:808", True),
        ("::1", False),
        ("fd00::1", False),
    ],
)
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
        outcome = post_labels(
            session(), f"http://127.0.0.1:{port}/drip", "{}", hosts=LOCAL, timeout=1.0
        )
    finally:
        server.close()
    assert time.monotonic() - started < 2.5
    assert outcome.verdict is RETRY and "timed out" in outcome.reason


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # the status line trickles
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 60 + b"\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["status line", "headers"],
)
def test_a_trickled_status_line_or_headers_end_at_the_timeout(answer: bytes) -> None:
    """The deadline bounds the whole exchange: a receiver dripping its status line or its
    headers (a byte every 0.1 s, 5-10 s in all) is cut at the 1 s timeout, never counted
    delivered, and the next POST on the same session goes through."""
    url, server = trickler(answer, 0.1)
    http = session()
    started = time.monotonic()
    try:
        outcome = post_labels(http, url, "{}", hosts=LOCAL, timeout=1.0)
    finally:
        server.close()
    assert time.monotonic() - started < 2.0
    assert outcome.verdict is RETRY and "timed out after 1 s" in outcome.reason, outcome
    after = post_labels(
        http,
        raw_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        "{}",
        hosts=LOCAL,
        timeout=5,
    )
    assert after.verdict is DELIVERED


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


def reason_for(url: str) -> str:
    with pytest.raises(requests.ConnectionError) as raised:
        requests.post(url, data="{}", timeout=5)
    return unreachable(raised.value, url)


def test_an_unreachable_callback_is_told_in_a_few_words() -> None:
    """The root cause, not requests' 400-character chain of wrapped exceptions."""
    url = raw_answer(b"")  # reads the request and closes without a word
    assert reason_for(url) == f"{url[7:-3]} closed the connection without answering"
    reset = requests.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.",
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        )
    )
    assert unreachable(reset, "https://x.camio.com/cb") == "connection reset by x.camio.com:443"
    assert reason_for("http://127.0.0.1:9/cb") == "connection refused by 127.0.0.1:9"
    with socket.socket(socket.AF_INET6) as probe:
        if probe.connect_ex(("::1", 9)) == errno.ECONNREFUSED:  # IPv6 loopback works here
            assert reason_for("http://[::1]:9/cb") == "connection refused by [::1]:9"


@pytest.mark.parametrize(
    "location", ["http://[::1/next", "http://127.0.0.1:99999/next", "http://[zz::1]/x"]
)
def test_a_malformed_redirect_is_refused_with_a_reason(location: str) -> None:
    answer = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    outcome = send(raw_answer(answer.encode()))
    assert outcome.verdict is REFUSED
    assert "malformed Location" in outcome.reason or "another origin" in outcome.reason


def test_an_interim_1xx_alone_is_tried_again_not_refused() -> None:
    answer = b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    outcome = send(raw_answer(answer))
    assert outcome.verdict is RETRY
    assert "interim 102" in outcome.reason


def test_a_200_whose_answer_is_cut_short_is_delivered() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
    outcome = send(raw_answer(answer))
    assert outcome.verdict is DELIVERED and "200" in outcome.reason


@pytest.mark.parametrize("charset", ["x-no-such-charset", "rot13", "idna", "utf-16", ""])
def test_the_verdict_never_depends_on_decoding_the_answer(charset: str) -> None:
    """A 200 is delivered, a 404 refused with its text, whatever charset the answer claims:
    an unknown one, a codec that is no text encoding, or one that cannot decode it."""
    for status, verdict in ((200, DELIVERED), (404, REFUSED)):
        answer = (
            f"HTTP/1.1 {status} X\r\nContent-Type: text/plain; charset={charset}\r\n"
            "Content-Length: 7\r\n\r\nno hook"
        ).encode()
        outcome = send(raw_answer(answer))
        assert outcome.verdict is verdict and str(status) in outcome.reason, outcome


def test_429_and_503_pass_on_their_retry_after() -> None:
    for status in (429, 503):
        answer = f"HTTP/1.1 {status} Busy\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"
        outcome = send(raw_answer(answer.encode()))
        assert outcome.verdict is RETRY and outcome.retry_after == 120
    plain = send(raw_answer(b"HTTP/1.1 500 Oops\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"))
    assert plain.verdict is RETRY and plain.retry_after is None  # only 429, 503 define a wait


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    assert retry_after("30", now) == 30
    assert retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now) == 30  # 1_800_000_030 in epoch s
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now) == 0.0  # in the past: no wait


def test_the_headers_given_are_sent_on_every_post_of_a_delivery_redirects_too(
    receiver: Receiver,
) -> None:
    receiver.script["/signed/moved"] = [308]
    receiver.headers["/signed/moved"] = {"Location": "/signed/home"}
    body = '{"status":"success","labels":{"2017-05-05T01:31:13Z":{}}}'
    sent = {
        "webhook-id": "6b042f477050c593dd19606a",
        "X-Hook-Attempt": "2",
        "Authorization": "Bearer t",
    }
    outcome = post_labels(
        requests.Session(),
        receiver.url("/signed/moved"),
        body,
        hosts=LOCAL,
        timeout=5,
        headers=sent,
    )
    assert outcome.verdict is DELIVERED
    posts = receiver.requests_to("/signed/moved") + receiver.requests_to("/signed/home")
    assert len(posts) == 2
    for post in posts:
        assert post.body == body.encode()  # the bytes as given, nothing re-serialized
        assert {name: post.headers.get(name) for name in sent} == sent
        assert post.headers["Content-Type"] == "application/json"
