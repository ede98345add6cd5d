"""Large events one web process takes in at once: past its slots, 503 with Retry-After at once,
before the body is read, and nothing stored; small events never wait."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from pymongo.database import Database

from hook import heap
from hook.errors import Busy
from hook.store import TaskStore
from hook.web.admission import LargeBodies
from hook.web.app import create_app
from tests.factories import API_KEY, event, make_settings
from tests.loopback import serve

LARGE = 10_000  # bytes from which a body takes a slot, here


@pytest.fixture
def slots() -> LargeBodies:
    return LargeBodies(at_once=1, large=LARGE)


@pytest.fixture
def base(db: Database, slots: LargeBodies) -> Iterator[str]:
    with serve(create_app(make_settings(), TaskStore(db), large_bodies=slots)) as url:
        yield url


def post(base: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{base}/tasks/{API_KEY}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def test_a_large_event_past_the_slots_is_told_to_come_back(
    base: str, slots: LargeBodies, db: Database
) -> None:
    large = json.dumps(event(2, seed=1, size=(200, 150))).encode()
    small = json.dumps(event(1, seed=2)).encode()
    assert len(large) >= LARGE > len(small)
    assert slots.slots.acquire(blocking=False)  # another large event is being taken in
    try:
        busy = post(base, large)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert busy.json() == {
            "ok": False,
            "error": "this server is taking in 1 large events already; send it again in a second",
            "field": "body",
        }
        assert db.tasks.count_documents({}) == 0
        assert post(base, small).status_code == 200  # a small one never waits
    finally:
        slots.slots.release()
    assert post(base, large).status_code == 200  # its slot free again: taken in
    assert db.tasks.count_documents({}) == 2


def test_a_slot_is_given_back_whatever_becomes_of_the_event(slots: LargeBodies) -> None:
    environ = {"CONTENT_LENGTH": str(LARGE)}
    with pytest.raises(ValueError), slots.admitted(environ):
        raise ValueError("a bad event")
    # one slot: a second is refused, and a body of unknown length counts as large
    with slots.admitted(environ), pytest.raises(Busy), slots.admitted({"CONTENT_LENGTH": ""}):
        pass
    with slots.admitted({"CONTENT_LENGTH": str(LARGE - 1)}), slots.admitted(environ):
        pass  # a small one takes no slot


def test_the_heap_goes_back_to_the_system_after_a_large_body_only(
    slots: LargeBodies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight maximum-size bodies left a web process at 235 MB for good; with the heap trimmed
    after each large one, 75 MB (bench/memory.py). Small ones cost no trim."""
    trims: list[str] = []

    def give_back() -> bool:
        trims.append("trimmed")
        return True

    monkeypatch.setattr(heap, "give_back", give_back)
    with slots.admitted({"CONTENT_LENGTH": str(LARGE - 1)}):
        pass
    assert trims == []
    with pytest.raises(ValueError), slots.admitted({"CONTENT_LENGTH": str(LARGE)}):
        raise ValueError("a bad event")
    assert trims == ["trimmed"]
