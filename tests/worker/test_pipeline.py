"""The worker in-process, with real parts: the store on nx-27017, the yolov3-tiny detector and
real HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pymongo import MongoClient
from pymongo.database import Database

from hook.callbacks.outbound import Outbound
from hook.callbacks.signing import Signer
from hook.config.table import DEFAULT_MODEL
from hook.detect.detector import Detector
from hook.metrics.recorder import Metrics
from hook.pictures.gallery import Gallery
from hook.retry import RetryPolicy
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.task import Status
from hook.worker.pipeline import Worker, WorkerConfig
from tests.factories import DATA, bad_pngs, image_bytes
from tests.loopback import free_port
from tests.receiver import Receiver
from tests.worker.support import (
    CONFIG,
    FIRST,
    SECOND,
    TRUNCATED_JPEG,
    delivered,
    enqueue,
    path,
    queued_again,
    running,
    settled_as,
    wait_task,
)


def test_lanes_side_by_side_and_batched_runs_label_as_one_lane_does(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    photos = sorted(DATA.glob("*.jpg"))
    assert len(photos) >= 4

    def labels(
        config: WorkerConfig = CONFIG, more_lanes: tuple[Detector, ...] = ()
    ) -> dict[str, Any]:
        paths = {path(): n for n in range(len(photos))}
        for where, n in paths.items():
            pair = photos[n], photos[(n + 1) % len(photos)]  # two images a task, each distinct
            enqueue(live_store, receiver.url(where), *(photo.read_bytes() for photo in pair))
        with running(live_store, detector, config, more_lanes=more_lanes):
            bodies = {where: receiver.wait_for(where, 1)[0] for where in paths}
        return {str(photos[n]): bodies[where] for where, n in paths.items()}

    alone = labels()
    batched = dataclasses.replace(CONFIG, batch_images=5)  # two or three tasks a run
    together = labels(config=batched, more_lanes=(Detector(DEFAULT_MODEL),))
    assert together == alone
    assert any(body["labels"] for body in alone.values())


def test_a_task_is_labeled_delivered_and_done(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    where = path()
    task_id = enqueue(
        live_store,
        receiver.url(where),
        (DATA / "dog.jpg").read_bytes(),
        image_bytes(96, 64, seed=1),
    )
    with running(live_store, detector) as worker:
        (body,) = receiver.wait_for(where, 1)
        done = wait_task(live_store, task_id, settled_as(Status.DONE))
    assert body["status"] == "success"
    dog = body["labels"][FIRST]
    assert {"dog", "bicycle", "car"} <= set(dog)
    assert body["labels"][SECOND] == {}  # noise: nothing in it
    assert done.attempts == 1 and done.last_error is None
    assert json.loads(done.result_json or "") == body  # stored before the POST, sent as stored
    assert live_store.load_images(done) == []  # a done task's bytes are deleted
    assert worker.done == 1 and worker.in_flight == {}
    assert delivered(live_store, "delivered") == 1


@pytest.mark.parametrize("kind", ["truncated jpeg", *sorted(bad_pngs())])
def test_a_bad_image_fails_its_own_task_and_the_next_is_labeled(
    live_store: TaskStore, detector: Detector, receiver: Receiver, kind: str
) -> None:
    data = TRUNCATED_JPEG if kind == "truncated jpeg" else bad_pngs()[kind]
    bad_path, good_path = path(), path()
    bad = enqueue(live_store, receiver.url(bad_path), image_bytes(seed=2), data)
    good = enqueue(live_store, receiver.url(good_path), (DATA / "person.jpg").read_bytes())
    with running(live_store, detector):
        failed = wait_task(live_store, bad, settled_as(Status.FAILED))
        (body,) = receiver.wait_for(good_path, 1)
        wait_task(live_store, good, settled_as(Status.DONE))
    assert failed.attempts == 1  # failed for good at once, never retried as unexpected
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"image 1 (timestamp {SECOND}): ")
    assert "does not decode" in failed.last_error
    assert "person" in body["labels"][FIRST]
    assert receiver.bodies(bad_path) == []


def test_a_task_whose_images_are_gone_fails_saying_how_many(
    live_store: TaskStore, detector: Detector, receiver: Receiver, db: Database
) -> None:
    where = path()
    task_id = enqueue(live_store, receiver.url(where), image_bytes(seed=3), image_bytes(seed=4))
    db["images"].delete_one({"_id": f"{task_id}:1"})  # as if an operator removed it
    with running(live_store, detector):
        failed = wait_task(live_store, task_id, settled_as(Status.FAILED))
    assert failed.last_error == "1 of 2 images missing"
    assert receiver.bodies(where) == []


def test_a_permanent_refusal_fails_the_task_with_the_answer(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    where = path()
    receiver.script[where] = [404]
    task_id = enqueue(live_store, receiver.url(where), image_bytes(seed=5))
    with running(live_store, detector):
        failed = wait_task(live_store, task_id, settled_as(Status.FAILED))
    assert failed.attempts == 1
    assert failed.last_error == 'callback answered 404: {"status": 404}'
    assert len(receiver.bodies(where)) == 1 and delivered(live_store, "refused") == 1


def test_a_5xx_reschedules_the_task_with_backoff(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    where = path()
    receiver.script[where] = [503]
    task_id = enqueue(live_store, receiver.url(where), image_bytes(seed=6))
    with running(live_store, detector):
        queued = wait_task(live_store, task_id, queued_again)
        rescheduled_at = time.time()
    assert queued.attempts == 1 and queued.lease_owner is None
    assert queued.last_error == 'callback answered 503: {"status": 503}'
    wait = queued.run_at - rescheduled_at
    assert 15 - 2 <= wait <= 30  # POLICY: half of 30 s fixed, half random
    assert queued.result_json is not None  # the next attempt resends these very labels
    assert delivered(live_store, "retried") == 1 and delivered(live_store, "delivered") == 0


def test_each_attempt_is_signed_afresh_under_the_same_id_with_its_context(
    live_store: TaskStore, detector: Detector
) -> None:
    secret = "whsec_" + "c2lnbmluZy1zZWNyZXQtZm9yLXRoZS13b3JrZXI="  # 30 bytes
    signed = Receiver(secrets=[secret])  # the official library checks every POST
    try:
        where = path()
        signed.script[where] = [503]
        outbound = Outbound(Signer([secret]), {"Authorization": "Bearer w"})
        config = dataclasses.replace(
            CONFIG, outbound=outbound, policy=RetryPolicy(base=0.2, max_attempts=3)
        )
        task_id = enqueue(live_store, signed.url(where), image_bytes(seed=8))
        with running(live_store, detector, config):
            wait_task(live_store, task_id, settled_as(Status.DONE))
        first, second = signed.requests_to(where)
    finally:
        signed.close()
    done = live_store.get(task_id)
    assert done is not None and done.result_json is not None
    for attempt, post in enumerate((first, second), 1):
        assert post.verified_by == 0 and post.body == done.result_json.encode()
        assert post.headers["webhook-id"] == task_id  # the same on every attempt
        assert post.headers["X-Hook-Attempt"] == str(attempt)
        assert post.headers["X-Hook-Camera"] == "front door"
        assert post.headers["X-Hook-User"] == "u1"
        assert post.headers["Authorization"] == "Bearer w"
    assert int(first.headers["webhook-timestamp"]) <= int(second.headers["webhook-timestamp"])


def test_an_unreachable_callback_is_retried_with_a_short_reason(
    live_store: TaskStore, detector: Detector
) -> None:
    port = free_port()  # nothing listens there
    task_id = enqueue(live_store, f"http://127.0.0.1:{port}/cb", image_bytes(seed=7))
    with running(live_store, detector):
        queued = wait_task(live_store, task_id, queued_again)
    assert queued.last_error == f"callback unreachable: connection refused by 127.0.0.1:{port}"


def test_a_warm_stop_gives_back_the_tasks_not_started_and_finishes_the_rest(
    live_store: TaskStore, detector: Detector
) -> None:
    # a receiver each: one callback host never has PER_HOST deliveries, so no task is deferred
    # (a deferred task would look just like one given back)
    receivers = [Receiver() for _ in range(8)]  # more tasks than the worker holds at once
    try:
        for receiver in receivers:
            receiver.delay["/cb"] = 1.5
        ids = [
            enqueue(live_store, r.url("/cb"), image_bytes(seed=100 + n))
            for n, r in enumerate(receivers)
        ]
        with running(live_store, detector) as worker:
            receivers[0].wait_for("/cb", 1)
            worker.stop()  # while the first deliveries are under way
        posted = [len(r.bodies("/cb")) for r in receivers]
    finally:
        for receiver in receivers:
            receiver.close()
    tasks = [live_store.get(task_id) for task_id in ids]
    assert posted[0] == 1 and all(n <= 1 for n in posted)
    for task, n in zip(tasks, posted, strict=True):
        assert task is not None
        if n:  # in delivery when the stop came: finished
            assert task.status is Status.DONE
        else:  # never sent: back in the queue, the attempt not counted, nobody's lease
            assert task.status is Status.QUEUED and task.attempts == 0
            assert task.lease_owner is None
    given_back = [t for t in tasks if t and t.status is Status.QUEUED and t.run_at > t.created_at]
    assert given_back, "nothing was claimed and given back"
    assert worker.in_flight == {}


def test_a_job_settled_early_takes_no_delivery_slot(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    other = Receiver()  # a second callback host: two per host fill all four slots
    try:
        slow = [(server, path()) for server in (receiver, other) for _ in range(2)]
        for server, where in slow:
            server.delay[where] = 4.0
        held = [
            enqueue(live_store, server.url(where), image_bytes(seed=200 + n))
            for n, (server, where) in enumerate(slow)
        ]
        with running(live_store, detector):
            for server, where in slow:  # every delivery slot is now waiting on an answer
                server.wait_for(where, 1, timeout=10)
            bad = [
                enqueue(live_store, receiver.url(path()), image_bytes(seed=210), TRUNCATED_JPEG),
                enqueue(live_store, other.url(path()), bad_pngs()["truncated png"]),
            ]
            for task_id in bad:  # failed at once, without waiting for a slot to free
                wait_task(live_store, task_id, settled_as(Status.FAILED), timeout=2.5)
            still = [live_store.get(task_id) for task_id in held]
            assert all(t is not None and t.status is Status.RUNNING for t in still)
            for task_id in held:
                wait_task(live_store, task_id, settled_as(Status.DONE))
    finally:
        other.close()


def test_the_lease_keeper_ends_cleanly_when_stopped_while_mongodb_is_down(
    caplog: pytest.LogCaptureFixture, detector: Detector
) -> None:
    client: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200
    )
    live_store = TaskStore(client["nowhere"])
    worker = Worker(live_store, [detector], CONFIG, metrics=Metrics(live_store))
    worker.stop()
    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _keep_leases(worker, failures))
    with caplog.at_level(logging.WARNING, logger="hook.worker.leases"):
        thread.start()
        thread.join(10)
    assert not thread.is_alive() and failures == []
    assert "could not record that it stopped" in caplog.text


def _keep_leases(worker: Worker, failures: list[BaseException]) -> None:
    try:
        worker.keeper.run()
    except BaseException as exc:  # whatever escaped the thread
        failures.append(exc)


def test_the_cameras_rules_shape_the_labels_and_what_they_dropped_is_kept(
    live_store: TaskStore, detector: Detector, receiver: Receiver, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[camera]]\nmatch = "back*"\nlabels = ["person"]\n\n'
        '[[camera]]\nmatch = "front*"\nlabels = ["dog", "car"]\nrename = { dog = "pet" }\n'
    )
    where = path()
    task_id = enqueue(
        live_store, receiver.url(where), (DATA / "dog.jpg").read_bytes()
    )  # "front door"
    with running(live_store, detector, rules=RulesFile.open(rules)):
        (body,) = receiver.wait_for(where, 1)
        done = wait_task(live_store, task_id, settled_as(Status.DONE))
    assert set(body["labels"][FIRST]) == {"pet", "car"}  # renamed; the bicycle not reported
    assert {(d.key, d.label, d.why) for d in done.dropped} == {(FIRST, "bicycle", "not in labels")}
    assert done.labeled_at is not None and done.labeled_at >= done.created_at


def test_labeling_draws_nothing_and_keeps_the_images_for_pictures_drawn_on_a_look(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    """Pictures cost labeling nothing: the worker keeps the originals past the delivery and
    stores no picture; the first look draws the delivered boxes on the original, at most
    1280 px, its aspect ratio kept (an image where nothing was found is itself)."""
    with_pictures = dataclasses.replace(CONFIG, keep_pictures_seconds=3600)
    where = path()
    photo = (DATA / "dog.jpg").read_bytes()
    noise = image_bytes(96, 64, seed=1)
    task_id = enqueue(live_store, receiver.url(where), photo, noise)
    with running(live_store, detector, with_pictures):
        done = wait_task(live_store, task_id, settled_as(Status.DONE))
    assert live_store.picture_indexes(task_id) == []  # none drawn by the worker
    assert [live_store.original(task_id, n) for n in (0, 1)] == [photo, noise]
    assert done.pictures_until is not None and done.labeled_at is not None
    assert done.pictures_until == pytest.approx(done.labeled_at + 3600)
    gallery = Gallery(live_store, max_pixels=CONFIG.max_image_pixels)
    assert gallery.indexes(done) == [0, 1]
    first = Image.open(io.BytesIO(gallery.picture(task_id, 0) or b"")).convert("RGB")
    original = Image.open(io.BytesIO(photo)).convert("RGB")
    assert max(first.size) <= 1280
    assert abs(first.width / first.height - original.width / original.height) < 0.01
    plain = np.asarray(original.resize(first.size), dtype=np.int16)
    drawn = np.abs(np.asarray(first, dtype=np.int16) - plain).max(axis=2) > 100
    assert drawn.mean() > 0.01  # the boxes and labels: far from anything JPEG does to a photo
    blank = Image.open(io.BytesIO(gallery.picture(task_id, 1) or b"")).convert("RGB")
    untouched = np.asarray(Image.open(io.BytesIO(noise)).convert("RGB"), dtype=np.int16)
    assert blank.size == (96, 64)  # nothing found: the picture is the image itself
    assert (np.abs(np.asarray(blank, dtype=np.int16) - untouched).max(axis=2) > 100).mean() < 0.01
    assert live_store.picture_indexes(task_id) == [0, 1]  # kept for the next look


def test_no_pictures_when_they_are_off(
    live_store: TaskStore, detector: Detector, receiver: Receiver
) -> None:
    """HOOK_KEEP_PICTURES_HOURS=0: the images go with the completion, as before pictures."""
    where = path()
    task_id = enqueue(live_store, receiver.url(where), (DATA / "dog.jpg").read_bytes())
    with running(live_store, detector):  # CONFIG: keep_pictures_seconds 0
        done = wait_task(live_store, task_id, settled_as(Status.DONE))
    assert (done.pictures_until, live_store.original(task_id, 0)) == (None, None)
    assert Gallery(live_store, max_pixels=CONFIG.max_image_pixels).indexes(done) == []
