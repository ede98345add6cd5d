"""The web app over real HTTP on 127.0.0.1, backed by a real nx-27017 server."""

from __future__ import annotations

import json
import logging
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from pymongo import MongoClient
from pymongo.database import Database

from hook.metrics.recorder import Metrics
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.web.app import create_app
from tests.factories import API_KEY, b64, event, image_bytes, make_settings
from tests.loopback import free_port, serve

MAX_BODY = 200_000


@pytest.fixture
def base(db: Database) -> Iterator[str]:
    settings = make_settings(
        HOOK_MAX_BODY=str(MAX_BODY), HOOK_MAX_IMAGES="4", HOOK_MAX_IMAGE_PIXELS="1000000"
    )
    with serve(create_app(settings, TaskStore(db))) as url:
        yield url


def post(base: str, payload: Any, key: str = API_KEY) -> requests.Response:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return requests.post(
        f"{base}/tasks/{key}", data=data, headers={"Content-Type": "application/json"}, timeout=10
    )


def nothing_stored(db: Database) -> bool:
    return db.tasks.count_documents({}) == 0 and db.images.count_documents({}) == 0


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a huge size in a few bytes: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_health_says_mongo_answers(base: str) -> None:
    for path in ("/tasks/", "/tasks"):
        answer = requests.get(base + path, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json()["ok"] is True and answer.json()["mongo"] == "up"


def test_event_is_accepted_stored_and_listed(base: str, db: Database) -> None:
    answer = post(base, event(3, extra="kept"))
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task_id"]
    assert answer.json() == {"ok": True, "task_id": task_id, "duplicate": False}
    doc = db.tasks.find_one({"_id": task_id})
    assert doc is not None
    assert doc["status"] == "queued" and json.loads(doc["payload_json"])["extra"] == "kept"
    assert db.images.count_documents({"task_id": task_id}) == 3

    listing = requests.get(f"{base}/tasks/{API_KEY}", timeout=5)
    assert listing.status_code == 200
    body = listing.json()
    assert body["count"] == 1 and body["status"] == ["queued", "running"]
    (task,) = body["tasks"]
    assert task["id"] == task_id and task["camera"] == "front door" and task["user_id"] == "u1"
    assert task["image_count"] == 3 and task["status"] == "queued" and task["attempts"] == 0
    assert task["timestamps"][1] == "2017-05-05T01:31:11.738647"
    assert task["created_at"].endswith("+00:00") and task["next_run_at"]
    assert "image_b64" not in listing.text and len(listing.content) < 2000


def test_duplicate_delivery_answers_with_the_first_task(base: str, db: Database) -> None:
    first = post(base, event(2, seed=7)).json()
    again = post(base, {**event(2, seed=7), "camera": "renamed"}).json()
    assert again == {"ok": True, "task_id": first["task_id"], "duplicate": True}
    assert db.tasks.count_documents({}) == 1 and db.images.count_documents({}) == 2


def test_a_failed_event_posted_again_is_queued_again_not_swallowed(base: str, db: Database) -> None:
    first = post(base, event(1, seed=8)).json()
    store = TaskStore(db)
    assert store.claim("w", 60) is not None and store.fail(first["task_id"], "w", "gave up")
    again = post(base, event(1, seed=8)).json()
    assert again == {"ok": True, "task_id": first["task_id"], "duplicate": False}
    listed = requests.get(f"{base}/tasks/{API_KEY}", timeout=5).json()["tasks"]
    assert [(t["id"], t["status"], t["attempts"]) for t in listed] == [
        (first["task_id"], "queued", 0)
    ]
    assert "gave up" in listed[0]["history"][0]


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        *parents, last = path.split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (_set("callback_url", _DELETE), "callback_url", "non-empty string"),
        (_set("callback_url", "ftp://www.camio.com/x"), "callback_url", "http or https"),
        (_set("callback_url", "https://evil.example/x"), "callback_url", "not allowed"),
        (_set("callback_url", "http://10.0.0.1/x"), "callback_url", "not allowed"),
        (_set("images", _DELETE), "images", "non-empty list"),
        (_set("images", []), "images", "non-empty list"),
        (_set("images", {"a": 1}), "images", "non-empty list"),
        (_set("images.0", "not an object"), "images[0]", "must be an object"),
        (_set("images.1.image_b64", _DELETE), "images[1].image_b64", "non-empty base64"),
        (_set("images.0.image_b64", "not*base64!"), "images[0].image_b64", "not valid base64"),
        (
            _set("images.0.image_b64", b64(b"just some text, no image")),
            "images[0].image_b64",
            "not an image of a supported format",
        ),
        (
            _set("images.0.image_b64", b64(image_bytes(1200, 900, noise=False))),
            "images[0].image_b64",
            "1200x900 pixels, over the limit of 1000000",
        ),
        (
            _set("images.0.image_b64", b64(png_header(100_000, 100_000))),
            "images[0].image_b64",
            "too large",
        ),
        (_set("images.0.image_b64", b64(image_bytes(8, 8)[:40])), "images[0].image_b64", "image"),
        (_set("images.0.timestamp", _DELETE), "images[0].timestamp", "ISO 8601"),
        (_set("images.0.timestamp", "last tuesday"), "images[0].timestamp", "not ISO 8601"),
        (
            _set("images.1.timestamp", {"meta_class": "datetime.datetime"}),
            "images[1].timestamp",
            "ISO 8601",
        ),
        (
            _set("images.1.timestamp", "2017-05-05T01:31:10.738647"),
            "images[1].timestamp",
            "repeats",
        ),
        (_set("camera", {"name": "x"}), "camera", "must be a string"),
        (_set("user_id", "\ud800"), "user_id", "not valid Unicode"),
    ],
)
def test_each_validation_failure_is_a_400_naming_the_field(
    base: str, db: Database, change: Callable[[dict], None], field: str, words: str
) -> None:
    payload = event(2)
    change(payload)
    answer = post(base, payload)
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["ok"] is False and body["field"] == field and words in body["error"]
    assert field in body["error"]
    assert nothing_stored(db)


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 413, "JSON separators"),
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
    ],
)
def test_bodies_that_are_not_a_json_object(
    base: str, db: Database, raw: bytes, status: int, words: str
) -> None:
    answer = requests.post(f"{base}/tasks/{API_KEY}", data=raw, timeout=10)
    assert answer.status_code == status and words in answer.json()["error"]
    assert nothing_stored(db)


