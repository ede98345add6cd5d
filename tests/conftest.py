"""Shared fixtures: a real nx-27017 server on a free port with a temporary data dir.

Fixtures only: helpers live in tests/factories.py (data), tests/loopback.py (in-process HTTP),
tests/receiver.py (the callback receiver), tests/procs.py (the real processes) and a
folder's own support module (tests/worker/support.py). Test folders mirror hook's packages;
e2e/ starts the real processes, models/ and bench/ test the builders and benchmarks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.factories import SIGNING_SECRET, FakeClock
from tests.loopback import free_port
from tests.receiver import Receiver


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path_factory.mktemp("nx"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def db(mongo: EmbeddedMongo, db_name: str) -> Iterator[Database]:
    client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=3000)
    yield client[db_name]
    client.drop_database(db_name)
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    """The time the store runs on, moved by hand: `clock.now += 5`."""
    return FakeClock()


@pytest.fixture
def store(db: Database, clock: FakeClock) -> TaskStore:
    """A store on a fresh database, at the hand-moved `clock`'s time."""
    return TaskStore(db, clock=clock)


@pytest.fixture
def live_store(db: Database) -> TaskStore:
    """A store on a fresh database at the real time, for a worker or web running beside it."""
    return TaskStore(db)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """Camio's callback, stood in for on a free loopback port; one per test module. It checks
    every POST's signature (SIGNING_SECRET) and answers an unsigned or forged one 401."""
    server = Receiver(secrets=[SIGNING_SECRET])
    yield server
    server.close()
