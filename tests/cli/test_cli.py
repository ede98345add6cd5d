"""The command line: Camio registration against a local stand-in for Camio's API, and status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo.database import Database

import hook.cli
from hook.cli.camio_hooks import CamioClient
from hook.cli.commands import COMMANDS, main
from hook.errors import CamioError, ConfigError, HookError
from hook.metrics.recorder import Metrics
from hook.store import Heartbeat, TaskStore
from tests import procs
from tests.cli.camio import TOKEN, FakeCamio
from tests.factories import API_KEY, make_event
from tests.loopback import free_port, trickler
from tests.procs import hook_cli as cli
from tests.procs import servers_for


@pytest.fixture
def camio() -> Iterator[FakeCamio]:
    fake = FakeCamio()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_register_by_camera(camio: FakeCamio) -> None:
    done = cli(
        "register",
        "--callback-url",
        "https://h:8000/tasks/k",
        "--camera",
        "front door",
        CAMIO_OAUTH_TOKEN=TOKEN,
        CAMIO_API_URL=camio.url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hook-42"
    (req,) = camio.requests
    assert req["method"] == "POST" and req["path"] == "/api/users/me/hooks"
    assert req["auth"] == f"token {TOKEN}"
    assert req["body"] == {
        "callback_url": "https://h:8000/tasks/k",
        "type": "query_match",
        "parsed_query": "camera == 'front door'",
    }


def test_register_fills_in_the_key_from_the_environment(camio: FakeCamio) -> None:
    done = cli(
        "register",
        "--callback-url",
        "https://h:8000/tasks/{key}",
        "--camera",
        "x",
        CAMIO_OAUTH_TOKEN=TOKEN,
        CAMIO_API_URL=camio.url,
        HOOK_API_KEY=API_KEY,
    )
    assert done.returncode == 0
    assert camio.requests[0]["body"]["callback_url"] == f"https://h:8000/tasks/{API_KEY}"
    missing = cli(
        "register",
        "--callback-url",
        "https://h/tasks/{key}",
        "--camera",
        "x",
        CAMIO_OAUTH_TOKEN=TOKEN,
        CAMIO_API_URL=camio.url,
    )
    assert missing.returncode == 2 and "HOOK_API_KEY is not set" in missing.stderr


def test_register_by_query_with_token_option(camio: FakeCamio) -> None:
    done = cli(
        "register",
        "--callback-url",
        "https://h/tasks/k",
        "--query",
        "1==1",
        "--token",
        TOKEN,
        "--api-url",
        camio.url,
    )
    assert done.returncode == 0 and camio.requests[0]["body"]["parsed_query"] == "1==1"


def test_list_and_unregister(camio: FakeCamio) -> None:
    listed = cli("hooks", CAMIO_OAUTH_TOKEN=TOKEN, CAMIO_API_URL=camio.url)
    assert listed.returncode == 0
    assert "hook-42" in listed.stdout and "camera == 'porch'" in listed.stdout
    assert API_KEY not in listed.stdout and "/tasks/<key>" in listed.stdout
    deleted = cli("unregister", "hook-42", CAMIO_OAUTH_TOKEN=TOKEN, CAMIO_API_URL=camio.url)
    assert deleted.returncode == 0 and "deleted hook hook-42" in deleted.stdout
    assert [(r["method"], r["path"]) for r in camio.requests] == [
        ("GET", "/api/users/me/hooks"),
        ("DELETE", "/api/users/me/hooks/hook-42"),
    ]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["hooks"], {}, "no Camio token: set CAMIO_OAUTH_TOKEN"),
        (["hooks"], {"CAMIO_OAUTH_TOKEN": "wrong"}, "Camio answered 401 to GET /users/me/hooks"),
        (["unregister", "nope"], {"CAMIO_OAUTH_TOKEN": TOKEN}, "Camio answered 404 to DELETE"),
        (["unregister", ".."], {"CAMIO_OAUTH_TOKEN": TOKEN}, "/users/me/hooks/.."),
    ],
)
def test_errors_are_one_clear_line(
    camio: FakeCamio, args: list[str], env: dict, words: str
) -> None:
    done = cli(*args, CAMIO_API_URL=camio.url, **env)
    assert done.returncode != 0
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_no_network_is_one_clear_line() -> None:
    done = cli(
        "hooks", CAMIO_OAUTH_TOKEN=TOKEN, CAMIO_API_URL=f"http://127.0.0.1:{free_port()}/api"
    )
    assert done.returncode == 1 and "cannot reach Camio" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def beat(store: TaskStore, worker: str, **info: Any) -> None:
    """A heartbeat as worker.py records it: `info` over a running worker's facts."""
    facts: dict[str, Any] = {
        "host": "host",
        "pid": 1,
        "state": "running",
        "started_at": time.time(),
        "every": 10.0,
        "done": 0,
        "in_flight": 0,
    }
    store.beat(Heartbeat(worker=worker, **{**facts, **info}))


