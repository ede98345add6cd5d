"""The change feed (hook.worker.change_feed): against a real nx-27017 it steps aside at once; its
loop, with a scripted watch source (no replica set can run here, so that is the one fake),
rings a real WakeUp on each change and resumes after a transient error."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from pymongo.errors import AutoReconnect, OperationFailure

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.feed import QUEUED_CHANGES
from hook.wakeup import WakeUp
from hook.worker.change_feed import ChangeFeed
from tests.factories import event, parsed_event

AWAIT = 0.05


@pytest.fixture
def wake(tmp_path: Path) -> Iterator[WakeUp]:
    with WakeUp.open(tmp_path) as up:
        yield up


def run_for(feed: ChangeFeed, seconds: float = 10) -> float:
    """Run the feed in a thread until it returns; its duration (fails if it outlasts)."""
    started = time.monotonic()
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the feed still runs after {seconds} s"
    return time.monotonic() - started


def follow(feed: ChangeFeed, stopping: threading.Event, wake: WakeUp, rings: int) -> None:
    """Run the feed in a thread until it has rung `rings` times (10 s at most), then stop it;
    fails if it does not stop."""
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while feed.rings < rings and time.monotonic() < deadline:
        wake.wait(0.1)
    stopping.set()
    thread.join(5)
    assert not thread.is_alive(), "the feed did not stop"


def fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hook.worker.change_feed"
        and "uses the local wake-up and polling" in r.getMessage()
    ]


def triggers(mongo: EmbeddedMongo, db_name: str) -> list[str]:
    """The SQLite triggers nx-27017 installs when a collection is watched (they stay)."""
    path = mongo.data_dir / f"{db_name}.db"
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    return [name for (name,) in rows]


def test_nx_27017_has_no_change_streams_so_the_feed_steps_aside_at_once(
    mongo: EmbeddedMongo,
    db: Database,
    db_name: str,
    wake: WakeUp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hook.worker.change_feed")
    store = TaskStore(db)
    store.enqueue(parsed_event(event(1, seed=1)))
    assert store.streams_changes() is False
    assert run_for(ChangeFeed(store, wake, threading.Event()), 10) < 2
    assert fallbacks(caplog) == [
        "the MongoDB server has no change streams: pick-up uses the local wake-up and polling"
    ]
    assert triggers(mongo, db_name) == []  # it never watched: no change log on every write


class Claiming(TaskStore):
    """A real store that claims change streams, to show what watching nx-27017 would do."""

    def streams_changes(self) -> bool:
        return True


def test_a_stream_that_does_not_wait_is_given_up_not_spun_on(
    db: Database, wake: WakeUp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hook.worker.change_feed")
    store = Claiming(db)
    store.enqueue(parsed_event(event(1, seed=1)))
    # nx-27017 accepts the watch but answers each getMore at once instead of waiting 1 s
    assert run_for(ChangeFeed(store, wake, threading.Event(), await_seconds=1.0), 10) < 3
    assert fallbacks(caplog) == [
        "the MongoDB server's change stream does not wait: "
        "pick-up uses the local wake-up and polling"
    ]


class Stream:
    """One scripted change stream: each step a change (dict), None (an empty getMore that
    waited) or an exception raised there; after the script, empty getMores until closed."""

    def __init__(self, script: list[Any], await_seconds: float) -> None:
        self.script, self.await_seconds = list(script), await_seconds
        self.resume_token: Mapping[str, Any] | None = None
        self.closed = False

    def try_next(self) -> Mapping[str, Any] | None:
        step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        if step is None:
            time.sleep(self.await_seconds)  # as a server's getMore waits
            return None
        self.resume_token = step["_id"]
        return step

    def close(self) -> None:
        self.closed = True


class Source:
    """A watch source yielding scripted streams, one per watch; records each resume token."""

    def __init__(self, *scripts: list[Any] | BaseException, supported: bool = True) -> None:
        self.scripts, self.supported = list(scripts), supported
        self.resumed: list[Mapping[str, Any] | None] = []
        self.streams: list[Stream] = []
        self.watched = threading.Event()  # set once the last script is being followed

    def streams_changes(self) -> bool:
        return self.supported

    def watch_queued(self, resume_after: Mapping[str, Any] | None, await_seconds: float) -> Any:
        self.resumed.append(resume_after)
        script = self.scripts.pop(0) if self.scripts else []
        if isinstance(script, BaseException):
            raise script
        if not self.scripts:
            self.watched.set()
        stream = Stream(script, await_seconds)
        self.streams.append(stream)
        return stream


def change(n: int) -> dict[str, Any]:
    return {"_id": {"_data": f"token-{n}"}}


def test_each_change_rings_the_wake_up(wake: WakeUp) -> None:
    stopping = threading.Event()
    source = Source([None, change(1), None, None, change(2), change(3)])
    feed = ChangeFeed(source, wake, stopping, await_seconds=AWAIT)
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    assert wake.wait(10) is True
    deadline = time.monotonic() + 10
    while feed.rings < 3 and time.monotonic() < deadline:
        wake.wait(0.1)
    assert feed.rings == 3 and feed.resume == {"_data": "token-3"}
    stopping.set()
    thread.join(5)
    assert not thread.is_alive() and source.streams[0].closed


def test_a_transient_error_is_retried_from_the_last_resume_token(
    wake: WakeUp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hook.worker.change_feed")
    stopping = threading.Event()
    source = Source(
        [change(1), AutoReconnect("connection reset")],
        AutoReconnect("still down"),  # opening it again fails too: a longer backoff
        [None, change(2)],
    )
    feed = ChangeFeed(source, wake, stopping, await_seconds=AWAIT, backoff=(0.05, 0.2))
    follow(feed, stopping, wake, rings=2)
    assert feed.rings == 2
    token = {"_data": "token-1"}
    assert source.resumed == [None, token, token]  # nothing between is missed
    assert source.streams[0].closed
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 2 and "opening it again in 0.1 s" in retries[1]
    assert fallbacks(caplog) == []


def test_a_refused_watch_steps_aside_once(wake: WakeUp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hook.worker.change_feed")
    refused = OperationFailure(
        "The $changeStream stage is only supported on replica sets", code=40573
    )
    source = Source(refused, [change(1)])
    assert run_for(ChangeFeed(source, wake, threading.Event(), await_seconds=AWAIT)) < 2
    assert len(fallbacks(caplog)) == 1 and "refuses change streams" in fallbacks(caplog)[0]
    assert source.resumed == [None]  # no second try


def test_a_lost_history_starts_again_from_now(wake: WakeUp) -> None:
    stopping = threading.Event()
    lost = OperationFailure("resume point no longer in the oplog", code=286)
    source = Source([change(1), lost], [change(2)])
    feed = ChangeFeed(source, wake, stopping, await_seconds=AWAIT, backoff=(0.01, 0.01))
    follow(feed, stopping, wake, rings=2)
    assert feed.rings == 2 and source.resumed == [None, None]


def test_mongodb_down_at_start_is_retried_until_stopped(wake: WakeUp) -> None:
    class Down(Source):
        def streams_changes(self) -> bool:
            raise AutoReconnect("no server")

    stopping = threading.Event()
    feed = ChangeFeed(Down(), wake, stopping, backoff=(0.01, 0.05))
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    assert wake.wait(5) is True  # each failure rings: the worker looks for itself
    assert thread.is_alive()
    stopping.set()
    thread.join(5)
    assert not thread.is_alive()


def test_the_stream_asks_for_new_and_requeued_tasks_only() -> None:
    (match, project) = QUEUED_CHANGES
    assert project == {"$project": {"_id": 1}}  # only the resume token travels
    kinds = match["$match"]["$or"]
    assert {"operationType": "insert"} in kinds
    assert {"operationType": "update", "updateDescription.updatedFields.status": "queued"} in kinds
