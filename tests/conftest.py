"""Shared fixtures: a real nx-27017 server on a free port with a temporary data dir.

Fixtures only: helpers live in tests/factories.py (data), tests/loopback.py (in-process HTTP),
tests/receiver.py (the callback receiver) and tests/procs.py (the real processes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from hook.embedded import EmbeddedMongo
from tests.factories import SIGNING_SECRET
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


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """Camio's callback, stood in for on a free loopback port; one per test module. It checks
    every POST's signature (SIGNING_SECRET) and answers an unsigned or forged one 401."""
    server = Receiver(secrets=[SIGNING_SECRET])
    yield server
    server.close()
