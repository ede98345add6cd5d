"""Sharing what hook sees without the key that writes: HOOK_VIEW_KEY opens the page, the
listing, results, pictures and each camera's latest picture, and never enqueues; the ingest key
keeps opening everything. Through the real app on loopback, against nx-27017."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests
from PIL import Image
from pymongo.database import Database

from hook.errors import ConfigError
from hook.store import TaskStore
from hook.web.app import create_app
from hook.web.keys import KeyKind, Keys
from tests.factories import API_KEY, event, make_settings, worked_task
from tests.loopback import serve

VIEW, OLD_VIEW = "view-key-0123456789abcdef", "old-view-key-0123456789ab"


@pytest.fixture
def store(db: Database) -> TaskStore:
    return TaskStore(db)  # the real time: the app's gallery keeps pictures by it


@pytest.fixture
def base(store: TaskStore) -> Iterator[str]:
    settings = make_settings(HOOK_VIEW_KEY=f"{VIEW}, {OLD_VIEW}")
    with serve(create_app(settings, store)) as url:
        yield url


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def test_a_view_key_opens_everything_that_only_looks(base: str, store: TaskStore) -> None:
    task_id = worked_task(store, event(1, seed=60, camera="yard"), {"dog": 0.9}, keep_images=True)
    for key in (VIEW, OLD_VIEW, API_KEY):  # both view keys while one is rotated out
        root = f"{base}/tasks/{key}"
        for path in ("", "/view", "/view.json", "/view.css", f"/{task_id}"):
            assert get(root + path).status_code == 200, (key, path)
        picture = get(f"{root}/{task_id}/images/0.jpg")
        assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg"
        listed = get(f"{root}?status=done").json()["tasks"]
        assert listed[0]["result"] == f"/tasks/{key}/{task_id}"  # links keep the key used


def test_a_view_key_never_enqueues(base: str, store: TaskStore, db: Database) -> None:
    answer = requests.post(f"{base}/tasks/{VIEW}", json=event(1, seed=61), timeout=10)
    assert answer.status_code == 403
    assert answer.json() == {
        "ok": False,
        "error": "this key only views (HOOK_VIEW_KEY): events need HOOK_API_KEY",
        "field": "api_key",
    }
    assert db.tasks.count_documents({}) == 0
    ok = requests.post(f"{base}/tasks/{API_KEY}", json=event(1, seed=61), timeout=10)
    assert ok.status_code == 200
    wrong = get(f"{base}/tasks/{VIEW[:-1]}x/view")
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong API key"


def test_each_cameras_latest_picture_for_a_dashboard(base: str, store: TaskStore) -> None:
    """The last labeled event's last image, drawn once; a poll with its ETag is a 304."""
    url = f"{base}/tasks/{VIEW}/cameras/front door/latest.jpg"
    assert get(url).status_code == 404
    worked_task(store, event(2, seed=62, camera="front door"), {"dog": 0.9}, keep_images=True)
    worked_task(store, event(1, seed=63, camera="yard"), {"cat": 0.9}, keep_images=True)
    newest = worked_task(
        store, event(2, seed=64, camera="front door"), {"person": 0.8}, keep_images=True
    )
    first = get(url)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    assert first.headers["ETag"].startswith(f'"{newest}-1-')
    assert first.headers["Cache-Control"] == "private, no-cache"
    with Image.open(io.BytesIO(first.content)) as picture:
        assert picture.format == "JPEG" and picture.width > 0
    again = get(url, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert get(f"{base}/tasks/{VIEW}/cameras/yard/latest.jpg").status_code == 200
    gone = get(f"{base}/tasks/{VIEW}/cameras/porch/latest.jpg")
    assert gone.status_code == 404 and "no picture of camera 'porch'" in gone.json()["error"]
    assert (
        get(f"{base}/tasks/wrong-key-0123456789abcdef/cameras/yard/latest.jpg").status_code == 403
    )


def test_keys_are_told_apart_by_digest_against_every_key() -> None:
    keys = Keys(API_KEY, (VIEW, OLD_VIEW))
    assert keys.kind(API_KEY.encode()) is KeyKind.INGEST
    assert keys.kind(OLD_VIEW.encode()) is KeyKind.VIEW
    assert keys.kind(b"") is None and keys.kind(VIEW.encode() + b"x") is None


def test_view_keys_are_checked_hidden_and_never_the_ingest_key() -> None:
    with pytest.raises(ConfigError, match="HOOK_VIEW_KEY=<hidden> is invalid: key 2 must be 16"):
        make_settings(HOOK_VIEW_KEY=f"{VIEW},short")
    with pytest.raises(ConfigError, match="a view key must differ from the key that enqueues"):
        make_settings(HOOK_VIEW_KEY=API_KEY)
    settings = make_settings(HOOK_VIEW_KEY=VIEW)
    assert settings.view_keys == (VIEW,) and VIEW not in repr(settings)