def test_status_reports_queue_failures_and_workers(mongo, db: Database, db_name: str) -> None:
    store = TaskStore(db)
    ids = [store.enqueue(make_event(seed=s))[0] for s in range(3)]
    store.claim("w1", 60)
    store.fail(ids[0], "w1", "callback answered 404: gone")
    beat(store, "host:1:abc", pid=1, state="running", every=10, done=7, in_flight=1)
    beat(store, "host:2:old", state="running", every=10)
    db.workers.update_one({"_id": "host:2:old"}, {"$set": {"seen_at": time.time() - 3600}})
    done = cli("status", "--json", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["tasks"] == {"queued": 2, "running": 0, "done": 0, "failed": 1}
    assert data["oldest_pending_seconds"] is not None and data["oldest_pending_seconds"] >= 0
    assert data["recent_failures"][0]["reason"] == "callback answered 404: gone"
    states = {w["id"]: w["state"] for w in data["workers"]}
    assert states == {"host:1:abc": "running", "host:2:old": "gone"}
    text = cli("status", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name).stdout
    assert "tasks: queued 2, running 0, done 0, failed 1" in text
    assert "workers: 1 alive" in text and "callback answered 404: gone" in text


def test_status_with_mongo_down_says_which_server_at_once() -> None:
    """It waited the whole selection timeout (5 s by default), then named only pymongo's
    exception; the servers in the URI are tried directly, and named."""
    port = free_port()
    started = time.monotonic()
    done = cli("status", HOOK_MONGO_URI=f"mongodb://user:secret@127.0.0.1:{port}/?authSource=x")
    assert time.monotonic() - started < 4  # the default HOOK_MONGO_TIMEOUT_MS is 5,000
    assert done.returncode == 1 and done.stderr == (
        f"hook status: MongoDB at 127.0.0.1:{port} (HOOK_MONGO_URI) does not answer: start it, "
        "or point HOOK_MONGO_URI at one that runs\n"
    )


def test_status_never_starts_a_server_and_says_how_to(tmp_path) -> None:
    port = free_port()
    done = cli("status", HOOK_DATA_DIR=str(tmp_path), HOOK_EMBEDDED_PORT=str(port))
    assert done.returncode == 1 and done.stderr == (
        f"hook status: the embedded MongoDB (127.0.0.1:{port}, data in {tmp_path / 'mongo'}) is "
        "not running: start the service with `.venv/bin/hook run` (or the store alone with "
        "`.venv/bin/hook mongo`); "
        "with systemd: sudo systemctl start hook-mongo\n"
    )
    assert servers_for(tmp_path / "mongo") == []


def test_status_shows_stopped_workers_and_retrying_tasks(mongo, db: Database, db_name: str) -> None:
    store = TaskStore(db)
    for seed in range(3):
        store.enqueue(make_event(seed=seed))
    claimed = store.claim("w1", 60)
    assert claimed is not None
    store.reschedule(claimed.id, "w1", time.time() + 60, "callback timed out")
    beat(store, "host:1:run", pid=1, state="running")
    beat(store, "host:2:bye", pid=2, state="stopped")
    beat(store, "host:3:dead", pid=3, state="running")
    day_ago = time.time() - 20 * 3600  # a clean stop stays "stopped" until housekeeping drops it
    db.workers.update_many(
        {"_id": {"$in": ["host:2:bye", "host:3:dead"]}}, {"$set": {"seen_at": day_ago}}
    )
    done = cli("status", "--json", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["tasks"]["queued"] == 3 and data["retrying"] == 1
    states = {w["id"]: w["state"] for w in data["workers"]}
    assert states == {"host:1:run": "running", "host:2:bye": "stopped", "host:3:dead": "gone"}
    text = cli("status", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name).stdout
    assert "tasks: queued 3 (1 retrying), running 0, done 0, failed 0" in text
    assert "workers: 1 alive, 1 stopped, 1 gone" in text
    assert re.search(r"^  host:2:bye  stopped  seen 20\.0 h ago", text, re.M)


def test_status_shows_each_callback_hosts_deliveries_failing_first(
    mongo, db: Database, db_name: str
) -> None:
    metrics = Metrics(TaskStore(db))
    now = time.time()
    ok, bad = "https://www.camio.com/api/cb/s3cret?t=1", "http://hooks.camio.com:8443/cb/s3cret"
    for seconds in (0.08, 0.12, 0.1):
        metrics.delivery(ok, "delivered", seconds, now - 30)
    metrics.delivery(bad, "delivered", 0.2, now - 600)
    metrics.delivery(bad, "retried", 10.0, now - 300)
    metrics.delivery(bad, "refused", 0.05, now - 5)
    done = cli("status", "--json", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name)
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)["callback_hosts"]
    assert [h["host"] for h in hosts] == ["hooks.camio.com:8443", "www.camio.com:443"]
    failing, fine = hosts
    assert {k: failing[k] for k in ("delivered", "retried", "refused", "gave_up")} == {
        "delivered": 1,
        "retried": 1,
        "refused": 1,
        "gave_up": 0,
    }
    assert failing["last_outcome"] == "refused" and 4 <= failing["last_seconds_ago"] < 60
    assert failing["mean_seconds"] == pytest.approx(10.25 / 3)
    assert fine["delivered"] == 3 and fine["mean_seconds"] == pytest.approx(0.1)
    assert fine["last_outcome"] == "delivered" and fine["last_at"].endswith("+00:00")
    text = cli("status", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name).stdout
    assert "callback hosts: 2 " in text and "s3cret" not in text
    head, first, second = text.splitlines()[-3:]
    assert head.split() == [
        "HOST",
        "DELIVERED",
        "RETRIED",
        "REFUSED",
        "GAVE",
        "UP",
        "MEAN",
        "P90",
        "LAST",
    ]
    assert first.split()[:5] == ["hooks.camio.com:8443", "1", "1", "1", "0"]
    assert first.split()[5:7] == ["3.4", "s"] and re.search(r" refused \d+ s ago$", first)
    assert second.split()[:7] == ["www.camio.com:443", "3", "0", "0", "0", "100", "ms"]
    assert re.search(r" delivered (3\d|4\d) s ago$", second)


def test_status_without_deliveries_says_so(mongo, db: Database, db_name: str) -> None:
    TaskStore(db).enqueue(make_event())
    done = cli("status", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name)
    assert done.stdout.splitlines()[-1] == "callback hosts: none delivered to yet"
    data = json.loads(
        cli("status", "--json", HOOK_MONGO_URI=mongo.uri, HOOK_MONGO_DB=db_name).stdout
    )
    assert data["callback_hosts"] == []


def test_deliberate_errors_are_one_line_and_bugs_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails_with(exc: Exception) -> Callable[[Any], int]:
        def command(args: Any) -> int:
            raise exc

        return command

    monkeypatch.setitem(COMMANDS, "status", fails_with(HookError("MongoDB does not answer")))
    assert main(["status"]) == 1
    assert capsys.readouterr().err == "hook status: MongoDB does not answer\n"
    monkeypatch.setitem(COMMANDS, "status", fails_with(ConfigError("HOOK_X is invalid")))
    assert main(["status"]) == 2
    for bug in (ValueError("a bug"), OSError(5, "a bug")):
        monkeypatch.setitem(COMMANDS, "status", fails_with(bug))
        with pytest.raises(type(bug)):  # not caught: Python prints the traceback, exit code 1
            main(["status"])


def test_a_bug_shows_its_traceback_and_exits_1() -> None:
    code = (
        "import sys; from hook.cli import commands; commands.COMMANDS['status'] = None; "
        "sys.exit(commands.main(['status']))"
    )
    crashed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=procs.ROOT,
        text=True,
        capture_output=True,
        env=procs.hook_env(),
        timeout=60,
        check=False,
    )
    assert crashed.returncode == 1 and "Traceback" in crashed.stderr
    assert "TypeError: 'NoneType' object is not callable" in crashed.stderr


