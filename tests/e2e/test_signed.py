"""Signed callbacks end to end: gunicorn and worker.py with HOOK_SIGNING_SECRET (two secrets,
as in a rotation) and HOOK_CALLBACK_HEADERS, against receivers that check every POST with the
official Standard Webhooks library and answer 401 to one that does not verify."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
import requests
from standardwebhooks import Webhook

from hook.cli.argv import worker_argv
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.factories import DATA, ROOT, image_bytes
from tests.procs import Stack
from tests.receiver import Receiver, Request

pytestmark = pytest.mark.slow
DB = "signed_e2e"
NEW, OLD = (base64.b64encode(os.urandom(n)).decode() for n in (32, 24))
TOKEN = f"Bearer {uuid.uuid4().hex}"  # a custom header's value: a credential of the receiver's
CAMERA, USER = "café porch ☂ 100%", "ü-1"


@pytest.fixture(scope="module")
def stack(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn and the workers, all with both secrets (new first) and a custom header, and
    logging at DEBUG, so that what must never be logged has every chance to be."""
    with Stack(
        tmp_path_factory.mktemp("signed"),
        mongo=mongo,
        HOOK_MONGO_DB=DB,
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_RETRY_BASE_SECONDS="0.3",
        HOOK_SIGNING_SECRET=f"whsec_{NEW} whsec_{OLD}",
        HOOK_LOG_LEVEL="DEBUG",
        HOOK_CALLBACK_HEADERS=json.dumps({"Authorization": TOKEN}),
        HOOK_CALLBACK_TIMEOUT="20",
    ) as running:
        yield running


@pytest.fixture
def workers(stack: Stack) -> Iterator[Stack]:
    yield stack
    stack.stop_workers()


@pytest.fixture(scope="module")
def new_only() -> Iterator[Receiver]:
    """A receiver already moved to the new secret."""
    server = Receiver(secrets=[f"whsec_{NEW}"])
    yield server
    server.close()


@pytest.fixture(scope="module")
def old_only() -> Iterator[Receiver]:
    """A receiver that still knows only the old secret (bare base64: the libraries take it)."""
    server = Receiver(secrets=[OLD])
    yield server
    server.close()


