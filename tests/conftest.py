"""Shared fixtures: a real nx-27017 server on a free port with a temporary data dir."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from hook.embedded import EmbeddedMongo
from hook.settings import Settings
from tests.factories import API_KEY, free_port


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


def make_settings(**env: str) -> Settings:
    """Settings as from_env would read them, with test defaults and `env` on top."""
    base = {"HOOK_API_KEY": API_KEY, "HOOK_CALLBACK_HOSTS": "camio.com,127.0.0.1"}
    return Settings.from_env({**base, **env})


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(app: Callable) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
