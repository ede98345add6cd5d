"""`python -m hook run`: the whole service in the foreground, for trying it out on one machine.

Starts the embedded MongoDB when HOOK_MONGO_URI is unset, then gunicorn with hook.wsgi:app
and HOOK_WORKERS worker.py processes.
Children run in their own sessions, so a terminal's Ctrl-C reaches only this launcher, which
stops them in order (web first, MongoDB last), each by its PID.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from hook.embedded import EmbeddedMongo
from hook.mongo import embedded_for
from hook.settings import PROJECT_DIR, Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0
THREADS = 4  # per gunicorn worker process


def gunicorn_argv(bind: str, workers: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    """gunicorn serving hook.wsgi:app; no --preload, so each worker opens its own MongoClient."""
    https = ["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls else []
    return [
        sys.executable, "-m", "gunicorn", "hook.wsgi:app", "--chdir", str(PROJECT_DIR),
        "--workers", str(workers), "--bind", bind,
        # threads: a slow client holds one thread, not a whole worker (and reads time out)
        "--worker-class", "gthread", "--threads", str(THREADS),
        "--logger-class", "hook.redact.GunicornLogger",
        "--graceful-timeout", "10", "--no-control-socket", *https,
    ]  # fmt: skip


def web_argv(settings: Settings) -> list[str]:
    tls = (settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    return gunicorn_argv(settings.bind, settings.web_workers, tls)


def worker_argv() -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "worker.py")]


@dataclass
class Launcher:
    """Owns the child processes it started; nothing else."""

    settings: Settings
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    embedded: EmbeddedMongo | None = None
    stopping: bool = False

    def commands(self) -> list[tuple[str, list[str]]]:
        """What to run besides MongoDB, as (name, argv)."""
        web = ("web", web_argv(self.settings))
        workers = [(f"worker {n + 1}", worker_argv()) for n in range(self.settings.workers)]
        return [web, *workers]

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        env = dict(os.environ)
        try:
            if not self.settings.mongo_uri:
                env["HOOK_MONGO_URI"] = self._start_embedded()
            for name, argv in self.commands():
                process = subprocess.Popen(argv, env=env, start_new_session=True)
                self.children.append((name, process))
                log.info("started %s (pid %d)", name, process.pid)
            host = self.settings.bind.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - display only
            log.info(
                "hook is up: POST events to http://%s/tasks/<HOOK_API_KEY>; "
                "health at http://%s/tasks/ ; Ctrl-C stops everything",
                host,
                host,
            )
            return self._watch()
        finally:
            self._stop_all()

    def _start_embedded(self) -> str:
        embedded = embedded_for(self.settings)
        if embedded.adopt():
            log.info("using the embedded MongoDB already running on %s", embedded.uri)
        else:
            embedded.start()
            self.embedded = embedded
        return embedded.uri

    def _watch(self) -> int:
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    log.error(
                        "%s (pid %d) exited with code %d; stopping everything",
                        name,
                        process.pid,
                        process.returncode,
                    )
                    return 1
            time.sleep(0.2)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:  # a second Ctrl-C: no more waiting
            for _, process in self.children:
                if process.poll() is None:
                    process.kill()
        self.stopping = True

    def _stop_all(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                log.info("stopping %s (pid %d)", name, process.pid)
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in self.children:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop in time; killing it", name, process.pid)
                process.kill()
                process.wait()
        self.children.clear()
        if self.embedded is not None:
            log.info("stopping the embedded MongoDB")
            self.embedded.stop()
            self.embedded = None
