"""Failure reports end to end, all real processes: nx-27017, gunicorn, worker.py, and a receiver
on 127.0.0.1 that checks every POST's signature with the official Standard Webhooks library
(an unsigned one is answered 401), standing in for both Camio and the operator's failure URL."""

from __future__ import annotations

import base64
import itertools
import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.factories import bad_pngs, image_bytes
from tests.procs import Stack
from tests.receiver import Receiver, Request

pytestmark = pytest.mark.slow
DB = "reports_e2e"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STAMP = "2017-05-05T01:31:13Z"


@pytest.fixture(scope="module")
def signed() -> Iterator[Receiver]:
    server = Receiver(secrets=[SECRET])
    yield server
    server.close()


@pytest.fixture(scope="module")
def web(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn for the whole module; each test starts the workers it wants."""
    with Stack(
        tmp_path_factory.mktemp("reports"),
        mongo=mongo,
        HOOK_MONGO_DB=DB,
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_RETRY_BASE_SECONDS="0.3",
        HOOK_SIGNING_SECRET=SECRET,
    ) as running:
        yield running


@pytest.fixture
def where() -> tuple[str, str]:
    """This test's (failure URL path, callback path)."""
    tag = uuid.uuid4().hex
    return f"/failures/{tag}", f"/cb/{tag}"


def reporting(signed: Receiver, path: str, **env: str) -> dict[str, str]:
    """A worker's settings reporting to `path` on the receiver."""
    return {"HOOK_FAILURE_URL": signed.url(path), **env}


def payload(signed: Receiver, path: str, image: bytes) -> dict[str, Any]:
    """A one-image event from camera "porch" calling back `path`."""
    image_b64 = base64.b64encode(image).decode()
    return {
        "callback_url": signed.url(path),
        "camera": "porch",
        "user_id": "u1",
        "images": [{"timestamp": STAMP, "image_b64": image_b64}],
    }


def send(stack: Stack, event: dict[str, Any]) -> str:
    answer = stack.post(event)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["task_id"])


def reports(signed: Receiver, path: str, task_id: str, count: int = 1) -> list[Request]:
    """The first `count` reports of `task_id` POSTed to `path`, each signature verified."""
    deadline = time.monotonic() + 30
    while (
        len(
            found := [
                r for r in signed.requests_to(path) if json.loads(r.body).get("task_id") == task_id
            ]
        )
        < count
    ):
        assert time.monotonic() < deadline, f"{len(found)} of {count} reports of {task_id}"
        time.sleep(0.05)
    assert all(r.verified_by == 0 for r in found)
    return found


def report_state(stack: Stack, task_id: str, state: str) -> dict[str, Any]:
    """The failed task as listed once its report is in `state`."""
    deadline = time.monotonic() + 30
    while True:
        task = stack.wait_status(task_id, "failed")
        if task["report"] is not None and task["report"]["state"] == state:
            return task
        assert time.monotonic() < deadline, f"report of {task_id}: {task['report']}"
        time.sleep(0.1)


def test_a_refusal_is_reported_to_the_failure_url_and_the_callback(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    signed.script[cb_path] = [404]
    stack.start_worker(**reporting(signed, fail_path, HOOK_FAILURE_TO_CALLBACK="1"))
    event = payload(signed, cb_path, image_bytes(seed=1))
    task_id = send(stack, event)
    (report,) = reports(signed, fail_path, task_id)
    body = json.loads(report.body)
    failed = report_state(stack, task_id, "sent")
    assert body == {
        "status": "failure",
        "task_id": task_id,
        "reason": failed["last_error"],
        "attempts": 1,
        "camera": "porch",
        "user_id": "u1",
        "callback_url": signed.url(cb_path),
        "timestamps": [STAMP],
        "failed_at": failed["finished_at"],
    }
    assert body["reason"].startswith("callback answered 404")
    labels, to_callback = signed.wait_for(cb_path, 2)
    assert labels["status"] == "success"
    assert to_callback == {"status": "failure", "reason": body["reason"]}
    assert report.headers["webhook-id"] == signed.requests_to(cb_path)[1].headers["webhook-id"]
    assert failed["report"]["delivered"] == ["failure_url", "callback_url"]
    assert failed["report"]["attempts"] == 1 and failed["report"]["last_error"] is None
    # the same event sent again: no longer failed, so it owes no report
    stack.stop_workers()
    assert send(stack, event) == task_id
    queued = stack.wait_status(task_id, "queued")
    assert queued["report"] is None and queued["last_error"] is None


def test_attempts_used_up_are_reported(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    signed.script[cb_path] = [503, 503]
    stack.start_worker(**reporting(signed, fail_path, HOOK_MAX_ATTEMPTS="2"))
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=2)))
    (report,) = reports(signed, fail_path, task_id)
    body = json.loads(report.body)
    assert body["attempts"] == 2 and body["reason"].startswith("gave up after 2 attempts")
    report_state(stack, task_id, "sent")