def test_too_many_images(base: str, db: Database) -> None:
    answer = post(base, event(5))
    assert answer.status_code == 400 and "over the limit of 4" in answer.json()["error"]
    assert nothing_stored(db)


def test_wrong_key_is_403_and_nothing_is_stored(base: str, db: Database) -> None:
    for key in ("wrong-key-0123456789abcdef", API_KEY[:-1], API_KEY + "x", "%C3%A9t%C3%A9"):
        assert post(base, event(1), key=key).status_code == 403
        listing = requests.get(f"{base}/tasks/{key}", timeout=5)
        assert listing.status_code == 403 and listing.json()["error"] == "wrong API key"
    assert nothing_stored(db)


def test_body_over_the_limit_is_413(base: str, db: Database) -> None:
    answer = post(base, event(1) | {"padding": "x" * MAX_BODY})
    assert answer.status_code == 413
    assert "over the limit of 200000 bytes (HOOK_MAX_BODY)" in answer.json()["error"]
    assert nothing_stored(db)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/tasks/{API_KEY}"),
        ("DELETE", f"/tasks/{API_KEY}"),
        ("POST", "/tasks/"),
        ("PATCH", "/tasks"),
    ],
)
def test_wrong_method_is_405_json(base: str, method: str, path: str) -> None:
    answer = requests.request(method, base + path, timeout=5)
    assert answer.status_code == 405
    assert answer.headers["Content-Type"] == "application/json"
    assert f"method {method} is not allowed" in answer.json()["error"]


def test_unknown_path_is_404_json(base: str) -> None:
    answer = requests.get(f"{base}/nope", timeout=5)
    assert answer.status_code == 404 and "/tasks/<api_key>" in answer.json()["error"]


def test_listing_filters_by_status_and_limit(base: str, db: Database) -> None:
    ids = [post(base, event(1, seed=s)).json()["task_id"] for s in range(3)]
    store = TaskStore(db)
    claimed = store.claim("w", 30)
    assert claimed is not None and claimed.id == ids[0]
    store.fail(ids[0], "w", "callback answered 404")
    failed = requests.get(f"{base}/tasks/{API_KEY}?status=failed", timeout=5).json()
    assert [(t["id"], t["last_error"]) for t in failed["tasks"]] == [
        (ids[0], "callback answered 404")
    ]
    assert failed["tasks"][0]["finished_at"]
    pending = requests.get(f"{base}/tasks/{API_KEY}?limit=1", timeout=5).json()
    assert [t["id"] for t in pending["tasks"]] == [ids[1]]
    both = requests.get(f"{base}/tasks/{API_KEY}?status=failed,queued", timeout=5).json()
    assert both["count"] == 3
    for query, field in (
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=5000", "limit"),
    ):
        answer = requests.get(f"{base}/tasks/{API_KEY}?{query}", timeout=5)
        assert answer.status_code == 400 and answer.json()["field"] == field


