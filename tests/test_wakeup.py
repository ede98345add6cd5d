"""The wake-up sockets (hook.wakeup) for real, in a temporary data dir, and the web ringing
them after a POST through the real app over a real nx-27017."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from pymongo.database import Database

from hook.store import TaskStore
from hook.wakeup import MAX_PATH, Doorbell, WakeUp, wake_dir
from hook.web.app import create_app
from tests.factories import API_KEY, ROOT, event, make_settings
from tests.loopback import serve


def sockets_in(data_dir: Path) -> list[str]:
    return sorted(p.name for p in wake_dir(data_dir).glob("*.sock"))


def test_a_ring_from_another_process_wakes_the_wait(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as wake:
        assert wake.path is not None and wake.path.parent == tmp_path / "wake"
        ring = "import sys; from hook.wakeup import Doorbell; print(Doorbell(sys.argv[1]).ring())"
        bell = subprocess.run(
            [sys.executable, "-c", ring, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert bell.stdout.strip() == "1"
        started = time.monotonic()
        assert wake.wait(30) is True
        assert time.monotonic() - started < 1  # the ring was queued: no wait at all


def test_a_ring_ends_a_wait_in_progress_soon(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as wake:
        rang: list[float] = []

        def ring() -> None:
            time.sleep(0.1)
            rang.append(time.monotonic())
            Doorbell(tmp_path).ring()

        threading.Thread(target=ring).start()
        assert wake.wait(30) is True
        assert time.monotonic() - rang[0] < 1


def test_many_rings_are_one_wake_up(tmp_path: Path) -> None:
    bell = Doorbell(tmp_path)
    with WakeUp.open(tmp_path) as wake:
        for _ in range(200):  # past the socket's queue: the rest are dropped, not raised
            assert bell.ring() == 1
        for _ in range(20):
            wake.ring()
        assert wake.wait(5) is True
        assert wake.wait(0.05) is False


def test_without_a_ring_the_wait_times_out(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as wake:
        started = time.monotonic()
        assert wake.wait(0.2) is False
        assert time.monotonic() - started >= 0.19
        assert wake.wait(0) is False


def test_ring_from_a_thread_of_the_process_wakes_it(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as wake:
        threading.Timer(0.1, wake.ring).start()
        started = time.monotonic()
        assert wake.wait(30) is True
        assert time.monotonic() - started < 5


def test_the_socket_is_the_owners_alone(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as wake:
        assert wake.path is not None
        assert stat.S_IMODE(os.stat(wake_dir(tmp_path)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(wake.path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(wake.path).st_mode)


def test_each_worker_has_its_own_socket_and_each_is_rung(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as one, WakeUp.open(tmp_path) as two:
        assert len(sockets_in(tmp_path)) == 2
        (wake_dir(tmp_path) / "notes.txt").write_text("not a socket")
        assert Doorbell(tmp_path).ring() == 2
        assert one.wait(5) is True and two.wait(5) is True


def test_a_dead_workers_socket_is_removed_by_the_doorbell(tmp_path: Path) -> None:
    with WakeUp.open(tmp_path) as live:
        stale = wake_dir(tmp_path) / "999999-dead.sock"
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(stale))
        dead.close()  # as after a kill -9: the file stays, nobody reads it
        assert stale.exists()
        assert Doorbell(tmp_path).ring() == 1
        assert not stale.exists()
        assert live.path is not None and live.path.exists()
        assert live.wait(5) is True


def test_close_removes_the_socket(tmp_path: Path) -> None:
    wake = WakeUp.open(tmp_path)
    assert wake.path is not None and wake.path.exists()
    wake.close()
    assert not wake.path.exists() and sockets_in(tmp_path) == []
    assert Doorbell(tmp_path).ring() == 0
    wake.close()  # twice is harmless
    started = time.monotonic()
    assert wake.wait(0.05) is False  # closed: a plain timed wait, not a spin
    assert time.monotonic() - started >= 0.04


def test_no_wake_dir_yet_is_nothing_to_ring(tmp_path: Path) -> None:
    assert Doorbell(tmp_path / "nobody").ring() == 0
    assert not (tmp_path / "nobody").exists()


def fell_back(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "falls back to polling" in r.getMessage()
    ]


def test_a_path_too_long_for_a_socket_falls_back_to_a_timed_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deep = tmp_path / ("d" * (MAX_PATH - len(str(tmp_path))))
    caplog.set_level(logging.WARNING, logger="hook.wakeup")
    with WakeUp.open(deep) as wake:
        assert wake.path is None
        assert len(fell_back(caplog)) == 1
        assert wake.wait(0.05) is False
        threading.Timer(0.05, wake.ring).start()
        assert wake.wait(30) is True
        assert Doorbell(deep).ring() == 0


def test_an_unusable_data_dir_falls_back_to_a_timed_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("a file where the data dir should be")
    caplog.set_level(logging.WARNING, logger="hook.wakeup")
    with WakeUp.open(not_a_dir) as wake:
        assert wake.path is None and len(fell_back(caplog)) == 1
        wake.ring()
        assert wake.wait(5) is True
        assert wake.wait(0.05) is False
    assert Doorbell(not_a_dir).ring() == 0


def post(base: str, payload: object, key: str = API_KEY) -> requests.Response:
    return requests.post(f"{base}/tasks/{key}", data=json.dumps(payload), timeout=10)


def test_a_new_task_rings_the_workers_of_its_data_dir(tmp_path: Path, db: Database) -> None:
    settings = make_settings(HOOK_DATA_DIR=str(tmp_path / "data"))
    with WakeUp.open(settings.data_dir) as wake, serve(create_app(settings, TaskStore(db))) as base:
        assert wake.path is not None and wake.path.parent == tmp_path / "data" / "wake"
        assert wake.wait(0) is False
        answer = post(base, event(1, seed=1))
        assert answer.status_code == 200 and answer.json()["duplicate"] is False
        assert wake.wait(5) is True
        # refused and duplicate posts store no new task: no ring
        assert post(base, event(1, seed=2), key="wrong-key-0123456789").status_code == 403
        assert post(base, {"callback_url": "https://evil.example/"}).status_code == 400
        assert post(base, event(1, seed=1)).json()["duplicate"] is True
        assert wake.wait(0.2) is False
        assert post(base, event(1, seed=3)).status_code == 200
        assert wake.wait(5) is True
