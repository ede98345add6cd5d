"""Fault suite: real processes, real failures. Runs alone with `pytest -m fault`.

MongoDB killed under a stream of events, the callback receiver down for a while, workers
killed at random, the embedded MongoDB's disk full or read-only, a receiver trickling its
answer, and a worker killed between its last try's 200 and the write that records it.
Nothing that got a 200 may be lost, and no request may be answered with a 500.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
import requests
from pymongo import MongoClient
from pymongo.database import Database

from hook.store.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, SIGNING_SECRET, event
from tests.loopback import Trickler, free_port
from tests.procs import Stack
from tests.receiver import Receiver

pytestmark = [pytest.mark.fault, pytest.mark.slow]


class FaultSettings(TypedDict):
    """The settings every fault test's stack runs with: a TypedDict, so `**` keeps them `str`."""

    HOOK_MONGO_TIMEOUT_MS: str
    HOOK_RETRY_BASE_SECONDS: str
    HOOK_MAX_ATTEMPTS: str
    HOOK_LEASE_SECONDS: str


FAULT_SETTINGS = FaultSettings(
    HOOK_MONGO_TIMEOUT_MS="500",
    HOOK_RETRY_BASE_SECONDS="0.3",
    HOOK_MAX_ATTEMPTS="30",
    HOOK_LEASE_SECONDS="3",
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Stack(tmp_path, **FAULT_SETTINGS) as running:
        yield running


def assert_each_delivered_once_alike(receiver: Receiver, paths: list[str], timeout: float) -> None:
    """Every path got its labels; repeats (after a crash) carry the very same labels."""
    deadline = time.monotonic() + timeout
    for path in paths:
        bodies = receiver.wait_for(path, 1, timeout=max(1.0, deadline - time.monotonic()))
        assert all(body == bodies[0] for body in bodies), f"{path}: different labels: {bodies}"


def test_mongo_killed_and_restarted_under_a_stream_of_events(stack: Stack) -> None:
    receiver = Receiver(secrets=[SIGNING_SECRET])
    stack.start_worker()
    answers: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            path = f"/stream/{n}"
            try:
                answer = stack.post(event(1, seed=10_000 + n, callback_url=receiver.url(path)))
                answers.append((path, answer.status_code, answer.text))
            except requests.RequestException as exc:
                answers.append((path, 0, repr(exc)))
            n += 1
            time.sleep(0.05)

    client = threading.Thread(target=stream)
    client.start()
    try:
        time.sleep(2)
        mongod = stack.mongo.process
        assert mongod is not None  # the stack started its own MongoDB
        mongod.send_signal(signal.SIGKILL)
        mongod.wait()
        time.sleep(3)
        stack.mongo.start()  # same data dir, same port
        time.sleep(3)
    finally:
        stop.set()
        client.join()
        statuses = {status for _, status, _ in answers}
        assert statuses <= {200, 503}, [a for a in answers if a[1] not in (200, 503)][:3]
        assert 503 in statuses and 200 in statuses
        assert all("Traceback" not in text for _, _, text in answers)
        accepted = [(path, text) for path, status, text in answers if status == 200]
        assert_each_delivered_once_alike(receiver, [path for path, _ in accepted], timeout=90)
        receiver.close()
        for _, text in accepted:  # and each task is settled as done
            stack.wait_status(json.loads(text)["task_id"], "done", timeout=30)


def test_callback_receiver_down_for_a_while_then_back(stack: Stack) -> None:
    port = free_port()  # nothing listens here yet
    paths = [f"/late/{n}" for n in range(10)]
    for n, path in enumerate(paths):
        answer = stack.post(
            event(1, seed=20_000 + n, callback_url=f"http://127.0.0.1:{port}{path}")
        )
        assert answer.status_code == 200
    stack.start_worker()
    time.sleep(4)  # every delivery fails and is retried meanwhile
    pending = stack.listing("pending", limit=100)
    assert len(pending) == 10
    assert any("unreachable" in (t["last_error"] or "") for t in pending)
    receiver = Receiver(port, secrets=[SIGNING_SECRET])
    try:
        assert_each_delivered_once_alike(receiver, paths, timeout=60)
    finally:
        receiver.close()


def test_workers_killed_at_random_moments_over_100_events(stack: Stack) -> None:
    receiver = Receiver(secrets=[SIGNING_SECRET])
    paths = [f"/chaos/{n}" for n in range(100)]
    ids = []
    for n, path in enumerate(paths):
        answer = stack.post(event(1, seed=30_000 + n, callback_url=receiver.url(path)))
        assert answer.ok
        ids.append(answer.json()["task_id"])
    rng = random.Random(4)
    stack.start_worker()
    stack.start_worker()
    deadline = time.monotonic() + 150
    kills = 0
    try:
        while len({p for p, _ in receiver.received}) < 100 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 1.2))
            alive = [w for w in stack.workers if w.poll() is None]
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            stack.start_worker()
        assert kills >= 3
        assert_each_delivered_once_alike(receiver, paths, timeout=60)
        for task_id in ids:  # a task whose worker died after its POST is done all the same
            stack.wait_status(task_id, "done", timeout=60)
    finally:
        receiver.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs for the embedded MongoDB's data (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_gives_clear_errors_and_no_corruption(tmp_path: Path, small_disk: Path) -> None:
    with Stack(tmp_path, mongo_dir=small_disk / "mongo", **FAULT_SETTINGS) as stack:
        accepted: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for n in range(200):
            answer = stack.post(event(2, seed=40_000 + n, size=(160, 120)))
            assert answer.status_code in (200, 503), answer.text
            (accepted if answer.status_code == 200 else refused).append(answer.json())
            if len(refused) >= 3:
                break
        assert accepted and refused, "the disk never filled"
        assert "refused the write: database or disk is full" in refused[0]["error"]
        assert requests.get(f"{stack.base}/tasks/", timeout=10).status_code == 200

        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        ok = stack.post(event(1, seed=49_999))
        assert ok.status_code == 200, ok.text  # space again: it takes events again at once
    # Restarted on the same files: every acknowledged task is there, and the files are sound.
    server = EmbeddedMongo(small_disk / "mongo", free_port())
    server.start()
    try:
        db: Database[dict[str, Any]] = MongoClient(server.uri)["hook"]
        ids = {doc["_id"] for doc in db.tasks.find({}, {"_id": 1})}
        assert {a["task_id"] for a in accepted} | {ok.json()["task_id"]} <= ids
        assert db.command("ping")["ok"] == 1
        for task_id in ids:
            assert db.images.count_documents({"task_id": task_id}) >= 1
    finally:
        server.stop()


