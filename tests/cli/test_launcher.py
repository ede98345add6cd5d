"""`python -m hook run`: embedded MongoDB + gunicorn in the foreground; one Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
from pymongo import MongoClient

from hook.cli.launcher import TRY_IT_HOST, child_env, restart_delay
from hook.store import TaskStore
from hook.store.records import Heartbeat
from tests import procs
from tests.factories import API_KEY, SIGNING_SECRET, event, make_settings
from tests.loopback import free_port
from tests.procs import children_of, servers_for
from tests.receiver import Receiver

HINT = re.compile(
    r"try it from another terminal, with HOOK_API_KEY exported there too: (.+)$", re.M
)
UP = re.compile(r"^(\S+ \S+) INFO \[\d+\] hook\.cli\.launcher: hook is up", re.M)


def test_try_it_allows_simulate_only_while_callback_hosts_is_unset() -> None:
    settings = make_settings()
    assert TRY_IT_HOST == "127.0.0.1:8101"
    for unset in ({}, {"HOOK_CALLBACK_HOSTS": " "}):
        env = child_env({"PATH": "/bin", **unset}, make_settings(HOOK_CALLBACK_HOSTS=""))
        assert env == {"PATH": "/bin", "HOOK_CALLBACK_HOSTS": "camio.com,127.0.0.1:8101"}
    chosen = {"HOOK_CALLBACK_HOSTS": "camio.com"}
    assert child_env(chosen, settings) == chosen  # a choice of the operator's is kept


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    assert [restart_delay(n) for n in (0, 1, 2, 3, 6, 20)] == [1, 1, 2, 4, 30, 30]


def up_at(output: str) -> float:
    """The wall-clock time of the launcher's "hook is up" line (its asctime, local time)."""
    found = UP.search(output)
    assert found, output
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def worker_beats(mongo_port: int, launcher: subprocess.Popen[bytes]) -> list[Heartbeat]:
    """Heartbeats of the worker.py processes this launcher runs, from its embedded MongoDB."""
    client: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{mongo_port}", serverSelectionTimeoutMS=3000
    )
    try:
        pids = {
            p
            for p in children_of(launcher.pid)
            if b"worker.py" in Path(f"/proc/{p}/cmdline").read_bytes()
        }
        return [b for b in TaskStore(client["hook"]).workers() if b.pid in pids]
    finally:
        client.close()


