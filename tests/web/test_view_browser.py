"""The live page in a real browser: headless Chromium (Debian's `chromium`) against a running
service (gunicorn, worker.py with the real model) that labeled real photos and drew their
pictures. The DOM is read after the page's script ran (it polls view.json and rebuilds the
tables, marking each thumbnail that loaded), and a screenshot is taken.

The list page and an event's page are also opened over the DevTools protocol (tests/web/cdp.py)
at desktop (1280x900) and phone (390x844) width: nothing may be wider than the window, and no
console error or CSP violation may occur.

`HOOK_VIEW_SCREENSHOT=docs/view.png pytest tests/web/test_view_browser.py` also keeps the
screenshots there (view.png, and beside it view-phone.png, task.png, task-phone.png): those in
the README and docs/pictures.md are made this way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.factories import DATA, ROOT, b64
from tests.procs import Stack
from tests.receiver import Receiver
from tests.web.cdp import Browser

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (scripts/setup.sh --test installs it as root: "
        "apt-get install chromium)",
    ),
]

EVIL = "<script>alert(1)</script>"
PHOTOS = {  # posted in this order: the oldest (the hostile name) lowest on the page
    "giraffe.jpg": EVIL,
    "dog.jpg": "driveway",
    "horses.jpg": "paddock",
    "eagle.jpg": "roof",
    "kite.jpg": "beach",
    "person.jpg": "back garden",
}
WINDOW = (1280, 900)
PHONE = (390, 844)


class Service:
    """The stack, what was posted (task id -> camera) and what the receiver got per task."""

    def __init__(
        self, stack: Stack, posted: dict[str, str], labels: dict[str, set[str]], failed: str
    ) -> None:
        self.stack, self.posted, self.labels, self.failed = stack, posted, labels, failed
        self.page = f"{stack.url}/view"


def event(photo: str, camera: str, callback: str) -> dict[str, Any]:
    image = {
        "type": "image/jpeg",
        "timestamp": "2017-05-05T01:31:13.0",
        "image_b64": b64((DATA / photo).read_bytes()),
    }
    return {"callback_url": callback, "user_id": "u1", "camera": camera, "images": [image]}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    receiver = Receiver()
    receiver.script["/gone"] = [404]
    try:
        with Stack(tmp_path_factory.mktemp("browser")) as stack:
            stack.start_worker()
            posted, labels = {}, {}
            failed = stack.post(event("dog.jpg", "gate", receiver.url("/gone"))).json()["task_id"]
            for photo, camera in PHOTOS.items():
                answer = stack.post(event(photo, camera, receiver.url(f"/cb/{photo}")))
                posted[answer.json()["task_id"]] = camera
            for task_id, photo in zip(posted, PHOTOS, strict=True):
                body = receiver.wait_for(f"/cb/{photo}", 1)[0]
                labels[task_id] = {label for found in body["labels"].values() for label in found}
            stack.wait_status(failed, "failed")
            for task_id in posted:
                wait_for_pictures(stack, task_id)
            yield Service(stack, posted, labels, failed)
    finally:
        receiver.close()


def wait_for_pictures(stack: Stack, task_id: str, timeout: float = 30) -> None:
    """Until the worker stored the task's pictures (it makes them after the delivery)."""
    deadline = time.monotonic() + timeout
    while None in [
        i["picture"] for i in requests.get(f"{stack.url}/{task_id}", timeout=10).json()["images"]
    ]:
        assert time.monotonic() < deadline, f"task {task_id}: no pictures after {timeout} s"
        time.sleep(0.2)


def chromium(url: str, profile: Path, *args: str, budget: float = 10) -> str:
    """Headless Chromium on `url` in a fresh profile, after `budget` s of the page's (virtual)
    time: 10 s, three refreshes."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget * 1000:.0f}",
        *args,
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Rows(HTMLParser):
    """The DOM's table rows with a data-id: their text and their images' attributes; and the
    body's attributes, the #live text and the script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.body: dict[str, str | None] = {}
        self.scripts: list[dict[str, str | None]] = []
        self.live = ""
        self._row: str | None = None
        self._table: str | None = None
        self._in_live = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id")
        elif tag == "tr" and found.get("data-id"):
            self._row = str(found["data-id"])
            key = f"{self._table}:{self._row}"
            self.rows[key] = {"text": "", "images": []}
        elif tag == "img" and self._row:
            self.rows[f"{self._table}:{self._row}"]["images"].append(found)
        elif tag == "body":
            self.body = found
        elif tag == "script":
            self.scripts.append(found)
        self._in_live = found.get("id") == "live"  # a span of text alone

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        self._in_live = False

    def handle_data(self, data: str) -> None:
        if self._row:
            self.rows[f"{self._table}:{self._row}"]["text"] += data
        if self._in_live:
            self.live += data


