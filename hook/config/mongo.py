"""Connecting to MongoDB: the configured URI, or the embedded server started on demand."""

from __future__ import annotations

import logging
import socket

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError
from pymongo.uri_parser import parse_uri

from hook.config.settings import Settings
from hook.errors import HookError
from hook.invocation import hook_command
from hook.store import TaskStore
from hook.store.embedded import EmbeddedMongo
from hook.store.round_trips import RoundTrips

log = logging.getLogger(__name__)


def embedded_for(settings: Settings) -> EmbeddedMongo:
    """The embedded server this installation uses when HOOK_MONGO_URI is unset."""
    return EmbeddedMongo(settings.data_dir / "mongo", settings.embedded_port)


def mongo_uri(settings: Settings, *, start_embedded: bool = True) -> str:
    """HOOK_MONGO_URI, or the embedded server's URI, after making sure it runs (once per
    data dir) unless start_embedded is False (tools that only look, like `status`)."""
    if settings.mongo_uri:
        return settings.mongo_uri
    embedded = embedded_for(settings)
    if start_embedded:
        embedded.ensure_running()
    return embedded.uri


def connect(
    settings: Settings,
    *,
    app_name: str,
    start_embedded: bool = True,
    round_trips: RoundTrips | None = None,
) -> Database:
    """A client of this process's own (PyMongo is not fork-safe) and the hook database.

    Short server-selection timeouts make a MongoDB outage a quick 503 instead of a hung request.
    `round_trips`, if given, counts every command the client sends.
    """
    client: MongoClient = MongoClient(
        mongo_uri(settings, start_embedded=start_embedded),
        appname=app_name,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        socketTimeoutMS=max(30_000, settings.mongo_timeout_ms),
        retryWrites=True,
        event_listeners=[round_trips] if round_trips else [],
    )
    return client[settings.mongo_db]


def make_indexes(store: TaskStore) -> None:
    """Make the indexes at start-up if MongoDB answers; else the store makes them on first use."""
    try:
        store.ensure_indexes()
    except PyMongoError as exc:
        log.warning("MongoDB not reachable at start-up (%s); indexes will be made later", exc)


def check_answering(settings: Settings, timeout: float = 1.0) -> None:
    """For tools that only look (`status`, `show`): a HookError at once, saying which server
    and how to start it, when none of the configured MongoDB's servers takes a connection
    (pymongo would wait its whole selection timeout, then name only its exception)."""
    nodes = _nodes(settings)
    if not nodes:
        return  # a mongodb+srv URI: its servers are in DNS; pymongo's error will have to do
    for host, port in nodes:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError:
            continue
    raise HookError(not_answering(settings))


def not_answering(settings: Settings) -> str:
    """What to say when MongoDB does not answer: which server, and how to start it."""
    if not settings.mongo_uri:
        embedded, hook = embedded_for(settings), hook_command()
        return (
            f"the embedded MongoDB ({embedded.host}:{embedded.port}, data in "
            f"{embedded.data_dir}) is not running: start the service with `{hook} run` (or the "
            f"store alone with `{hook} mongo`); with systemd: sudo systemctl start hook-mongo"
        )
    shown = ", ".join(f"{host}:{port}" for host, port in _nodes(settings)) or "its servers"
    return (
        f"MongoDB at {shown} (HOOK_MONGO_URI) does not answer: start it, or point "
        "HOOK_MONGO_URI at one that runs"
    )


def _nodes(settings: Settings) -> list[tuple[str, int]]:
    """The (host, port) of each server the settings name; [] for a mongodb+srv URI."""
    if not settings.mongo_uri:
        embedded = embedded_for(settings)
        return [(embedded.host, embedded.port)]
    if settings.mongo_uri.startswith("mongodb+srv://"):
        return []
    try:
        return [(str(h), int(p)) for h, p in parse_uri(settings.mongo_uri)["nodelist"]]
    except (ValueError, InvalidURI, ConfigurationError):
        return []
