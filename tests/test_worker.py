"""The worker in-process: its threads' behaviour at the edges, with real parts."""

from __future__ import annotations

import logging
import threading

import pytest
from pymongo import MongoClient

from hook.hosts import HostAllowList
from hook.retry import RetryPolicy
from hook.store import TaskStore
from hook.worker import Config, Worker
from tests.factories import free_port

CONFIG = Config(lease_seconds=3, callback_timeout=2, retention_seconds=3600,
                max_image_pixels=1_000_000, policy=RetryPolicy(),
                hosts=HostAllowList(("127.0.0.1",)))  # fmt: skip


def test_the_lease_keeper_ends_cleanly_when_stopped_while_mongodb_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client: MongoClient = MongoClient(f"mongodb://127.0.0.1:{free_port()}",
                                      serverSelectionTimeoutMS=200)  # fmt: skip
    store = TaskStore(client["nowhere"])
    worker = Worker(store, detector=None, config=CONFIG, metrics=object())  # type: ignore[arg-type]
    worker.stop()
    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(worker, failures))
    with caplog.at_level(logging.WARNING, logger="hook.worker"):
        thread.start()
        thread.join(10)
    assert not thread.is_alive() and failures == []
    assert "could not record that it stopped" in caplog.text


def _run(worker: Worker, failures: list[BaseException]) -> None:
    try:
        worker._keep_leases()
    except BaseException as exc:  # whatever escaped the thread
        failures.append(exc)
