"""When `python -m hook run` may say "hook is up": the web answers and every worker has its model.

A worker records its first heartbeat only once its model is loaded and it is taking tasks, so a
heartbeat from each worker process the launcher started (same host, same pid, newer than its
start) means events will be labeled, not just stored.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from hook.store import TaskStore
from hook.store.records import Heartbeat

UNIX = "unix:"
PROBE_SECONDS = 0.5  # the launcher checks often; none of its checks may hold it up for long


def local_address(bind: str) -> str:
    """host:port to reach a TCP bind address from this machine (a wildcard becomes loopback)."""
    host, _, port = bind.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"{host}:{port}"


def describe(bind: str, *, tls: bool) -> str:
    """The base URL a person on this machine uses, or the socket for a unix: bind."""
    if bind.startswith(UNIX):
        return bind
    return f"{'https' if tls else 'http'}://{local_address(bind)}"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (gunicorn's `unix:/path` bind), optionally in TLS."""

    def __init__(self, path: str, timeout: float, context: ssl.SSLContext | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path, self.context = path, context

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = self.context.wrap_socket(sock) if self.context else sock


def web_answers(bind: str, *, tls: bool, timeout: float = PROBE_SECONDS) -> bool:
    """Whether GET /tasks/ gets any HTTP answer: gunicorn is bound and its app is loaded."""
    context = None
    if tls:  # our own certificate, on this machine: the question is "does it answer", not "who"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    connection: http.client.HTTPConnection
    if bind.startswith(UNIX):
        connection = _UnixConnection(bind.removeprefix(UNIX), timeout, context)
    elif context is not None:
        connection = http.client.HTTPSConnection(
            local_address(bind), timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(local_address(bind), timeout=timeout)
    try:
        connection.request("GET", "/tasks/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def workers_waiting(
    beats: Iterable[Heartbeat], started: Mapping[int, float], host: str
) -> list[int]:
    """PIDs in `started` (pid -> wall-clock start) with no heartbeat from `host` since then."""
    latest: dict[int, float] = {}
    for beat in beats:
        if beat.host == host:
            latest[beat.pid] = max(latest.get(beat.pid, 0.0), beat.seen_at)
    return [pid for pid, since in started.items() if latest.get(pid, -1.0) < since]


@dataclass
class Readiness:
    """The launcher's check of the service it started; a MongoDB client of its own, short waits."""

    bind: str
    tls: bool
    mongo_uri: str
    mongo_db: str
    host: str = field(default_factory=socket.gethostname)
    client: MongoClient | None = None

    def waiting_for(self, workers: Mapping[str, tuple[int, float]]) -> list[str]:
        """What is not ready yet, in words; empty once everything is. `workers`: name -> (pid,
        wall-clock start) of the worker processes running now."""
        if not web_answers(self.bind, tls=self.tls):
            return [f"the web on {describe(self.bind, tls=self.tls)}"]
        try:
            beats = self._store().workers()
        except PyMongoError:
            return ["MongoDB"]
        started = dict(workers.values())
        missing = set(workers_waiting(beats, started, self.host))
        return [
            f"{name} (pid {pid}) to load its model"
            for name, (pid, _) in workers.items()
            if pid in missing
        ]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _store(self) -> TaskStore:
        if self.client is None:
            ms = int(PROBE_SECONDS * 1000)
            self.client = MongoClient(
                self.mongo_uri,
                appname="hook-run",
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms,
                socketTimeoutMS=4 * ms,
            )
        return TaskStore(self.client[self.mongo_db])