def test_secrets_never_reach_the_log(base: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    post(base, event(1, seed=11))
    post(base, event(1, seed=12), key="guess-guess-guess-guess")
    post(base, {"callback_url": "https://evil.example/"})
    requests.get(f"{base}/tasks/{API_KEY}", timeout=5)
    server_side = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("urllib3")
    )  # the client logs its URLs
    assert "queued" in server_side and "wrong API key" in server_side
    assert API_KEY not in server_side and "guess-guess" not in server_side


def test_mongo_down_is_503_json_never_500(tmp_path, db_name: str) -> None:
    server = EmbeddedMongo(tmp_path / "nx", free_port())
    server.start()
    settings = make_settings(HOOK_MONGO_TIMEOUT_MS="400")
    client: MongoClient = MongoClient(
        server.uri, serverSelectionTimeoutMS=400, connectTimeoutMS=400
    )
    try:
        with serve(create_app(settings, TaskStore(client[db_name]))) as base:
            assert post(base, event(1, seed=1)).status_code == 200
            server.stop()
            started = time.monotonic()
            for answer in (
                post(base, event(1, seed=2)),
                requests.get(f"{base}/tasks/", timeout=5),
                requests.get(f"{base}/tasks/{API_KEY}", timeout=5),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.headers["Content-Type"] == "application/json"
                assert answer.headers["Retry-After"] == "5"
                assert "Traceback" not in answer.text
            assert time.monotonic() - started < 10
            started = time.monotonic()
            for _ in range(5):  # refusals stay quick: metrics stop waiting on a dead MongoDB
                assert post(base, event(1, seed=3), key="wrong-key-0123456789").status_code == 403
            assert time.monotonic() - started < 2
            assert post(base, event(1, seed=2)).json()["error"].startswith("the task store")
            server.start()  # same data dir and port: everything acknowledged is still there
            again = post(base, event(1, seed=2))
            assert again.status_code == 200, again.text
            assert post(base, event(1, seed=1)).json()["duplicate"] is True
    finally:
        client.close()
        server.stop()


def test_metrics_in_prometheus_format(base: str) -> None:
    post(base, event(1, seed=31))
    post(base, event(1, seed=31))
    post(base, event(1, seed=32) | {"callback_url": "https://evil.example/"})
    bad = event(2, seed=33)
    bad["images"][1]["image_b64"] = "***"
    post(base, bad)
    post(base, event(1, seed=34), key="guess-guess-guess-guess")
    answer = requests.get(f"{base}/metrics", timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert 'hook_tasks{status="queued"} 1.0' in text
    assert 'hook_events_total{outcome="accepted",reason=""} 1.0' in text
    assert 'hook_events_total{outcome="duplicate",reason=""} 1.0' in text
    assert 'hook_events_total{outcome="rejected",reason="callback_url"} 1.0' in text
    assert 'hook_events_total{outcome="rejected",reason="images[].image_b64"} 1.0' in text
    assert 'hook_events_total{outcome="rejected",reason="api_key"} 1.0' in text
    assert "hook_latency_seconds_bucket" in text and API_KEY not in text


def test_metrics_per_callback_host_name_host_and_port_only(db: Database, base: str) -> None:
    metrics = Metrics(TaskStore(db))
    secret = "https://www.camio.com/api/callbacks/s3cret-token?key=s3cret-key"
    metrics.delivery(secret, "delivered", 0.12, time.time())
    metrics.delivery("http://hooks.camio.com:8443/cb?x=s3cret", "retried", 10.0, time.time())
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert "# TYPE hook_host_deliveries_total counter" in text
    assert "# TYPE hook_host_delivery_seconds histogram" in text
    assert 'hook_host_deliveries_total{host="www.camio.com:443",outcome="delivered"} 1.0' in text
    assert 'hook_host_deliveries_total{host="hooks.camio.com:8443",outcome="retried"} 1.0' in text
    assert 'hook_host_delivery_seconds_bucket{host="www.camio.com:443",le="0.25"} 1.0' in text
    assert 'hook_host_delivery_seconds_bucket{host="hooks.camio.com:8443",le="5"} 0.0' in text
    assert 'hook_host_delivery_seconds_sum{host="hooks.camio.com:8443"} 10.0' in text
    assert 'hook_deliveries_total{outcome="delivered"} 1.0' in text  # as before, beside them
    assert "# TYPE hook_latency_seconds histogram" in text
    assert "s3cret" not in text and "/api" not in text and API_KEY not in text
