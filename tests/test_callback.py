"""Delivery to a real receiver on 127.0.0.1: outcomes, redirects, and the SSRF guard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hook.callback import check_destination, post_labels
from hook.hosts import HostAllowList
from tests.factories import free_port
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


def test_redirect_to_another_host_is_not_followed(receiver: Receiver) -> None:
    receiver.script["/away"] = [302]
    receiver.headers["/away"] = {"Location": "http://169.254.169.254/latest/meta-data"}
    outcome = deliver(receiver, "/away")
    assert not outcome.delivered and outcome.permanent and "another host" in outcome.reason


def test_destination_is_checked_again_at_delivery() -> None:
    default = HostAllowList(("camio.com",))
    assert "not allowed" in check_destination("http://127.0.0.1:9/cb", default)
    # a wildcard entry that resolves into the local network is refused; an exact one is trusted
    wildcard = HostAllowList(("localhost",))
    assert check_destination("http://localhost:9/cb", wildcard) is None
    sub = HostAllowList(("localtest.invalid",))
    assert "not allowed" in check_destination("http://localhost:9/cb", sub)
    assert check_destination("http://127.0.0.1:9/cb", LOCAL) is None
