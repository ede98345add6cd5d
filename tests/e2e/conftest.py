"""Fixtures of the end-to-end tests: each module runs its own `web` Stack on its own database
(the module's `DB`); these give every test the stack with its workers stopped at the end, and
a store on that database, as the web and the workers see it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from tests.procs import Stack


@pytest.fixture(scope="module")
def web(
    mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """gunicorn for the whole module, on its DB, delivering to loopback with quick retries;
    each test starts the workers it wants. A module that needs other settings defines its own."""
    with Stack(
        tmp_path_factory.mktemp("e2e"),
        mongo=mongo,
        HOOK_MONGO_DB=request.module.DB,
        HOOK_CALLBACK_HOSTS="127.0.0.1",
        HOOK_RETRY_BASE_SECONDS="0.3",
        HOOK_CALLBACK_TIMEOUT="20",
    ) as running:
        yield running


@pytest.fixture
def stack(web: Stack) -> Iterator[Stack]:
    """The module's stack; the workers a test started are stopped at its end."""
    yield web
    web.stop_workers()


@pytest.fixture(scope="module")
def store(mongo: EmbeddedMongo, request: pytest.FixtureRequest) -> Iterator[TaskStore]:
    client: MongoClient = MongoClient(mongo.uri)
    yield TaskStore(client[request.module.DB])
    client.close()
