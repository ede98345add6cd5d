"""The results API and the annotated pictures through the real thing: gunicorn as a process
(its access log on, to check the key stays out of it), and worker.py with the real model."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator

import pytest
import requests
from PIL import Image
from pymongo import MongoClient

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.factories import API_KEY, DATA, b64, event, image_bytes, worked_task
from tests.procs import Stack
from tests.receiver import Receiver

pytestmark = pytest.mark.slow

DB = "results_api_test"
WRONG = "wrong-key-0123456789abcdef"
VIEW_KEY = "view-only-0123456789abcdef"
UNKNOWN = "0123456789abcdef01234567"  # a well-formed id no task has
SEEDS = itertools.count(100)  # each test's events differ, or they would be duplicates


@pytest.fixture(scope="module")
def web(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn alone (no workers) on the session's MongoDB, writing its access log."""
    stack = Stack(
        tmp_path_factory.mktemp("results"), mongo=mongo, HOOK_MONGO_DB=DB, HOOK_VIEW_KEY=VIEW_KEY
    )
    stack.argv += ["--access-logfile", "-"]
    with stack:
        yield stack


@pytest.fixture(scope="module")
def store(mongo: EmbeddedMongo) -> Iterator[TaskStore]:
    client: MongoClient = MongoClient(mongo.uri)
    yield TaskStore(client[DB])
    client.drop_database(DB)
    client.close()


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def test_a_result_with_its_labels_and_picture_links(web: Stack, store: TaskStore) -> None:
    task_id = worked_task(store, event(2, seed=20, camera="yard"), {"dog": 0.8}, keep_images=True)
    answer = get(f"{web.url}/{task_id}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    found = answer.json()
    assert found["ok"] is True and found["id"] == task_id and found["status"] == "done"
    assert found["camera"] == "yard" and found["user_id"] == "u1" and found["attempts"] == 1
    assert found["times"]["arrived"] and found["times"]["labeled"] and found["times"]["delivered"]
    stamps = [image["timestamp"] for image in found["images"]]
    assert list(found["labels"]) == stamps
    assert all(found["labels"][s]["dog"]["probability"] == 0.8 for s in stamps)
    pictures = [image["picture"] for image in found["images"]]
    assert pictures == [f"/tasks/{API_KEY}/{task_id}/images/{n}.jpg" for n in (0, 1)]
    bare = worked_task(store, event(2, seed=24), {"dog": 0.8})  # images not kept: no pictures
    assert [image["picture"] for image in get(f"{web.url}/{bare}").json()["images"]] == [None, None]


def test_a_picture_is_its_jpeg(web: Stack, store: TaskStore) -> None:
    jpeg = image_bytes(80, 60, seed=22)
    task_id = worked_task(store, event(1, seed=23), {"cat": 0.7}, pictures={0: jpeg})
    answer = get(f"{web.url}/{task_id}/images/0.jpg")
    assert answer.status_code == 200
    assert answer.content == jpeg
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["Cache-Control"].startswith("private")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    head = requests.head(f"{web.url}/{task_id}/images/0.jpg", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Type"] == "image/jpeg"


def test_the_listing_links_each_task_to_its_result(web: Stack, store: TaskStore) -> None:
    task_id = worked_task(store, event(1, seed=24), {"car": 0.5})
    listed = {t["id"]: t for t in web.listing("done")}
    link = listed[task_id]["result"]
    assert link == f"/tasks/{API_KEY}/{task_id}"
    assert get(web.base + link).json()["id"] == task_id


@pytest.mark.parametrize(
    "path",
    [
        UNKNOWN,
        "not-an-id",
        "0123456789ABCDEF01234567",
        "x" * 300,
        f"{UNKNOWN}/images/0.jpg",
        "{done}/images/5.jpg",
        "{done}/images/0.png",
        "{done}/images/-1.jpg",
        "{done}/images/00.jpg",
        "{done}/images/0.jpg.jpg",
        "not-an-id/images/0.jpg",
        "{bare}/images/0.jpg",
    ],
)
def test_what_is_not_there_is_404_json(web: Stack, store: TaskStore, path: str) -> None:
    done = worked_task(
        store, event(1, seed=next(SEEDS)), {"dog": 0.6}, pictures={0: image_bytes(seed=26)}
    )
    bare = worked_task(store, event(1, seed=next(SEEDS)), {"dog": 0.6})  # no picture kept
    answer = get(f"{web.url}/{path.format(done=done, bare=bare)}")
    assert answer.status_code == 404, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["ok"] is False and answer.json()["field"] in ("task_id", "picture")


@pytest.mark.parametrize(
    "path", ["{done}", "{done}/images/0.jpg", UNKNOWN, "not-an-id", "not-an-id/images/9.png"]
)
def test_a_wrong_key_is_403_before_anything_else(web: Stack, store: TaskStore, path: str) -> None:
    done = worked_task(
        store, event(1, seed=next(SEEDS)), {"dog": 0.6}, pictures={0: image_bytes(seed=41)}
    )
    answer = get(f"{web.base}/tasks/{WRONG}/{path.format(done=done)}")
    assert answer.status_code == 403
    assert answer.json() == {"ok": False, "error": "wrong API key", "field": "api_key"}


def test_the_key_is_compared_on_its_raw_segment_alone(web: Stack) -> None:
    # Bottle's decoded path would drop the invalid bytes and leave the key
    for path in (f"%ff%80{API_KEY}/view", f"{API_KEY}%ff/{UNKNOWN}"):
        assert get(f"{web.base}/tasks/{path}").status_code == 403
    assert get(f"{web.url}/{UNKNOWN}/images/0.jpg").status_code == 404


def test_view_is_the_page_not_a_task(web: Stack) -> None:
    answer = get(f"{web.url}/view")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    assert get(f"{web.url}/view.json").json()["queue"]["done"] >= 0


def test_the_key_stays_out_of_the_access_log(web: Stack, store: TaskStore) -> None:
    task_id = worked_task(store, event(1, seed=50), {"dog": 0.6}, pictures={0: image_bytes()})
    paths = [
        "view",
        "view.json",
        "view.js",
        task_id,
        f"{task_id}/images/0.jpg",
        f"{task_id}/images/3.jpg",
        UNKNOWN,
    ]
    for path in paths:
        requests.get(f"{web.url}/{path}", headers={"Referer": f"{web.url}/view"}, timeout=10)
    deadline = time.monotonic() + 5
    while f"/tasks/<key>/{task_id}/images/3.jpg" not in web.log("web"):
        assert time.monotonic() < deadline, web.log("web")
        time.sleep(0.1)
    log = web.log("web")
    assert API_KEY not in log
    for path in paths:
        assert f"GET /tasks/<key>/{path} HTTP/1.1" in log


def test_a_view_key_stays_out_of_every_log_too(web: Stack, store: TaskStore) -> None:
    """Its pages, a camera's latest picture, and a POST it may not make (403, logged as such)."""
    worked_task(store, event(1, seed=51, camera="drive"), {"dog": 0.6}, keep_images=True)
    base = f"{web.base}/tasks/{VIEW_KEY}"
    for path in ("view", "cameras/drive/latest.jpg", "cameras/none/latest.jpg"):
        requests.get(f"{base}/{path}?probe=view", timeout=10)
    refused = requests.post(base, json=event(1, seed=52), timeout=10)
    assert refused.status_code == 403
    deadline = time.monotonic() + 5
    while "POST /tasks/<key> HTTP/1.1" not in web.log("web"):
        assert time.monotonic() < deadline, web.log("web")
        time.sleep(0.1)
    log = web.log("web")
    assert VIEW_KEY not in log and "refused events sent with a view key" in log
    assert "GET /tasks/<key>/cameras/drive/latest.jpg?probe=view HTTP/1.1" in log


def test_the_key_stays_out_of_the_access_log_when_the_path_is_encoded(web: Stack) -> None:
    """gunicorn logs the path as sent, the app routes it decoded: `/%74asks/KEY/view` is
    served (200) and must be logged without the key, as must every other spelling."""
    spelled = [f"/%74asks/{API_KEY}/view", f"/t%61sks/{API_KEY}/view.json", f"/%2574asks/{API_KEY}"]
    with requests.Session() as http:
        for n, path in enumerate(spelled):  # sent as written: requests keeps a %XX as it is
            answer = http.get(f"{web.base}{path}?probe={n}", timeout=10)
            assert answer.status_code == (404 if n == 2 else 200), answer.text
    deadline = time.monotonic() + 5
    while not all(f"?probe={n} HTTP/1.1" in web.log("web") for n in range(len(spelled))):
        assert time.monotonic() < deadline, web.log("web")
        time.sleep(0.1)
    log = web.log("web")
    assert API_KEY not in log
    assert "GET /tasks/<key>/view?probe=0 HTTP/1.1" in log


def test_the_workers_own_result_and_pictures(tmp_path, mongo: EmbeddedMongo) -> None:
    """A real photo labeled by worker.py: the result's labels are what the receiver got, and
    each picture is a JPEG of the photo's aspect ratio, at most 1280 px on its longer side."""
    receiver = Receiver()
    photos = [(DATA / name).read_bytes() for name in ("dog.jpg", "person.jpg")]
    ratios = [width / height for width, height in (Image.open(io.BytesIO(p)).size for p in photos)]
    try:
        with Stack(tmp_path, mongo=mongo, HOOK_MONGO_DB="results_api_worker") as stack:
            stack.start_worker()
            images = [
                {
                    "type": "image/jpeg",
                    "timestamp": f"2017-05-05T01:31:1{i}.0",
                    "image_b64": b64(photo),
                }
                for i, photo in enumerate(photos)
            ]
            raw = {"callback_url": receiver.url("/cb"), "camera": "yard", "images": images}
            task_id = stack.post(raw).json()["task_id"]
            delivered = receiver.wait_for("/cb", 1)[0]
            stack.wait_status(task_id, "done")
            found = get(f"{stack.url}/{task_id}").json()
            assert found["labels"] == delivered["labels"] and "dog" in str(found["labels"])
            deadline = time.monotonic() + 20  # pictures are made after the delivery
            while None in (links := [image["picture"] for image in found["images"]]):
                assert time.monotonic() < deadline, found["images"]
                time.sleep(0.2)
                found = get(f"{stack.url}/{task_id}").json()
            for link, ratio in zip(links, ratios, strict=True):
                answer = get(stack.base + link)
                assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
                picture = Image.open(io.BytesIO(answer.content))
                assert picture.format == "JPEG" and max(picture.size) <= 1280
                assert abs(picture.size[0] / picture.size[1] - ratio) < 0.02
            MongoClient(mongo.uri).drop_database("results_api_worker")
    finally:
        receiver.close()