def hook(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hook", *args],
        cwd=procs.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def photo_folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("dog.jpg", "person.jpg"):
        (photos / name).write_bytes((procs.ROOT / "tests/data" / name).read_bytes())
    return photos


@pytest.mark.slow
def test_run_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data_dir, port, mongo_port = tmp_path / "data", free_port(), free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_SIGNING_SECRET=SIGNING_SECRET,
        HOOK_DATA_DIR=str(data_dir),
        HOOK_EMBEDDED_PORT=str(mongo_port),
        HOOK_BIND=f"127.0.0.1:{port}",
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_WORKERS="2",
    )
    receiver = Receiver(secrets=[SIGNING_SECRET])
    log = tmp_path / "run.log"
    launcher = procs.start([sys.executable, "-m", "hook", "run"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert procs.wait_http(f"{base}/tasks/", launcher, timeout=60).json()["mongo"] == "up"
        wait_until(lambda: UP.search(log.read_text()), what="hook is up")
        # "hook is up" came after every worker had loaded its model and started beating
        beats = worker_beats(mongo_port, launcher)
        assert len(beats) == 2 and {b.state for b in beats} == {"running"}
        assert max(b.started_at for b in beats) <= up_at(log.read_text()) + 0.001
        payload = event(2, callback_url=receiver.url("/cb/run"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=payload, timeout=10)
        assert answer.status_code == 200
        (labels,) = receiver.wait_for("/cb/run", 1)
        assert labels["status"] == "success" and len(labels["labels"]) == 2
        assert len(servers_for(data_dir / "mongo")) == 1
        photos = photo_folder(tmp_path)
        played = hook(
            "simulate",
            f"{base}/tasks/{API_KEY}",
            "--images",
            str(photos),
            "--port",
            "0",
            "--timeout",
            "60",
            "--json",
            env=env,
        )
        assert played.returncode == 0, played.stdout + played.stderr
        shown = {r["photo"]: r for r in map(json.loads, played.stdout.splitlines()) if "photo" in r}
        assert {r["outcome"] for r in shown.values()} == {"labeled"}
        assert "bicycle" in shown["dog.jpg"]["labels"] and "horse" in shown["person.jpg"]["labels"]
        refused = hook(
            "simulate",
            f"{base}/tasks/wrong-key-0123456789",
            "--images",
            str(photos),
            "--port",
            "0",
            "--timeout",
            "5",
            env=env,
            timeout=60,
        )
        assert refused.returncode == 1 and "dog.jpg: refused: 403" in refused.stdout
        assert "not sent after the stop: person.jpg" in refused.stdout
        status = hook("status", env=env, timeout=60)
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
    assert output.count("hook.worker.pipeline: worker ") == 4  # two started, two stopped


@pytest.mark.slow
def test_the_readme_try_it_path_works_first_time(tmp_path: Path) -> None:
    """The quick start's `run` (HOOK_CALLBACK_HOSTS unset), then the README's simulate as is."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8101)) == 0:
            pytest.skip("port 8101 (simulate's default) is taken on this machine")
    port = free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_SIGNING_SECRET=SIGNING_SECRET,
        HOOK_DATA_DIR=str(tmp_path / "data"),
        HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND=f"127.0.0.1:{port}",
    )
    log = tmp_path / "run.log"
    launcher = procs.start([sys.executable, "-m", "hook", "run"], env, log)
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver(secrets=[SIGNING_SECRET])
    try:
        procs.wait_http(f"{base}/tasks/", launcher, timeout=60)
        played = hook(
            "simulate",
            f"{base}/tasks/{API_KEY}",
            "--images",
            str(photo_folder(tmp_path)),
            env=procs.hook_env(HOOK_API_KEY=API_KEY),
        )
        assert played.returncode == 0, played.stdout + played.stderr + log.read_text()
        assert re.search(r"^summary: 2 photos, 2 labeled; latency p50 \d+ ms", played.stdout, re.M)
        # only simulate's port is opened on this machine, not every local service
        elsewhere = event(1, callback_url=receiver.url("/cb/other-port"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=elsewhere, timeout=10)
        assert answer.status_code == 400 and answer.json()["field"] == "callback_url"
        # the up line's hint, pasted as printed into a shell with the key exported
        wait_until(lambda: HINT.search(log.read_text()), what="the try-it hint")
        hinted = HINT.search(log.read_text())
        assert hinted is not None and hinted[1].startswith(".venv/bin/hook simulate ")
        assert f"POST events to {base}/tasks/$HOOK_API_KEY (the key you exported)" in (
            log.read_text()
        )
        (tmp_path / "pasted").mkdir()
        folder = photo_folder(tmp_path / "pasted")
        pasted = subprocess.run(
            ["bash", "-c", hinted[1].replace("tests/data", str(folder))],
            cwd=procs.ROOT,
            env=procs.hook_env(HOOK_API_KEY=API_KEY),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert pasted.returncode == 0, pasted.stdout + pasted.stderr
        assert "summary: 2 photos, 2 labeled" in pasted.stdout
    finally:
        code = procs.stop(launcher, signal.SIGINT, timeout=60)
        receiver.close()
    assert code == 0, log.read_text()


@pytest.mark.slow
def test_run_with_a_bad_bind_starts_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_SIGNING_SECRET=SIGNING_SECRET,
        HOOK_DATA_DIR=str(data_dir),
        HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND="localhost",
    )
    done = hook("run", env=env, timeout=30)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "HOOK_BIND='localhost' is invalid: must be host:port" in done.stderr
    assert servers_for(data_dir / "mongo") == [] and not data_dir.exists()


@pytest.mark.slow
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


def workers_of(launcher: int) -> list[int]:
    """The PIDs of the launcher's worker.py children that are alive."""
    return [p for p in children_of(launcher) if b"worker.py" in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended meanwhile
        return b""


@pytest.mark.slow
@pytest.mark.fault
def test_run_restarts_what_dies_and_sighup_stops_everything(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = procs.hook_env(
        HOOK_API_KEY=API_KEY,
        HOOK_SIGNING_SECRET=SIGNING_SECRET,
        HOOK_DATA_DIR=str(data_dir),
        HOOK_EMBEDDED_PORT=str(free_port()),
        HOOK_BIND=f"127.0.0.1:{port}",
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_WORKERS="1",
    )
    log = tmp_path / "run.log"
    launcher = procs.start([sys.executable, "-m", "hook", "run"], env, log)
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver(secrets=[SIGNING_SECRET])
    try:
        procs.wait_http(f"{base}/tasks/", launcher, timeout=60)
        wait_until(lambda: "hook is up" in log.read_text(), what="hook is up")
        (mongo,) = servers_for(data_dir / "mongo")
        os.kill(mongo, signal.SIGKILL)
        wait_until(lambda: servers_for(data_dir / "mongo") not in ([], [mongo]), what="restart")
        (again,) = servers_for(data_dir / "mongo")  # a new one, none defunct
        assert again != mongo
        payload = event(1, callback_url=receiver.url("/cb/again"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=payload, timeout=10)
        assert answer.status_code == 200, answer.text
        receiver.wait_for("/cb/again", 1)
        (worker,) = workers_of(launcher.pid)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: workers_of(launcher.pid) not in ([], [worker]), what="worker again")
        assert len(workers_of(launcher.pid)) == 1  # one worker again, not two
        payload = event(1, seed=2, callback_url=receiver.url("/cb/new-worker"))
        answer = requests.post(f"{base}/tasks/{API_KEY}", json=payload, timeout=10)
        assert answer.status_code == 200, answer.text
        receiver.wait_for("/cb/new-worker", 1)  # the new worker labels
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
    # what the operator reads: each death and restart, by name and PID
    assert f"the embedded MongoDB (pid {mongo}) exited with code -9; restarting it" in output
    assert f"worker 1 (pid {worker}) exited with code -9; restarting" in output