def test_a_bad_image_is_reported(stack: Stack, signed: Receiver, where: tuple[str, str]) -> None:
    fail_path, cb_path = where
    stack.start_worker(**reporting(signed, fail_path))
    task_id = send(stack, payload(signed, cb_path, bad_pngs()["truncated png"]))
    (report,) = reports(signed, fail_path, task_id)
    assert json.loads(report.body)["reason"].startswith(f"image 0 (timestamp {STAMP})")
    assert signed.requests_to(cb_path) == []  # nothing to the callback unless asked


def test_missing_images_are_reported(
    stack: Stack, signed: Receiver, store: TaskStore, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=3)))
    store.images.delete_many({"task_id": task_id})  # as if an operator removed them
    stack.start_worker(**reporting(signed, fail_path))
    (report,) = reports(signed, fail_path, task_id)
    assert json.loads(report.body)["reason"] == "1 of 1 images missing"


def test_a_lease_that_ran_out_on_the_last_attempt_is_reported(
    stack: Stack, signed: Receiver, store: TaskStore, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=4)))
    dead = store.claim("dead-worker#1", 1)  # a worker that dies at once, on its last attempt
    assert dead is not None and dead.id == task_id
    stack.start_worker(
        **reporting(signed, fail_path, HOOK_MAX_ATTEMPTS="1", HOOK_LEASE_SECONDS="2")
    )
    (report,) = reports(signed, fail_path, task_id)
    body = json.loads(report.body)
    assert body["reason"] == "lease expired on attempt 1 of 1: the worker died or hung"
    assert body["attempts"] == 1


def test_an_undeliverable_report_is_retried_then_kept_with_the_task(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    signed.script[cb_path] = [404]
    signed.script[fail_path] = [503, 503, 503]
    stack.start_worker(**reporting(signed, fail_path, HOOK_REPORT_ATTEMPTS="3"))
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=5)))
    reports(signed, fail_path, task_id, 3)
    failed = report_state(stack, task_id, "undeliverable")
    arrivals = [at for path, at in signed.arrivals if path == fail_path]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.3  # half of 0.3 x 2^(n-1) at least
    assert failed["report"]["attempts"] == 3
    assert failed["report"]["last_error"].startswith(
        "failure_url: gave up after 3 attempts; last: callback answered 503"
    )
    time.sleep(1.5)
    assert len(signed.requests_to(fail_path)) == 3  # never retried forever
    result = requests.get(f"{stack.url}/{task_id}", timeout=10).json()  # the results API
    assert result["report"] == failed["report"]


def test_a_report_is_not_lost_with_a_worker_killed_mid_report(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    signed.script[cb_path] = [404]
    signed.delay[fail_path] = 2.5  # the first worker dies while waiting for this answer
    quick = reporting(signed, fail_path, HOOK_LEASE_SECONDS="2", HOOK_CALLBACK_TIMEOUT="3")
    first = stack.start_worker(**quick)
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=6)))
    reports(signed, fail_path, task_id)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    signed.delay[fail_path] = 0
    stack.start_worker(**quick)
    again = reports(signed, fail_path, task_id, 2)  # after the report's lease: 2 + 2 x 3 s
    assert again[0].body == again[1].body
    assert again[0].headers["webhook-id"] == again[1].headers["webhook-id"]
    failed = report_state(stack, task_id, "sent")
    assert failed["report"]["attempts"] == 2


def test_no_report_while_reporting_is_off(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    _, cb_path = where
    signed.script[cb_path] = [404]
    stack.start_worker()
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=7)))
    assert stack.wait_status(task_id, "failed")["report"] is None
    time.sleep(1)
    assert stack.wait_status(task_id, "failed")["report"] is None
    assert len(signed.requests_to(cb_path)) == 1  # the labels only


def test_the_failure_urls_token_shows_nowhere(
    stack: Stack, signed: Receiver, where: tuple[str, str]
) -> None:
    fail_path, cb_path = where
    token = uuid.uuid4().hex  # the kind of secret a monitoring URL carries
    signed.script[cb_path] = [404]
    worker = stack.start_worker(HOOK_FAILURE_URL=signed.url(f"{fail_path}?token={token}"))
    task_id = send(stack, payload(signed, cb_path, image_bytes(seed=9)))
    (report,) = reports(signed, fail_path + f"?token={token}", task_id)
    listed = report_state(stack, task_id, "sent")
    stack.stop_workers()
    assert worker.poll() is not None
    seen = [stack.log("web"), *(p.read_text() for p in stack.logs.glob("worker*.log"))]
    seen += [requests.get(f"{stack.base}/metrics", timeout=5).text, json.dumps(listed)]
    assert not [text for text in seen if token in text]
    assert json.loads(report.body)["task_id"] == task_id
