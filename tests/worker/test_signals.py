"""worker.py as a real process: its exit codes, and what the first and second signal do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pymongo.database import Database

from hook.cli.argv import worker_argv
from hook.config.table import DEFAULT_MODEL
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.task import Status
from tests import procs
from tests.factories import API_KEY, DATA, SIGNING_SECRET, make_event
from tests.receiver import Receiver

pytestmark = pytest.mark.slow
LEASE = 2.0
# worker.py with a start-up that fails as no setting explains: a bug, say.
BROKEN_START = """
import runpy, hook.worker.main
def broken(settings):
    raise RuntimeError("a bug while building the detector")
hook.worker.main.detector_from = broken
runpy.run_path("worker.py", run_name="__main__")
"""


@pytest.fixture
def env(mongo: EmbeddedMongo, db_name: str) -> dict[str, str]:
    return procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_MONGO_URI=mongo.uri,
        HOOK_MONGO_DB=db_name,
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_MODEL=str(DEFAULT_MODEL),
        HOOK_LEASE_SECONDS=str(LEASE),
        HOOK_CALLBACK_TIMEOUT="30",
        HOOK_SIGNING_SECRET=SIGNING_SECRET,
    )


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def enqueue(store: TaskStore, url: str, seed: int) -> str:
    task_id, _ = store.enqueue(make_event(seed, callback_url=url))
    return task_id


def wait_status(store: TaskStore, task_id: str, status: Status, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (task := store.get(task_id)) is None or task.status is not status:
        assert time.monotonic() < deadline, f"task {task_id} is {task}, not {status}"
        time.sleep(0.05)


def test_a_configuration_error_exits_2(env: dict[str, str]) -> None:
    """2 = do not restart: the systemd units (RestartPreventExitStatus=2) and `hook run`."""
    no_key = {k: v for k, v in env.items() if k != "HOOK_API_KEY"}
    done = run(worker_argv(), no_key)
    assert done.returncode == 2 and "cannot start: " in done.stderr
    assert "HOOK_API_KEY" in done.stderr and "Traceback" not in done.stderr
    done = run(worker_argv(), {**env, "HOOK_MODEL": "/nonexistent/model.onnx"})
    assert done.returncode == 2 and "/nonexistent/model.onnx does not exist" in done.stderr


def test_an_unexpected_failure_at_start_up_exits_1(env: dict[str, str]) -> None:
    done = run([sys.executable, "-c", BROKEN_START], env)
    assert done.returncode == 1, done.stderr
    assert "cannot start" in done.stderr
    assert "RuntimeError: a bug while building the detector" in done.stderr  # with its traceback


def test_sigint_stops_an_idle_worker_with_exit_0(
    env: dict[str, str], db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    store = TaskStore(db)
    where = f"/cb/{uuid.uuid4().hex}"
    worker = procs.start(worker_argv(), env, tmp_path / "worker.log")
    try:
        wait_status(store, enqueue(store, receiver.url(where), seed=1), Status.DONE)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(10) == 0
    finally:
        procs.stop(worker)
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def test_a_second_signal_exits_1_at_once_and_the_lease_brings_the_task_back(
    env: dict[str, str], db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    store = TaskStore(db)
    where = f"/cb/{uuid.uuid4().hex}"
    receiver.delay[where] = 20  # the delivery hangs: the warm stop waits for it
    log = tmp_path / "worker.log"
    worker = procs.start(worker_argv(), env, log)
    try:
        task_id = enqueue(store, receiver.url(where), seed=2)
        receiver.wait_for(where, 1, timeout=30)
        worker.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(1.5)  # a warm stop: still waiting for the callback's answer
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(5) == 1
        assert time.monotonic() - started < 2
    finally:
        procs.stop(worker)
    task = store.get(task_id)
    assert task is not None and task.status is Status.RUNNING  # still leased to the dead worker
    time.sleep(LEASE + 0.5)
    assert store.requeue_expired(8) == (1, 0)  # any worker's sweep does this
    wait_status(store, task_id, Status.QUEUED, timeout=1)
    output = log.read_text()
    assert "Traceback" not in output
    assert output.index("warm stop") < output.index("second SIGTERM: exiting now")


def test_sighup_reads_the_rules_again_even_when_the_file_looks_unchanged(
    env: dict[str, str], db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    store = TaskStore(db)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[camera]]\nmatch = "*"\nlabels = ["dog"]\n')
    photo = (DATA / "dog.jpg").read_bytes()
    worker = procs.start(worker_argv(), {**env, "HOOK_RULES": str(rules)}, tmp_path / "w.log")
    try:
        before, after = f"/cb/{uuid.uuid4().hex}", f"/cb/{uuid.uuid4().hex}"
        store.enqueue(make_event(callback_url=receiver.url(before), images=[photo]))
        (body,) = receiver.wait_for(before, 1, timeout=60)
        assert [set(found) for found in body["labels"].values()] == [{"dog"}]
        stamp = rules.stat()
        rules.write_text('[[camera]]\nmatch = "*"\nlabels = ["car"]\n')  # same size, same inode
        os.utime(rules, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # and the same mtime
        worker.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # the main thread acts on it within POLL_SECONDS
        store.enqueue(make_event(callback_url=receiver.url(after), images=[photo]))
        (body,) = receiver.wait_for(after, 1, timeout=60)
        assert [set(found) for found in body["labels"].values()] == [{"car"}]
        assert worker.poll() is None  # SIGHUP does not stop it
    finally:
        procs.stop(worker)


def test_an_invalid_rules_file_is_a_configuration_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[camera]]\nmatch = "*"\nmin_score = 2\n')
    done = run(worker_argv(), {**env, "HOOK_RULES": str(rules)})
    assert done.returncode == 2, done.stderr
    assert "rules.toml:3: camera[0].min_score" in done.stderr  # the file, line and key


def test_a_rules_file_naming_a_label_the_model_lacks_stops_the_start(
    env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[camera]]\nmatch = "*"\nlabels = ["persn"]\n')
    done = run(worker_argv(), {**env, "HOOK_RULES": str(rules)})
    assert done.returncode == 2, done.stderr
    assert "rules.toml:3: camera[0].labels: 'persn' is not a label the model reports" in done.stderr