def test_the_entry_points_and_their_help() -> None:
    assert callable(hook.cli.main) and hook.cli.main is main  # the `hook` console script
    top = cli("--help")
    assert top.returncode == 0 and "An edge" not in top.stdout
    assert "examples:" in top.stdout and "\n  .venv/bin/hook run\n" in top.stdout
    for command in ("run", "web", "mongo", "status", "simulate", "settings"):
        assert re.search(rf"^    {command} +\w", top.stdout, re.M), command  # each has a help
    register = cli("register", "--help").stdout
    assert "{key} is replaced by $HOOK_API_KEY" in " ".join(register.split())
    simulate = " ".join(cli("simulate", "--help").stdout.split())
    for option in ("--listen", "--port", "--camera", "--timeout", "--json"):
        assert re.search(rf"{option} \S+ [a-z]", simulate) or f"{option} print" in simulate


def test_settings_effective_shows_the_values_in_force_with_secrets_hidden() -> None:
    done = cli(
        "settings",
        "--effective",
        HOOK_API_KEY=API_KEY,
        HOOK_WORKERS="3",
        HOOK_MONGO_URI="mongodb://hook:s3cret-pw@db1,db2/hook?replicaSet=rs0",
        CAMIO_OAUTH_TOKEN=TOKEN,
        HOOK_WORKER="2",
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert API_KEY not in done.stdout and TOKEN not in done.stdout
    assert "s3cret-pw" not in done.stdout
    assert re.fullmatch(r"HOOK_API_KEY +<hidden>  \(environment\)", rows["HOOK_API_KEY"])
    assert re.fullmatch(r"HOOK_WORKERS +3  \(environment\)", rows["HOOK_WORKERS"])
    assert re.fullmatch(r"HOOK_BIND +127\.0\.0\.1:8000  \(default\)", rows["HOOK_BIND"])
    assert "mongodb://hook:<hidden>@db1,db2/hook?replicaSet=rs0" in rows["HOOK_MONGO_URI"]
    assert "<hidden>" in rows["CAMIO_OAUTH_TOKEN"]
    assert "not settings, so ignored (a typo?): HOOK_WORKER" in done.stdout
    bad = cli("settings", "--effective", HOOK_BIND="8000")
    assert bad.returncode == 2 and "HOOK_BIND='8000' is invalid" in bad.stderr


def test_a_trickling_camio_api_ends_at_the_timeout() -> None:
    """Camio's API in the CLI is bounded whole too: an answer dripped a byte at a time, each
    within the read timeout, ends at the client's timeout with one clear line."""
    url, server = trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0.1)
    started = time.monotonic()
    try:
        with pytest.raises(CamioError, match=r"did not answer within 1 s"):
            CamioClient(TOKEN, api_url=url, timeout=1.0).hooks()
    finally:
        server.close()
    assert time.monotonic() - started < 2.5
