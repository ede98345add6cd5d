"""An event's own page and the list's filters and paging, through the real app on loopback,
against nx-27017."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from hook.store import TaskStore
from hook.web.app import create_app
from tests.factories import API_KEY, CALLBACK, event, image_bytes, make_settings, worked_task
from tests.loopback import serve

EVIL = "<script>alert(1)</script>"
VIEW = "view-key-0123456789abcdef"


@pytest.fixture
def base(live_store: TaskStore) -> Iterator[str]:
    with serve(create_app(make_settings(HOOK_VIEW_KEY=VIEW), live_store)) as url:
        yield f"{url}/tasks"


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def test_the_task_page_shows_pictures_labels_times_and_delivery(
    base: str, live_store: TaskStore
) -> None:
    task_id = worked_task(
        live_store,
        event(2, seed=70, camera="drive"),
        {"car": 0.81, "dog": 0.55},
        pictures={0: image_bytes(seed=71)},
    )
    answer = get(f"{base}/{API_KEY}/{task_id}/view")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Content-Security-Policy"] == "default-src 'self'; img-src 'self'"
    page = answer.text
    assert '<img class="picture" src="./images/0.jpg"' in page  # relative: no key in the page
    assert '<img class="picture" src="./images/1.jpg"' in page  # drawn when first looked at
    assert page.count("car <b>0.81</b>") == 2 and page.count("dog <b>0.55</b>") == 2
    assert page.count('<span class="boxes">2 boxes</span>') == 2
    assert "delivered: the callback took the labels" in page
    for name in ("arrived", "labeled", "finished", "attempts"):
        assert f"<dt>{name}</dt>" in page
    assert re.search(r'<time datetime="[^"]+">[0-9-]+ [0-9:]+ UTC</time>', page)
    assert '<link rel="stylesheet" href="../view.css">' in page
    assert '<script src="../view.js" defer></script>' in page
    assert 'action="forget"' in page and 'action="retry"' not in page  # done: nothing to retry
    assert API_KEY not in page and CALLBACK not in page  # nor the callback URL
    picture = get(f"{base}/{API_KEY}/{task_id}/images/0.jpg")
    assert picture.status_code == 200
    assert get(f"{base}/{API_KEY}/{task_id}").json()["id"] == task_id  # the JSON stays


def test_a_failed_tasks_page_shows_why_drops_and_retry(base: str, live_store: TaskStore) -> None:
    task_id = worked_task(
        live_store, event(1, seed=72, camera=EVIL), None, failure='answered 500: <b onclick="x">'
    )
    page = get(f"{base}/{API_KEY}/{task_id}/view").text
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<b onclick="x">' not in page and "&lt;b onclick=&quot;x&quot;&gt;" in page
    assert page.count("<script") == 1  # view.js only
    assert "failed for good after 1 attempt(s)" in page
    assert "no picture kept" in page and "not labeled" in page
    assert 'action="retry"' in page and 'action="forget"' in page
    viewed = get(f"{base}/{VIEW}/{task_id}/view").text
    assert "<form" not in viewed.split("<main>", 1)[1]  # a view key gets no action buttons
    missing = get(f"{base}/{API_KEY}/{'0' * 24}/view")
    assert missing.status_code == 404 and missing.json()["field"] == "task_id"
    assert get(f"{base}/wrong-key-0123456789abcdef/{task_id}/view").status_code == 403


def test_the_list_links_each_event_to_its_page(base: str, live_store: TaskStore) -> None:
    task_id = worked_task(live_store, event(1, seed=73), {"cat": 0.7})
    page = get(f"{base}/{API_KEY}/view").text
    assert f'href="{task_id}/view">details</a>' in page
    data = get(f"{base}/{API_KEY}/view.json").json()
    assert data["events"][0]["page"] == f"{task_id}/view" and data["can_act"] is True
    assert get(f"{base}/{VIEW}/view.json").json()["can_act"] is False


def ids_on(base: str, query: str) -> tuple[list[str], dict[str, str | None]]:
    data = get(f"{base}/{API_KEY}/view.json{query}").json()
    return [e["id"] for e in data["events"]], {"older": data["older"], "newer": data["newer"]}


def test_filters_and_paging_through_every_event(base: str, live_store: TaskStore) -> None:
    made = []
    for n in range(45):
        found = {"dog": 0.9} if n % 3 == 0 else {"cat": 0.8}
        failure = "answered 500" if n % 5 == 0 else None
        raw = event(1, seed=100 + n, camera="yard" if n % 2 else "gate")
        made.append(worked_task(live_store, raw, found, failure=failure))
    newest = list(reversed(made))
    first, links = ids_on(base, "")
    assert first == newest[:20] and links["newer"] is None
    assert links["older"] == f"view?before={newest[19]}"
    second, links = ids_on(base, links["older"][4:])
    assert second == newest[20:40]
    third, links = ids_on(base, (links["older"] or "")[4:])
    assert third == newest[40:] and links["older"] is None
    back, links = ids_on(base, (links["newer"] or "")[4:])
    assert back == newest[20:40]
    assert ids_on(base, f"?before={newest[19]}")[0] == second  # the same each time
    dogs = [t for n, t in enumerate(made) if n % 3 == 0 and n % 2 == 1]
    shown, links = ids_on(base, "?camera=yard&label=dog")
    assert shown == list(reversed(dogs)) and links == {"older": None, "newer": None}
    failed = [t for n, t in enumerate(made) if n % 5 == 0]
    assert ids_on(base, "?status=failed")[0] == list(reversed(failed))
    page = get(f"{base}/{API_KEY}/view?camera=yard&status=done").text
    assert 'data-poll="view.json?camera=yard&amp;status=done"' in page
    assert '<option value="done" selected>' in page and 'value="yard"' in page
    older = get(f"{base}/{API_KEY}/view?before={newest[19]}").text
    assert "data-poll" not in older and 'id="newer"' in older  # an older page: not polled
    bad = get(f"{base}/{API_KEY}/view?status=lost")
    assert bad.status_code == 400 and bad.json()["field"] == "status"
    assert get(f"{base}/{API_KEY}/view.json?before=nope").status_code == 400
