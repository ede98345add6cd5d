"""End to end, all real processes: nx-27017, gunicorn hook.wsgi:app, worker.py, and a receiver
on 127.0.0.1 standing in for Camio's callback endpoint."""

from __future__ import annotations

import base64
import io
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from hook.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, bad_pngs, free_port, image_bytes
from tests.receiver import Receiver
from tests.test_detector import REGIONS

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"
DB = "e2e"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def worker_env(mongo: EmbeddedMongo, **extra: str) -> dict[str, str]:
    return procs.hook_env(
        HOOK_API_KEY=API_KEY, HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=DB,
        HOOK_CALLBACK_HOSTS="127.0.0.1", HOOK_RETRY_BASE_SECONDS="0.3",
        HOOK_CALLBACK_TIMEOUT="20", **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def web(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("e2e") / "gunicorn.log"
    process = procs.gunicorn(port, worker_env(mongo), log)
    base = f"http://127.0.0.1:{port}"
    try:
        procs.wait_http(f"{base}/tasks/", process)
        yield base
    finally:
        procs.stop(process)


class Workers:
    """worker.py processes started by a test, all stopped at its end."""

    def __init__(self, mongo: EmbeddedMongo, logs: Path) -> None:
        self.mongo, self.logs, self.started = mongo, logs, []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker{len(self.started)}.log"
        process = procs.start([sys.executable, "worker.py"], worker_env(self.mongo, **env), log)
        self.started.append((process, log))
        return process

    def output(self) -> str:
        return "\n".join(log.read_text() for _, log in self.started if log.exists())

    def wait_output(self, *parts: str, timeout: float = 10) -> str:
        """The logs once they hold every part: a task's log line follows its settling."""
        deadline = time.monotonic() + timeout
        while not all(part in (text := self.output()) for part in parts):
            assert time.monotonic() < deadline, f"worker logs lack {parts}:\n{text}"
            time.sleep(0.05)
        return text

    def stop_all(self) -> None:
        for process, _ in self.started:
            procs.stop(process, timeout=30)


@pytest.fixture
def workers(mongo: EmbeddedMongo, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(mongo, tmp_path)
    yield pool
    pool.stop_all()


def send(
    web: str, receiver: Receiver, images: list[tuple[Any, bytes]], path: str | None = None
) -> tuple[str, str]:
    """POST an event with (timestamp, bytes) images; return (task id, callback path)."""
    path = path or f"/cb/{uuid.uuid4().hex}"
    payload = {"callback_url": receiver.url(path), "camera": "porch", "user_id": "u1",
               "images": [{"timestamp": ts, "image_b64": base64.b64encode(data).decode()}
                          for ts, data in images]}  # fmt: skip
    answer = requests.post(f"{web}/tasks/{API_KEY}", json=payload, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["task_id"], path


def task(web: str, task_id: str, status: str) -> dict[str, Any] | None:
    listing = requests.get(f"{web}/tasks/{API_KEY}?status={status}&limit=1000", timeout=10).json()
    return next((t for t in listing["tasks"] if t["id"] == task_id), None)


def wait_status(web: str, task_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (found := task(web, task_id, status)) is None:
        assert time.monotonic() < deadline, f"task {task_id} not {status} in {timeout} s"
        time.sleep(0.1)
    return found


def blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


def test_event_comes_back_labeled_in_camio_format(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    dict_stamp = {"meta_class": "datetime.datetime", "date": "2016-10-09T06:17:36.923-0000"}
    task_id, path = send(web, receiver, [
        ("2017-05-05T01:31:13.738647", (DATA / "dog.jpg").read_bytes()),
        (dict_stamp, (DATA / "person.jpg").read_bytes()),
        ("2017-05-05T01:31:15Z", blank_png()),
    ])  # fmt: skip
    (body,) = receiver.wait_for(path, 1)
    assert body["status"] == "success"
    labels = body["labels"]
    assert list(labels) == [
        "2017-05-05T01:31:13.738647",
        "2016-10-09T06:17:36.923-0000",
        "2017-05-05T01:31:15Z",
    ]  # exactly as received, both shapes
    assert labels["2017-05-05T01:31:15Z"] == {}
    for key, photo in (
        ("2017-05-05T01:31:13.738647", "dog.jpg"),
        ("2016-10-09T06:17:36.923-0000", "person.jpg"),
    ):
        size = Image.open(DATA / photo).size
        for label, (x1, x2, y1, y2) in REGIONS[photo].items():
            entry = labels[key][label]
            assert 0.5 <= entry["probability"] <= 1
            corners = entry["polygon"]
            assert len(corners) == 4 and all(0 <= v <= 1 for c in corners for v in c)
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            cx, cy = sum(xs) / 4 * size[0], (1 - sum(ys) / 4) * size[1]  # origin bottom-left
            assert x1 <= cx <= x2 and y1 <= cy <= y2, (label, cx, cy)
            assert corners[0][1] < corners[2][1]  # first corner is at the bottom
            assert entry["count"] == len(entry["boxes"]) >= 1
            assert entry["boxes"][0] == {"probability": entry["probability"], "polygon": corners}
    done = wait_status(web, task_id, "done")
    assert done["attempts"] == 1 and done["last_error"] is None
    workers.wait_output("labels=", task_id)


def test_503_twice_then_the_labels_arrive(web: str, receiver: Receiver, workers: Workers) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [503, 503]
    workers.start()
    task_id, _ = send(
        web, receiver, [("2017-05-05T01:31:13Z", (DATA / "eagle.jpg").read_bytes())], path
    )
    bodies = receiver.wait_for(path, 3)
    assert (
        bodies[0] == bodies[1] == bodies[2]
        and "bird" in bodies[0]["labels"]["2017-05-05T01:31:13Z"]
    )
    done = wait_status(web, task_id, "done")
    assert done["attempts"] == 3 and done["last_error"] is None  # earlier errors are history


def test_429_with_retry_after_waits_as_long_as_the_callback_asked(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [429]
    receiver.headers[path] = {"Retry-After": "300"}
    workers.start()
    task_id, _ = send(
        web, receiver, [("2017-05-05T01:31:13Z", (DATA / "eagle.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    deadline = time.monotonic() + 30
    while (queued := task(web, task_id, "queued")) is None or queued["attempts"] != 1:
        assert time.monotonic() < deadline, "the task was not rescheduled after its 429"
        time.sleep(0.1)
    assert queued["last_error"].startswith("callback answered 429")
    wait = datetime.fromisoformat(queued["next_run_at"]) - datetime.now(UTC)
    assert wait.total_seconds() > 250  # 300 s asked; the policy alone would wait 1-2 s


@pytest.mark.fault
def test_a_hanging_callback_host_does_not_hold_up_deliveries_to_others(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    slow = Receiver()  # another host (port): it takes 8 s to answer each POST
    try:
        slow_paths = [f"/slow/{uuid.uuid4().hex}" for _ in range(5)]
        for path in slow_paths:
            slow.delay[path] = 8.0
        workers.start()
        for n, path in enumerate(slow_paths):
            send(web, slow, [("2017-05-05T01:31:13Z", image_bytes(64, 48, seed=900 + n))], path)
        fast = [send(web, receiver, [("2017-05-05T01:31:14Z", image_bytes(64, 48, seed=950 + n))])
                for n in range(3)]  # fmt: skip
        for _, path in fast:  # all while the slow host still holds its first deliveries
            receiver.wait_for(path, 1, timeout=6)
        for path in slow_paths:  # and the slow host gets every one of its own in the end
            slow.wait_for(path, 1, timeout=60)
    finally:
        slow.close()
    assert "deliveries in flight; deferred" in workers.output()


def test_404_fails_the_task_at_once_with_the_reason(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [404]
    workers.start()
    task_id, _ = send(web, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=404))], path)
    failed = wait_status(web, task_id, "failed")
    assert failed["attempts"] == 1 and failed["last_error"].startswith("callback answered 404")
    time.sleep(1)
    assert len(receiver.bodies(path)) == 1


def test_killed_worker_task_is_finished_by_another_with_the_same_labels(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.delay[path] = 8  # the first worker dies while waiting for this answer
    first = workers.start(HOOK_LEASE_SECONDS="2")
    task_id, _ = send(
        web, receiver, [("2017-05-05T01:31:13Z", (DATA / "dog.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    receiver.delay[path] = 0
    workers.start(HOOK_LEASE_SECONDS="2")
    bodies = receiver.wait_for(path, 2, timeout=30)
    assert bodies[0] == bodies[1]
    done = wait_status(web, task_id, "done")
    assert done["attempts"] == 2


def test_sigterm_mid_task_finishes_it_and_exits_0(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.delay[path] = 2
    worker = workers.start()
    task_id, _ = send(
        web, receiver, [("2017-05-05T01:31:13Z", (DATA / "horses.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert task(web, task_id, "done") is not None
    assert "finishing the tasks in hand" in workers.output()


BAD_IMAGES = {"truncated jpeg": (DATA / "dog.jpg").read_bytes()[:60000]} | bad_pngs()


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_corrupt_image_fails_its_task_and_the_next_is_labeled(
    web: str, receiver: Receiver, workers: Workers, kind: str
) -> None:
    workers.start()  # each image passes the web's header check only
    bad_id, bad_path = send(web, receiver, [("2017-05-05T01:31:13Z", BAD_IMAGES[kind])])
    good_id, good_path = send(
        web, receiver, [("2017-05-05T01:31:14Z", (DATA / "person.jpg").read_bytes())]
    )
    failed = wait_status(web, bad_id, "failed")
    assert failed["attempts"] == 1  # failed for good at once, never retried as unexpected
    assert "image 0 (timestamp 2017-05-05T01:31:13Z)" in failed["last_error"]
    assert "does not decode" in failed["last_error"]
    assert "person" in receiver.wait_for(good_path, 1)[0]["labels"]["2017-05-05T01:31:14Z"]
    wait_status(web, good_id, "done")
    assert receiver.bodies(bad_path) == []


def test_two_workers_deliver_50_events_exactly_once(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    workers.start()
    prefix = f"/cb/{uuid.uuid4().hex}"
    sent = [send(web, receiver, [("2017-05-05T01:31:13Z", image_bytes(96, 64, seed=5000 + n))],
                 f"{prefix}/{n}") for n in range(50)]  # fmt: skip
    for task_id, path in sent:
        receiver.wait_for(path, 1)
        wait_status(web, task_id, "done")
    time.sleep(1)
    assert all(len(receiver.bodies(path)) == 1 for _, path in sent)
    output = workers.output()
    assert sum(f"task {task_id} done" in output for task_id, _ in sent) == 50


def test_deliveries_and_latency_reach_the_metrics(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    before = requests.get(f"{web}/metrics", timeout=5).text
    workers.start()
    _, path = send(web, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=777))])
    receiver.wait_for(path, 1)
    time.sleep(0.5)
    after = requests.get(f"{web}/metrics", timeout=5).text

    def value(text: str, line: str) -> float:
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    delivered = 'hook_deliveries_total{outcome="delivered"}'
    assert value(after, delivered) == value(before, delivered) + 1
    assert (
        value(after, "hook_latency_seconds_count")
        == value(before, "hook_latency_seconds_count") + 1
    )


def test_exhausted_retries_fail_the_task_and_count_as_gave_up(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [503, 503, 503]
    before = requests.get(f"{web}/metrics", timeout=5).text
    workers.start(HOOK_MAX_ATTEMPTS="2")
    task_id, _ = send(web, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=2222))], path)
    failed = wait_status(web, task_id, "failed")
    assert failed["attempts"] == 2 and failed["last_error"].startswith("gave up after 2 attempts")
    after = requests.get(f"{web}/metrics", timeout=5).text
    line = 'hook_deliveries_total{outcome="gave_up"}'
    count = [float(r.split()[-1]) for r in after.splitlines() if r.startswith(line)]
    was = [float(r.split()[-1]) for r in before.splitlines() if r.startswith(line)] or [0.0]
    assert count and count[0] == was[0] + 1


def test_sigterm_gives_back_the_tasks_it_had_not_started(
    web: str, receiver: Receiver, workers: Workers
) -> None:
    prefix = f"/cb/{uuid.uuid4().hex}"
    paths = [f"{prefix}/{n}" for n in range(10)]  # more than the worker delivers at once
    for path in paths:
        receiver.delay[path] = 1.5
    worker = workers.start()
    ids = [send(web, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=3300 + n))], path)[0]
           for n, path in enumerate(paths)]  # fmt: skip
    receiver.wait_for(paths[0], 1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    queued = [task(web, task_id, "queued") for task_id in ids]
    given_back = [t for t in queued if t is not None]
    assert given_back, "the worker had prefetched nothing to give back"
    assert all(t["attempts"] == 0 for t in given_back)  # not counted as attempts
    assert "given back unstarted" in workers.output()
    workers.start()
    for path in paths:
        receiver.wait_for(path, 1)