def test_the_page_shows_what_the_worker_saw(service: Service, tmp_path: Path) -> None:
    dom = chromium(service.page, tmp_path / "profile", "--dump-dom")
    page = Rows()
    page.feed(dom)
    assert int(page.body.get("data-refreshed") or 0) >= 1, "the script never refreshed the page"
    assert page.live.strip() == "live, every 3 s"
    shown = [key.split(":", 1)[1] for key in page.rows if key.startswith("events:")]
    assert shown == [*reversed(service.posted), service.failed]  # newest first
    for task_id, camera in service.posted.items():
        row = page.rows[f"events:{task_id}"]
        assert camera in row["text"] and "done" in row["text"]
        assert service.labels[task_id] and all(
            f"{label} " in row["text"] for label in service.labels[task_id]
        )
        (img,) = row["images"]
        assert img["src"] == f"{task_id}/images/0.jpg"
        assert img.get("data-loaded") == "1" and int(img["data-width"] or 0) > 100, img
    assert "404" in page.rows[f"failures:{service.failed}"]["text"]
    assert EVIL not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown, as text
    assert page.scripts == [{"src": "view.js", "defer": ""}]


def test_a_screenshot_of_the_page(service: Service, tmp_path: Path) -> None:
    shot = screenshot(service.page, tmp_path)
    assert colours(shot) > 1000, "the screenshot looks blank: no photos on it"


LIST_READY = "Number(document.body.dataset.refreshed || 0) >= 1 && [...document.images]"
LIST_READY += ".every((i) => i.complete && i.naturalWidth > 0)"
TASK_READY = "[...document.images].every((i) => i.complete && i.naturalWidth > 0)"


def test_both_pages_fit_a_desktop_and_a_phone(service: Service, tmp_path: Path) -> None:
    """No sideways scrolling, no console error, no CSP violation, times in local time; the
    screenshots, kept under HOOK_VIEW_SCREENSHOT's folder when it is set."""
    person = next(t for t, camera in service.posted.items() if camera == "back garden")
    pages = {
        "view": (service.page, LIST_READY),
        "task": (f"{service.stack.url}/{person}/view", TASK_READY),
    }
    target = os.environ.get("HOOK_VIEW_SCREENSHOT")
    browser = Browser(str(CHROMIUM), tmp_path / "profile")
    try:
        for name, (url, ready) in pages.items():
            for suffix, size in (("", WINDOW), ("-phone", PHONE)):
                browser.open(url, size, mobile=size == PHONE, ready=ready)
                browser.wait(0.5)
                where = f"{name}{suffix}"
                widths = browser.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert widths[1] == size[0] and widths[0] <= widths[1], (where, widths)
                assert browser.evaluate("window.__csp") == [], where
                assert browser.evaluate(
                    "[...document.querySelectorAll('time')].every((t) => t.dataset.local)"
                ), f"{where}: a time not in local time"
                shot = browser.screenshot(tmp_path / f"{where}.png")
                assert Image.open(shot).size == size
                assert colours(shot) > 1000, f"{where}: the screenshot looks blank"
                if target:
                    path = (ROOT / target).parent / f"{where}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shot, path)
        assert browser.errors == []
    finally:
        browser.close()


def screenshot(url: str, folder: Path, *args: str, budget: float = 10) -> Path:
    """A WINDOW-sized PNG of the page, as Chromium shows it after `budget` s."""
    shot = folder / "view.png"
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    chromium(
        url,
        folder / "profile",
        f"--screenshot={shot}",
        size,
        "--hide-scrollbars",
        *args,
        budget=budget,
    )
    assert Image.open(shot).size == WINDOW
    return shot


def colours(png: Path) -> int:
    """How many colours the picture has: a page of text has a few hundred, photos thousands."""
    return len(Image.open(png).convert("RGB").getcolors(maxcolors=1_000_000) or [])


def test_the_filtered_list_and_a_retry_clicked_on_a_phone(service: Service, tmp_path: Path) -> None:
    """The list filtered to the failures at phone width holds the failed event alone; its retry
    button, clicked in the browser, is a same-origin form POST the server takes (logged) and
    answers with the event's page. Last in this file: the event is queued again after it."""
    browser = Browser(str(CHROMIUM), tmp_path / "profile")
    try:
        browser.open(f"{service.page}?status=failed", PHONE, mobile=True, ready=LIST_READY)
        widths = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1] == PHONE[0], widths
        shown = browser.evaluate(
            "[...document.querySelectorAll('#events tr[data-id]')].map((r) => r.dataset.id)"
        )
        assert shown == [service.failed]
        assert browser.evaluate("document.querySelector('form.action button') !== null")
        browser.evaluate("document.querySelector('form.action button').click(), true")
        deadline = time.monotonic() + 20
        while not str(browser.evaluate("location.href")).endswith(f"/{service.failed}/view"):
            assert time.monotonic() < deadline, browser.evaluate("location.href")
            browser.wait(0.2)
        assert f"task {service.failed}: retry from the page: requeued" in service.stack.log("web")
        assert browser.errors == []
    finally:
        browser.close()