def test_read_only_data_dir_at_start_is_a_clear_error(tmp_path: Path, small_disk: Path) -> None:
    (small_disk / "data").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_DATA_DIR=str(small_disk / "data"),
        HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND=f"127.0.0.1:{free_port()}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "hook", "run"],
        cwd=procs.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    assert "data dir" in output and "is not usable: Read-only file system" in output, output


def test_a_trickling_receiver_costs_one_timeout_a_try_and_delays_no_one(tmp_path: Path) -> None:
    """A receiver that sends its answer a byte at a time held each POST 60-90 s against a 5 s
    HOOK_CALLBACK_TIMEOUT (the deadline covered only the body), its tasks were counted
    delivered, and a dozen of them filled the delivery slots: healthy events waited a minute.
    Now each try is cut at the timeout and retried, and the healthy events go through."""
    timeout = 2.0
    trickle = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", every=0.25)
    receiver = Receiver(secrets=[SIGNING_SECRET])
    try:
        with Stack(tmp_path, **FAULT_SETTINGS, HOOK_CALLBACK_TIMEOUT=f"{timeout:g}") as stack:
            slow = [
                stack.post(event(1, seed=50_000 + n, callback_url=f"{trickle.url}/{n}")).json()
                for n in range(12)
            ]
            healthy = [f"/healthy/{n}" for n in range(10)]
            for n, path in enumerate(healthy):
                assert stack.post(event(1, seed=51_000 + n, callback_url=receiver.url(path))).ok
            started = time.monotonic()
            stack.start_worker()
            for path in healthy:
                receiver.wait_for(path, 1, timeout=60)
            took = time.monotonic() - started
            # labeling 22 one-image events takes a few seconds here; the trickling POSTs may
            # hold the slots one timeout at a time, never the minutes they held them before
            assert took < 30, f"the healthy events waited {took:.0f} s"
            time.sleep(timeout + 1)
            assert trickle.held, "no trickling POST was cut short"
            assert max(trickle.held) < timeout + 1.5, trickle.held
            pending = {t["id"]: t for t in stack.listing("pending", limit=100)}
            for accepted in slow:  # never counted delivered: retried, saying why
                task = pending[accepted["task_id"]]
                assert f"timed out after {timeout:g} s" in (task["last_error"] or ""), task
    finally:
        trickle.close()
        receiver.close()


def test_a_worker_killed_once_its_last_tries_callback_is_answered_fails_nothing(
    tmp_path: Path,
) -> None:
    """Killed between the receiver's 200 and the (batched) write of the delivery, on the task's
    last attempt: the lease sweep used to fail it ("lease expired") and send a failure report
    for labels that had arrived, and 19 of 916 such tasks had no picture. Its labels are
    stored, so it is sent again, the same bytes, and its picture is there."""
    settings: FaultSettings = {**FAULT_SETTINGS, "HOOK_MAX_ATTEMPTS": "1"}
    stack = Stack(tmp_path, **settings)
    killed: list[int] = []

    def kill_the_worker(path: str) -> None:
        if not killed:
            worker = stack.workers[0]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    receiver = Receiver(secrets=[SIGNING_SECRET], after=kill_the_worker)
    try:
        with stack:
            task_id = stack.post(event(1, seed=52_000, callback_url=receiver.url("/last"))).json()[
                "task_id"
            ]
            stack.start_worker()
            receiver.wait_for("/last", 1, timeout=60)
            assert stack.workers[0].wait(timeout=10) == -signal.SIGKILL
            stack.start_worker()  # sweeps the lease once it expires, and labels again
            done = stack.wait_status(task_id, "done", timeout=60)
            bodies = receiver.bodies("/last")
            assert len(bodies) == 2 and bodies[0] == bodies[1], bodies
            assert bodies[0]["status"] == "success" and done["last_error"] is None, done
            # its pictures too: drawn from the originals kept with its labels, not by a worker
            picture = requests.get(f"{stack.url}/{task_id}/images/0.jpg", timeout=30)
            assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    finally:
        receiver.close()
