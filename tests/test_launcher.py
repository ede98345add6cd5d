"""`python -m hook run`: embedded MongoDB + gunicorn in the foreground; one Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import procs
from tests.factories import API_KEY, event
from tests.loopback import free_port
from tests.procs import children_of, servers_for
from tests.receiver import Receiver

pytestmark = pytest.mark.slow


def test_run_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_DATA_DIR=str(data_dir),
        HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND=f"127.0.0.1:{port}",
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_WORKERS="2",
    )
    receiver = Receiver()
    log = tmp_path / "run.log"
    launcher = procs.start([sys.executable, "-m", "hook", "run"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert procs.wait_http(f"{base}/tasks/", launcher, timeout=60).json()["mongo"] == "up"
        payload = event(2, callback_url=receiver.url("/cb/run"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=payload, timeout=10)
        assert answer.status_code == 200
        (labels,) = receiver.wait_for("/cb/run", 1)
        assert labels["status"] == "success" and len(labels["labels"]) == 2
        assert len(servers_for(data_dir / "mongo")) == 1
        photos = tmp_path / "photos"
        photos.mkdir()
        for name in ("dog.jpg", "person.jpg"):
            (photos / name).write_bytes((procs.ROOT / "tests/data" / name).read_bytes())
        played = subprocess.run(
            [sys.executable, "-m", "hook", "simulate", f"{base}/tasks/{API_KEY}",
             "--images", str(photos), "--timeout", "60"],
            cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert played.returncode == 0, played.stdout + played.stderr
        refused = subprocess.run(
            [sys.executable, "-m", "hook", "simulate", f"{base}/tasks/wrong-key-0123456789",
             "--images", str(photos), "--timeout", "5"],
            cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode == 1 and "POST 403" in refused.stdout
        assert "dog.jpg: POST 200" in played.stdout and '"bicycle"' in played.stdout
        assert "person.jpg: labels" in played.stdout and '"horse"' in played.stdout
        status = subprocess.run(
            [sys.executable, "-m", "hook", "status"],
            cwd=procs.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "workers: 2 alive" in status.stdout, status.stdout + status.stderr
        assert "done 3" in status.stdout
    finally:
        code = procs.stop(launcher, signal.SIGINT, timeout=60)
        receiver.close()
    output = log.read_text()
    assert code == 0, output
    assert servers_for(data_dir / "mongo") == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/tasks/", timeout=2)
    assert "hook is up" in output and "stopping web" in output and API_KEY not in output
    assert "stopping worker 2" in output and "worker.py" not in output.split("stopping")[-1]
    assert output.count("hook.worker: worker ") == 4  # two started, two stopped


def test_run_without_api_key_is_a_clear_error(tmp_path: Path) -> None:
    launcher = procs.start(
        [sys.executable, "-m", "hook", "run"], procs.hook_env(), tmp_path / "run.log"
    )
    assert launcher.wait(30) == 2
    assert "HOOK_API_KEY is not set" in (tmp_path / "run.log").read_text()


def wait_until(check, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not in {timeout} s: {what}"
        time.sleep(0.2)


@pytest.mark.fault
def test_run_restarts_what_dies_and_sighup_stops_everything(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY, HOOK_DATA_DIR=str(data_dir), HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND=f"127.0.0.1:{port}", HOOK_CALLBACK_HOSTS="127.0.0.1", HOOK_WORKERS="1",
    )  # fmt: skip
    log = tmp_path / "run.log"
    launcher = procs.start([sys.executable, "-m", "hook", "run"], env, log)
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    try:
        procs.wait_http(f"{base}/tasks/", launcher, timeout=60)
        wait_until(lambda: "hook is up" in log.read_text(), what="hook is up")
        (mongo,) = servers_for(data_dir / "mongo")
        os.kill(mongo, signal.SIGKILL)
        wait_until(lambda: "the embedded MongoDB is back" in log.read_text(), what="restart")
        assert servers_for(data_dir / "mongo") not in ([], [mongo])  # a new one, none defunct
        payload = event(1, callback_url=receiver.url("/cb/again"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=payload, timeout=10)
        assert answer.status_code == 200, answer.text
        receiver.wait_for("/cb/again", 1)
        (worker,) = [p for p in children_of(launcher.pid)
                     if b"worker.py" in Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
        os.kill(worker, signal.SIGKILL)
        died = f"worker 1 (pid {worker}) exited with code -9; restarting"
        wait_until(lambda: died in log.read_text(), what="worker restart")
        wait_until(lambda: log.read_text().count("started worker 1") == 2, what="worker again")
        started = children_of(launcher.pid)
        launcher.send_signal(signal.SIGHUP)  # the terminal closed
        assert launcher.wait(60) == 0
    finally:
        if launcher.poll() is None:
            procs.stop(launcher, signal.SIGINT, timeout=60)
        receiver.close()
    assert servers_for(data_dir / "mongo") == []
    assert not [p for p in started if Path(f"/proc/{p}").exists()]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/tasks/", timeout=2)
    output = log.read_text()
    assert f"the embedded MongoDB (pid {mongo}) exited with code -9; restarting it" in output
