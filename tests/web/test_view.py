"""The live page (GET /tasks/<key>/view) and its data (view.json), in-process over real HTTP,
backed by a real nx-27017 server; the page in a real browser is tests/web/test_view_browser.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from hook.store import Heartbeat, TaskStore
from hook.web.app import create_app
from hook.web.view import event_row, labels_of, page_data, render, worker_row
from tests.factories import API_KEY, event, image_bytes, make_event, make_settings, worked_task
from tests.loopback import serve

WRONG = "wrong-key-0123456789abcdef"
EVIL = "<script>alert(1)</script>"
CSP = "default-src 'self'; img-src 'self'"


@pytest.fixture
def base(live_store: TaskStore) -> Iterator[str]:
    with serve(create_app(make_settings(), live_store)) as url:
        yield f"{url}/tasks/{API_KEY}"


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def beat(live_store: TaskStore, worker: str, **facts: Any) -> None:
    defaults: dict[str, Any] = {
        "host": "box",
        "pid": 7,
        "state": "running",
        "started_at": time.time() - 60,
        "every": 5.0,
        "done": 3,
        "in_flight": 1,
    }
    live_store.beat(Heartbeat(worker=worker, **{**defaults, **facts}))


def test_the_page_lists_events_newest_first_with_labels_status_and_thumbnails(
    base: str, live_store: TaskStore
) -> None:
    older = worked_task(
        live_store,
        event(1, seed=1, camera="drive"),
        {"car": 0.81},
        pictures={0: image_bytes(seed=5)},
    )
    newer = worked_task(live_store, event(2, seed=2, camera="porch"), {"person": 0.9, "dog": 0.55})
    answer = get(f"{base}/view")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    page = answer.text
    assert page.index(f'data-id="{newer}"') < page.index(f'data-id="{older}"')
    assert "porch" in page and "drive" in page
    assert "person <b>0.90</b>" in page and "dog <b>0.55</b>" in page and "car <b>0.81</b>" in page
    assert f'<img class="thumb" src="{older}/images/0.jpg"' in page
    assert f'src="{newer}/images/' not in page  # no picture kept: none shown
    assert '<span class="status done">done</span>' in page
    assert page.count(f'href="{newer}/view"') == 1  # its page, relative to this one


def test_the_page_shows_failures_queue_and_workers(base: str, live_store: TaskStore) -> None:
    worked_task(live_store, event(1, seed=3), None, failure="callback answered 404: no such hook")
    live_store.enqueue(make_event(seed=4))
    beat(live_store, "box:7:a", done=12)
    beat(live_store, "box:8:b", pid=8, state="stopped")
    page = get(f"{base}/view").text
    failures = page.split('<table id="failures" class="cards">', 1)[1]
    assert "callback answered 404: no such hook" in failures
    assert '<div class="count failed"><b>1</b> failed</div>' in page
    assert '<div class="count queued"><b>1</b> queued</div>' in page
    workers = page.split('<table id="workers" class="cards">', 1)[1].split("</table>", 1)[0]
    assert '<span class="state running">running</span>' in workers
    assert '<td data-label="done">12</td>' in workers
    assert '<span class="state stopped">stopped</span>' in workers
    data = get(f"{base}/view.json").json()
    assert data["queue"] == {"queued": 1, "running": 0, "done": 0, "failed": 1, "retrying": 0}
    assert [w["state"] for w in data["workers"]] == ["stopped", "running"]
    assert data["failures"][0]["reason"] == "callback answered 404: no such hook"


def test_a_worker_silent_for_three_beats_is_gone_unless_it_said_it_stopped() -> None:
    now = 1000.0
    running = Heartbeat("h:1:x", "h", 1, "running", 0.0, every=5.0, done=0, in_flight=0)
    assert worker_row(replace(running, seen_at=now - 14), now)["state"] == "running"
    assert worker_row(replace(running, seen_at=now - 16), now)["state"] == "gone"
    stopped = replace(running, state="stopped", seen_at=now - 600)
    assert worker_row(stopped, now)["state"] == "stopped"


def test_every_value_from_outside_is_escaped(base: str, live_store: TaskStore) -> None:
    worked_task(live_store, event(1, seed=6, camera=EVIL), {"cat": 0.7})
    worked_task(
        live_store,
        event(1, seed=7, camera=EVIL),
        None,
        failure='callback answered 500: <img src=x onerror="alert(2)">',
    )
    page = get(f"{base}/view").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert page.count("<script") == 1  # view.js, and nothing else
    data = get(f"{base}/view.json")
    assert data.headers["Content-Type"] == "application/json"
    assert data.headers["X-Content-Type-Options"] == "nosniff"
    assert {e["camera"] for e in data.json()["events"]} == {EVIL}


def test_the_page_sends_a_strict_csp_and_no_secret(base: str, live_store: TaskStore) -> None:
    worked_task(live_store, event(1, seed=8), {"car": 0.6}, pictures={0: image_bytes(seed=9)})
    answer = get(f"{base}/view")
    assert answer.headers["Content-Security-Policy"] == CSP
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"  # no other site sees the key
    assert answer.headers["Cache-Control"] == "no-store"
    for text in (answer.text, get(f"{base}/view.json").text):
        assert API_KEY not in text  # every link is relative to the page
        assert "callback" not in text  # nor the events' callback URLs
    assert "http://" not in answer.text and "https://" not in answer.text  # no external assets


def test_the_pages_assets_are_served_by_hook(base: str) -> None:
    page = get(f"{base}/view").text
    assert '<link rel="stylesheet" href="view.css">' in page
    assert '<script src="view.js" defer></script>' in page
    css, js = get(f"{base}/view.css"), get(f"{base}/view.js")
    assert css.status_code == js.status_code == 200
    assert css.headers["Content-Type"] == "text/css; charset=utf-8" and "img.thumb" in css.text
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "view.json" in js.text and "innerHTML" not in js.text
    assert js.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_renders_empty_tables_with_a_word(base: str) -> None:
    page = get(f"{base}/view").text
    assert '<p class="empty" id="events-empty">no events</p>' in page
    assert '<p class="empty" id="workers-empty">no worker has reported yet</p>' in page
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page


@pytest.mark.parametrize("path", ["view", "view.json", "view.css", "view.js"])
def test_a_wrong_key_is_403_json(base: str, path: str) -> None:
    answer = get(f"{base.replace(API_KEY, WRONG)}/{path}")
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"ok": False, "error": "wrong API key", "field": "api_key"}


def test_labels_are_summed_up_per_label_over_the_images(live_store: TaskStore) -> None:
    task_id = worked_task(live_store, event(2, seed=10), {"person": 0.61, "car": 0.9})
    task = live_store.get(task_id)
    assert task is not None
    assert labels_of(task) == [
        {"label": "car", "score": 0.9, "count": 1},
        {"label": "person", "score": 0.61, "count": 1},
    ]
    row = event_row(task, [1])
    assert row["thumbnail"] == f"{task_id}/images/1.jpg" and row["finished_after"] is not None


def test_render_is_the_data(live_store: TaskStore) -> None:
    worked_task(live_store, event(1, seed=11, camera="gate"), {"dog": 0.77})
    data = page_data(live_store)
    page = render(data)
    assert data["events"][0]["camera"] == "gate" and "gate" in page
    assert data["now"][:10] in page
