"""End to end, all real processes: nx-27017, gunicorn hook.wsgi:app, worker.py, and a receiver
on 127.0.0.1 standing in for Camio's callback endpoint."""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from PIL import Image

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.e2e.support import blank_png, send
from tests.factories import DATA, REGIONS, bad_pngs, image_bytes
from tests.procs import Stack, hook_cli
from tests.receiver import Receiver

pytestmark = pytest.mark.slow
DB = "e2e"


def test_event_comes_back_labeled_in_camio_format(
    stack: Stack, receiver: Receiver, store: TaskStore
) -> None:
    stack.start_worker()
    dict_stamp = {"meta_class": "datetime.datetime", "date": "2016-10-09T06:17:36.923-0000"}
    task_id, path = send(
        stack,
        receiver,
        [
            ("2017-05-05T01:31:13.738647", (DATA / "dog.jpg").read_bytes()),
            (dict_stamp, (DATA / "person.jpg").read_bytes()),
            ("2017-05-05T01:31:15Z", blank_png()),
        ],
    )
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
    done = stack.wait_status(task_id, "done")
    assert done["attempts"] == 1 and done["last_error"] is None
    stored = store.get(task_id)
    assert stored is not None and stored.result_json is not None
    assert json.loads(stored.result_json) == body  # the labels kept are those delivered


def test_503_twice_then_the_labels_arrive(stack: Stack, receiver: Receiver) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [503, 503]
    stack.start_worker()
    task_id, _ = send(
        stack, receiver, [("2017-05-05T01:31:13Z", (DATA / "eagle.jpg").read_bytes())], path
    )
    bodies = receiver.wait_for(path, 3)
    assert (
        bodies[0] == bodies[1] == bodies[2]
        and "bird" in bodies[0]["labels"]["2017-05-05T01:31:13Z"]
    )
    done = stack.wait_status(task_id, "done")
    assert done["attempts"] == 3 and done["last_error"] is None  # earlier errors are history


