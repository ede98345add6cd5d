"""The command lines of the processes hook starts: gunicorn serving hook.wsgi:app, and worker.py.

One place for them, so `run`, systemd's `python -m hook web` and the tests start the same thing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hook.config.settings import Settings
from hook.config.table import PROJECT_DIR

CONNECTIONS = 1000  # per gunicorn worker process
HEADER_SECONDS = 5  # a client's time to send a request's line and headers, in all


def gunicorn_argv(bind: str, workers: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    """gunicorn serving hook.wsgi:app; no --preload, so each worker opens its own MongoClient."""
    https = ["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls else []
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "hook.wsgi:app",
        "--chdir",
        str(PROJECT_DIR),
        "--workers",
        str(workers),
        "--bind",
        bind,
        # gevent: a connection is a greenlet, so hundreds of slow or idle clients hold no
        # worker; --keep-alive bounds the time a client has to send each request's headers
        # (gunicorn's async workers read them under that timeout), the body has its own.
        "--worker-class",
        "hook.web.gevent_worker.ClosingGeventWorker",
        "--worker-connections",
        str(CONNECTIONS),
        "--keep-alive",
        str(HEADER_SECONDS),
        "--logger-class",
        "hook.redact.GunicornLogger",
        "--graceful-timeout",
        "10",
        "--no-control-socket",
        *https,
    ]


def web_argv(settings: Settings) -> list[str]:
    """gunicorn as the settings ask for it (bind, worker processes, TLS)."""
    tls = (settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    return gunicorn_argv(settings.bind, settings.web_workers, tls)


def worker_argv() -> list[str]:
    """`python worker.py` with this interpreter (the venv's)."""
    return [sys.executable, str(PROJECT_DIR / "worker.py")]
