"""Retry and forget from the page: HOOK_API_KEY only, same origin only, a form's POST, 303 after,
each logged by task id without the key. Through the real app on loopback, against nx-27017."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
from pymongo.database import Database

from hook.store import TaskStore
from hook.web.app import create_app
from tests.factories import API_KEY, event, make_settings, worked_task
from tests.loopback import serve

VIEW = "view-key-0123456789abcdef"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def base(live_store: TaskStore) -> Iterator[str]:
    with serve(create_app(make_settings(HOOK_VIEW_KEY=VIEW), live_store)) as url:
        yield url


def act(
    base: str, task_id: str, verb: str, key: str = API_KEY, **headers: str
) -> requests.Response:
    sent = {**FORM, "Origin": base, **headers}
    sent = {k: v for k, v in sent.items() if v}  # "" leaves a header out
    return requests.post(
        f"{base}/tasks/{key}/{task_id}/{verb}",
        data="",
        headers=sent,
        allow_redirects=False,
        timeout=10,
    )


def failed(store: TaskStore, seed: int) -> str:
    return worked_task(store, event(1, seed=seed), None, failure="callback answered 500")


def test_retry_puts_a_failed_task_back_in_the_queue(
    base: str, live_store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = failed(live_store, 80)
    with caplog.at_level(logging.INFO, logger="hook.web.actions"):
        answer = act(base, task_id, "retry")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/tasks/{API_KEY}/{task_id}/view"
    task = live_store.get(task_id)
    assert task is not None and task.status.value == "queued" and task.attempts == 0
    assert f"task {task_id}: retry from the page: requeued" in caplog.text
    assert API_KEY not in caplog.text
    again = act(base, task_id, "retry")  # queued now: nothing to retry
    assert again.status_code == 409 and "only a failed task is retried" in again.json()["error"]


def test_forget_removes_a_task(
    base: str, live_store: TaskStore, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = worked_task(live_store, event(1, seed=81), {"dog": 0.9}, keep_images=True)
    referer = f"{base}/tasks/{API_KEY}/{task_id}/view"
    with caplog.at_level(logging.INFO, logger="hook.web.actions"):
        answer = act(base, task_id, "forget", Origin="", Referer=referer)  # no Origin: Referer
    assert answer.status_code == 303 and answer.headers["Location"] == f"/tasks/{API_KEY}/view"
    assert db.tasks.count_documents({}) == 0 and db.images.count_documents({}) == 0
    assert f"task {task_id}: forget from the page: removed" in caplog.text
    assert API_KEY not in caplog.text
    assert act(base, task_id, "forget").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "", "Referer": "https://evil.example/page"},
        {"Origin": "", "Referer": ""},
    ],
    ids=["other origin", "null origin", "other referer", "neither"],
)
def test_a_request_from_elsewhere_is_refused(
    base: str, live_store: TaskStore, headers: dict[str, str]
) -> None:
    task_id = failed(live_store, 82)
    for verb in ("retry", "forget"):
        answer = act(base, task_id, verb, **headers)
        assert answer.status_code == 403
        assert answer.json()["field"] == "origin" and "refused" in answer.json()["error"]
    task = live_store.get(task_id)
    assert task is not None and task.status.value == "failed"  # nothing changed


def test_a_view_key_and_a_non_form_are_refused(
    base: str, live_store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = failed(live_store, 83)
    with caplog.at_level(logging.INFO):
        viewed = act(base, task_id, "retry", key=VIEW)
    assert viewed.status_code == 403
    assert viewed.json()["error"] == (
        "this key only views (HOOK_VIEW_KEY): retry and forget need HOOK_API_KEY"
    )
    assert VIEW not in caplog.text
    assert act(base, task_id, "forget", key="wrong-key-0123456789abcdef").status_code == 403
    as_json = act(base, task_id, "retry", **{"Content-Type": "application/json"})
    assert as_json.status_code == 400 and as_json.json()["field"] == "content_type"
    task = live_store.get(task_id)
    assert task is not None and task.status.value == "failed"
    assert act(base, "nope", "retry").status_code == 404