def test_429_with_retry_after_waits_as_long_as_the_callback_asked(
    stack: Stack, receiver: Receiver
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [429]
    receiver.headers[path] = {"Retry-After": "300"}
    stack.start_worker()
    task_id, _ = send(
        stack, receiver, [("2017-05-05T01:31:13Z", (DATA / "eagle.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    deadline = time.monotonic() + 30
    while (queued := stack.task(task_id, "queued")) is None or queued["attempts"] != 1:
        assert time.monotonic() < deadline, "the task was not rescheduled after its 429"
        time.sleep(0.1)
    assert queued["last_error"].startswith("callback answered 429")
    wait = datetime.fromisoformat(queued["next_run_at"]) - datetime.now(UTC)
    assert wait.total_seconds() > 250  # 300 s asked; the policy alone would wait 1-2 s


def test_404_fails_the_task_at_once_with_the_reason(stack: Stack, receiver: Receiver) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [404]
    stack.start_worker()
    task_id, _ = send(stack, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=404))], path)
    failed = stack.wait_status(task_id, "failed")
    assert failed["attempts"] == 1 and failed["last_error"].startswith("callback answered 404")
    time.sleep(1)
    assert len(receiver.bodies(path)) == 1


def test_killed_worker_task_is_finished_by_another_with_the_same_labels(
    stack: Stack, receiver: Receiver
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.delay[path] = 8  # the first worker dies while waiting for this answer
    first = stack.start_worker(HOOK_LEASE_SECONDS="2")
    task_id, _ = send(
        stack, receiver, [("2017-05-05T01:31:13Z", (DATA / "dog.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    receiver.delay[path] = 0
    stack.start_worker(HOOK_LEASE_SECONDS="2")
    bodies = receiver.wait_for(path, 2, timeout=30)
    assert bodies[0] == bodies[1]
    done = stack.wait_status(task_id, "done")
    assert done["attempts"] == 2


def test_sigterm_mid_task_finishes_it_and_exits_0(stack: Stack, receiver: Receiver) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.delay[path] = 2
    worker = stack.start_worker()
    task_id, _ = send(
        stack, receiver, [("2017-05-05T01:31:13Z", (DATA / "horses.jpg").read_bytes())], path
    )
    receiver.wait_for(path, 1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    done = stack.task(task_id, "done")  # settled before the exit, not left to its lease
    assert done is not None and done["attempts"] == 1 and done["last_error"] is None
    assert len(receiver.bodies(path)) == 1


BAD_IMAGES = {"truncated jpeg": (DATA / "dog.jpg").read_bytes()[:60000]} | bad_pngs()


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_corrupt_image_fails_its_task_and_the_next_is_labeled(
    stack: Stack, receiver: Receiver, kind: str
) -> None:
    stack.start_worker()  # each image passes the web's header check only
    bad_id, bad_path = send(stack, receiver, [("2017-05-05T01:31:13Z", BAD_IMAGES[kind])])
    good_id, good_path = send(
        stack, receiver, [("2017-05-05T01:31:14Z", (DATA / "person.jpg").read_bytes())]
    )
    failed = stack.wait_status(bad_id, "failed")
    assert failed["attempts"] == 1  # failed for good at once, never retried as unexpected
    assert "image 0 (timestamp 2017-05-05T01:31:13Z)" in failed["last_error"]
    assert "does not decode" in failed["last_error"]
    assert "person" in receiver.wait_for(good_path, 1)[0]["labels"]["2017-05-05T01:31:14Z"]
    stack.wait_status(good_id, "done")
    assert receiver.bodies(bad_path) == []


def test_two_workers_deliver_50_events_exactly_once(stack: Stack, receiver: Receiver) -> None:
    stack.start_worker()
    stack.start_worker()
    prefix = f"/cb/{uuid.uuid4().hex}"
    sent = [
        send(
            stack,
            receiver,
            [("2017-05-05T01:31:13Z", image_bytes(96, 64, seed=5000 + n))],
            f"{prefix}/{n}",
        )
        for n in range(50)
    ]
    for task_id, path in sent:
        receiver.wait_for(path, 1)
        stack.wait_status(task_id, "done")
    time.sleep(1)
    assert all(len(receiver.bodies(path)) == 1 for _, path in sent)
    attempts = {t["id"]: t["attempts"] for t in stack.listing("done")}
    assert [attempts.get(task_id) for task_id, _ in sent] == [1] * 50  # each done at its first


def metrics_once(stack: Stack, *lines: str, timeout: float = 10) -> str:
    """/metrics once it has every line (a worker writes its counts about once a second), or
    as it is after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        text = requests.get(f"{stack.base}/metrics", timeout=5).text
        if all(line in text for line in lines) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_deliveries_and_latency_reach_the_metrics(stack: Stack, receiver: Receiver) -> None:
    before = requests.get(f"{stack.base}/metrics", timeout=5).text
    stack.start_worker()
    _, path = send(stack, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=777))])
    receiver.wait_for(path, 1)

    def value(text: str, line: str) -> float:
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    delivered = 'hook_deliveries_total{outcome="delivered"}'
    after = metrics_once(stack, f"{delivered} {value(before, delivered) + 1}")
    assert value(after, delivered) == value(before, delivered) + 1
    assert (
        value(after, "hook_latency_seconds_count")
        == value(before, "hook_latency_seconds_count") + 1
    )
    # one image labeled: one observation of its model runs; the worker beating as running
    inferred = "hook_inference_seconds_count"
    assert value(after, inferred) == value(before, inferred) + 1
    assert value(after, 'hook_inference_seconds_bucket{le="+Inf"}') == value(after, inferred)
    assert value(after, 'hook_workers{state="running"}') >= 1
    host = f'host="127.0.0.1:{receiver.server.server_port}"'  # the port, never the path
    for line in (
        f'hook_host_deliveries_total{{{host},outcome="delivered"}}',
        f"hook_host_delivery_seconds_count{{{host}}}",
        f'hook_host_delivery_seconds_bucket{{{host},le="+Inf"}}',
    ):
        assert value(after, line) == value(before, line) + 1, line
    assert value(after, f"hook_host_delivery_seconds_sum{{{host}}}") > value(
        before, f"hook_host_delivery_seconds_sum{{{host}}}"
    )
    assert path not in after and "/cb/" not in after


def test_deliveries_are_counted_per_callback_host_in_metrics_and_status(
    stack: Stack, mongo: EmbeddedMongo
) -> None:
    fine, failing = Receiver(), Receiver()  # two callback hosts: a port each
    where = f"/cb/s3cret-{uuid.uuid4().hex}?token=s3cret-query"
    try:
        failing.script[where] = [503, 404]
        stack.start_worker()
        done, _ = send(stack, fine, [("2017-05-05T01:31:13Z", image_bytes(seed=4400))], where)
        refused, _ = send(stack, failing, [("2017-05-05T01:31:13Z", image_bytes(seed=4401))], where)
        stack.wait_status(done, "done")
        assert stack.wait_status(refused, "failed")["attempts"] == 2
    finally:
        fine.close()
        failing.close()
    ok, bad = (f"127.0.0.1:{r.server.server_port}" for r in (fine, failing))
    counted = 'hook_host_deliveries_total{{host="{}",outcome="{}"}} 1.0'
    text = metrics_once(stack, counted.format(bad, "refused"), counted.format(ok, "delivered"))
    for host, outcome, n in [
        (ok, "delivered", 1),
        (ok, "retried", 0),
        (ok, "refused", 0),
        (bad, "delivered", 0),
        (bad, "retried", 1),
        (bad, "refused", 1),
        (bad, "gave_up", 0),
    ]:
        assert f'hook_host_deliveries_total{{host="{host}",outcome="{outcome}"}} {n}.0' in text
    assert f'hook_host_delivery_seconds_count{{host="{ok}"}} 1.0' in text
    assert f'hook_host_delivery_seconds_bucket{{host="{bad}",le="+Inf"}} 2.0' in text
    assert "s3cret" not in text and "/cb" not in text and "token" not in text
    status = hook_cli("status", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=DB).stdout
    (row,) = [line.split() for line in status.splitlines() if line.startswith(f"  {bad} ")]
    assert row[1:5] == ["0", "1", "1", "0"] and row[-4] == "refused"  # N s ago
    assert "s3cret" not in status


def test_exhausted_retries_fail_the_task_and_count_as_gave_up(
    stack: Stack, receiver: Receiver
) -> None:
    path = f"/cb/{uuid.uuid4().hex}"
    receiver.script[path] = [503, 503, 503]
    before = requests.get(f"{stack.base}/metrics", timeout=5).text
    stack.start_worker(HOOK_MAX_ATTEMPTS="2")
    task_id, _ = send(stack, receiver, [("2017-05-05T01:31:13Z", image_bytes(seed=2222))], path)
    failed = stack.wait_status(task_id, "failed")
    assert failed["attempts"] == 2 and failed["last_error"].startswith("gave up after 2 attempts")
    line = 'hook_deliveries_total{outcome="gave_up"}'
    was = [float(r.split()[-1]) for r in before.splitlines() if r.startswith(line)] or [0.0]
    after = metrics_once(stack, f"{line} {was[0] + 1}")
    count = [float(r.split()[-1]) for r in after.splitlines() if r.startswith(line)]
    assert count and count[0] == was[0] + 1


def test_sigterm_gives_back_the_tasks_it_had_not_started(stack: Stack) -> None:
    # More tasks than the worker delivers at once, each to a host of its own (so none is
    # deferred for a busy host): 4 in flight, a few claimed and waiting, the rest unclaimed.
    hosts = [Receiver() for _ in range(10)]
    try:
        for host in hosts:
            host.delay["/cb"] = 1.5
        worker = stack.start_worker()
        ids = [
            send(stack, host, [("2017-05-05T01:31:13Z", image_bytes(seed=3300 + n))], "/cb")[0]
            for n, host in enumerate(hosts)
        ]
        hosts[0].wait_for("/cb", 1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        tasks = {t["id"]: t for t in stack.listing("queued,running,done") if t["id"] in ids}
        assert sorted(tasks) == sorted(ids)
        assert all(t["status"] != "running" for t in tasks.values())  # nothing left to a lease
        queued = [t for t in tasks.values() if t["status"] == "queued"]
        assert all(t["attempts"] == 0 for t in queued)  # not counted as attempts
        given_back = [t for t in queued if t["next_run_at"] > t["created_at"]]  # claimed once
        assert given_back, "the worker had prefetched nothing to give back"
        stack.start_worker()
        for host in hosts:
            host.wait_for("/cb", 1)
    finally:
        for host in hosts:
            host.close()