def send(stack: Stack, receiver: Receiver, seed: int, path: str | None = None) -> tuple[str, str]:
    """POST a one-image event; return (task id, callback path)."""
    path = path or f"/cb/{uuid.uuid4().hex}"
    image = base64.b64encode(image_bytes(96, 64, seed=seed)).decode()
    answer = stack.post(
        {
            "callback_url": receiver.url(path),
            "camera": CAMERA,
            "user_id": USER,
            "images": [{"timestamp": "2017-05-05T01:31:13Z", "image_b64": image}],
        }
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["task_id"], path


def check_context(post: Request, task_id: str, attempt: int) -> None:
    """A callback as hook sends it: verified, its id the task's, its context and our header."""
    assert post.verified_by == 0, post.headers
    assert post.headers["webhook-id"] == task_id
    assert post.headers["X-Hook-Attempt"] == str(attempt)
    assert post.headers["X-Hook-Camera"] == "caf%C3%A9 porch %E2%98%82 100%25"
    assert unquote(post.headers["X-Hook-Camera"]) == CAMERA
    assert unquote(post.headers["X-Hook-User"]) == USER
    assert post.headers["Authorization"] == TOKEN
    assert post.headers["Content-Type"] == "application/json"
    assert abs(int(post.headers["webhook-timestamp"]) - time.time()) < 60


def stored_body(store: TaskStore, task_id: str) -> bytes:
    task = store.get(task_id)
    assert task is not None and task.result_json is not None
    return task.result_json.encode()


def test_every_callback_is_signed_with_its_context_and_the_bytes_stored(
    workers: Stack, new_only: Receiver, store: TaskStore
) -> None:
    workers.start_worker()
    task_id, path = send(workers, new_only, seed=1)
    new_only.wait_for(path, 1)
    workers.wait_status(task_id, "done")
    (post,) = new_only.requests_to(path)
    check_context(post, task_id, attempt=1)
    assert post.body == stored_body(store, task_id)  # byte for byte, as stored
    assert json.loads(post.body)["status"] == "success"


def test_a_receiver_that_knows_only_the_old_secret_verifies_too(
    workers: Stack, old_only: Receiver, store: TaskStore
) -> None:
    workers.start_worker()
    task_id, path = send(workers, old_only, seed=2)
    old_only.wait_for(path, 1)
    assert workers.wait_status(task_id, "done")["attempts"] == 1  # no 401: it verified
    (post,) = old_only.requests_to(path)
    check_context(post, task_id, attempt=1)
    assert len(post.headers["webhook-signature"].split(" ")) == 2  # both secrets signed it
    Webhook(f"whsec_{NEW}").verify(post.body, post.headers)  # and the new one, too


def test_a_receiver_with_another_secret_refuses_it(workers: Stack) -> None:
    """The receivers' check has teeth: a POST no secret of theirs verifies gets a 401."""
    stranger = Receiver(secrets=["whsec_" + base64.b64encode(os.urandom(32)).decode()])
    try:
        workers.start_worker()
        task_id, path = send(workers, stranger, seed=6)
        failed = workers.wait_status(task_id, "failed")
        assert failed["last_error"].startswith("callback answered 401")
        (post,) = stranger.requests_to(path)
        assert post.verified_by is None
    finally:
        stranger.close()


def test_retries_carry_the_same_id_each_signed_afresh(
    workers: Stack, new_only: Receiver, store: TaskStore
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    new_only.script[path] = [503]
    workers.start_worker()
    task_id, _ = send(workers, new_only, seed=3, path=path)
    new_only.wait_for(path, 2)
    assert workers.wait_status(task_id, "done")["attempts"] == 2
    first, second = new_only.requests_to(path)
    check_context(first, task_id, attempt=1)
    check_context(second, task_id, attempt=2)
    assert first.body == second.body == stored_body(store, task_id)
    assert int(first.headers["webhook-timestamp"]) <= int(second.headers["webhook-timestamp"])


def test_the_next_worker_after_one_killed_mid_delivery_sends_the_same_id(
    workers: Stack, new_only: Receiver, store: TaskStore
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    new_only.delay[path] = 8  # the first worker dies while waiting for this answer
    first = workers.start_worker(HOOK_LEASE_SECONDS="2")
    task_id, _ = send(workers, new_only, seed=4, path=path)
    new_only.wait_for(path, 1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    new_only.delay[path] = 0
    workers.start_worker(HOOK_LEASE_SECONDS="2")
    new_only.wait_for(path, 2, timeout=30)
    assert workers.wait_status(task_id, "done")["attempts"] == 2
    killed, finished = new_only.requests_to(path)
    check_context(killed, task_id, attempt=1)
    check_context(finished, task_id, attempt=2)  # another process, the same webhook-id
    assert killed.body == finished.body == stored_body(store, task_id)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("HOOK_CALLBACK_HEADERS", '{"X-Ok": "fine", "Host": "VALUE-1"}', "header Host is not"),
        ("HOOK_CALLBACK_HEADERS", '{"webhook-id": "VALUE-1"}', "header webhook-id is not allowed"),
        ("HOOK_CALLBACK_HEADERS", '{"X-Api": "VALUE-1\\nX-Evil: 1"}', "header X-Api: its value"),
        ("HOOK_SIGNING_SECRET", f"whsec_{NEW} whsec_VALUE~1", "secret 2 of 2 is not base64"),
    ],
)
def test_a_bad_header_or_secret_stops_the_worker_at_start_up(
    stack: Stack, name: str, value: str, said: str
) -> None:
    done = subprocess.run(
        worker_argv(),
        cwd=ROOT,
        env={**stack.env, name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot start: " in done.stderr and said in done.stderr
    assert "VALUE" not in done.stderr and NEW not in done.stderr and "Traceback" not in done.stderr


def test_no_secret_nor_header_value_in_the_logs_or_the_metrics(
    workers: Stack, new_only: Receiver
) -> None:
    workers.start_worker()
    task_id, path = send(workers, new_only, seed=5)
    new_only.wait_for(path, 1)
    workers.wait_status(task_id, "done")
    workers.stop_workers()
    logs = {log.name: log.read_text(errors="replace") for log in workers.logs.glob("*.log")}
    assert "web.log" in logs and any(name.startswith("worker") for name in logs)
    assert any(f"task {task_id} done" in text for text in logs.values())  # they log at all
    logs["metrics"] = requests.get(f"{workers.base}/metrics", timeout=5).text
    secrets = [NEW, OLD, TOKEN, TOKEN.split()[1], base64.b64decode(NEW).hex()]
    leaks = [(name, s[:6]) for name, text in logs.items() for s in secrets if s in text]
    assert leaks == []


def test_the_dog_photo_arrives_signed_with_its_labels(
    workers: Stack, new_only: Receiver, store: TaskStore
) -> None:
    """A real photo's labels (a large body, with floats and nested objects) verify as sent."""
    workers.start_worker()
    path = f"/cb/{uuid.uuid4().hex}"
    image = base64.b64encode((DATA / "dog.jpg").read_bytes()).decode()
    answer = workers.post(
        {
            "callback_url": new_only.url(path),
            "camera": CAMERA,
            "user_id": USER,
            "images": [{"timestamp": "2017-05-05T01:31:13.738647", "image_b64": image}],
        }
    )
    task_id = answer.json()["task_id"]
    (body,) = new_only.wait_for(path, 1)
    assert "dog" in body["labels"]["2017-05-05T01:31:13.738647"]
    (post,) = new_only.requests_to(path)
    check_context(post, task_id, attempt=1)
    assert post.body == stored_body(store, task_id)
