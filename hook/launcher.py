"""`python -m hook run`: the whole service in the foreground, for trying it out on one machine.

Starts the embedded MongoDB when HOOK_MONGO_URI is unset, then gunicorn with hook.wsgi:app
and HOOK_WORKERS worker.py processes.
Children run in their own sessions, so a terminal's Ctrl-C (or closing it: SIGHUP) reaches only
this launcher, which stops them in order (web first, MongoDB last), each by its PID. A child or
the embedded MongoDB that dies is restarted with backoff and logged; one that exits with code 2
(a configuration error) stops everything, as restarting it would only fail again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import requests
import urllib3

from hook.embedded import EmbeddedMongo
from hook.errors import ConfigError
from hook.mongo import embedded_for
from hook.settings import PROJECT_DIR, Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0
RESTART_FIRST, RESTART_MAX = 1.0, 30.0  # seconds before restarting a process that died
STABLE_SECONDS = 60.0  # a process that ran this long before dying restarts after RESTART_FIRST
CONFIG_ERROR = 2  # the exit code of web and worker for "configuration error, do not restart"
CONNECTIONS = 1000  # per gunicorn worker process
HEADER_SECONDS = 5  # a client's time to send a request's line and headers, in all


def gunicorn_argv(bind: str, workers: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    """gunicorn serving hook.wsgi:app; no --preload, so each worker opens its own MongoClient."""
    https = ["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls else []
    return [
        sys.executable, "-m", "gunicorn", "hook.wsgi:app", "--chdir", str(PROJECT_DIR),
        "--workers", str(workers), "--bind", bind,
        # gevent: a connection is a greenlet, so hundreds of slow or idle clients hold no
        # worker; --keep-alive bounds the time a client has to send each request's headers
        # (gunicorn's async workers read them under that timeout), the body has its own.
        "--worker-class", "hook.gunicorn_worker.Worker", "--worker-connections", str(CONNECTIONS),
        "--keep-alive", str(HEADER_SECONDS),
        "--logger-class", "hook.redact.GunicornLogger",
        "--graceful-timeout", "10", "--no-control-socket", *https,
    ]  # fmt: skip


def web_argv(settings: Settings) -> list[str]:
    tls = (settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    return gunicorn_argv(settings.bind, settings.web_workers, tls)


def worker_argv() -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "worker.py")]


@dataclass
class Child:
    """A process the launcher started, and how to start it again."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    started: float  # monotonic
    quick_deaths: int = 0  # exits in a row soon after starting: the backoff grows with them
    restart_at: float | None = None  # when it is down: when to start it again


def restart_delay(quick_deaths: int) -> float:
    """Seconds before restarting something that died: 1, 2, 4 ... up to RESTART_MAX."""
    return min(RESTART_MAX, RESTART_FIRST * 2 ** max(0, quick_deaths - 1))


@dataclass
class Launcher:
    """Owns the child processes it started, restarts those that die; nothing else."""

    settings: Settings
    children: list[Child] = field(default_factory=list)
    embedded: EmbeddedMongo | None = None
    stopping: bool = False
    env: dict[str, str] = field(default_factory=dict)
    mongo_restart_at: float | None = None
    mongo_deaths: int = 0
    announced: bool = False

    def commands(self) -> list[tuple[str, list[str]]]:
        """What to run besides MongoDB, as (name, argv)."""
        web = ("web", web_argv(self.settings))
        workers = [(f"worker {n + 1}", worker_argv()) for n in range(self.settings.workers)]
        return [web, *workers]

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self.env = dict(os.environ)
        try:
            if not self.settings.mongo_uri:
                self.env["HOOK_MONGO_URI"] = self._start_embedded()
            for name, argv in self.commands():
                self.children.append(Child(name, argv, self._spawn(name, argv), time.monotonic()))
            return self._watch()
        finally:
            self._stop_all()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=self.env, start_new_session=True)
        log.info("started %s (pid %d)", name, process.pid)
        return process

    def _start_embedded(self) -> str:
        embedded = embedded_for(self.settings)
        if embedded.adopt():
            log.info("using the embedded MongoDB already running on %s", embedded.uri)
        else:
            embedded.start()
            self.embedded = embedded
        return embedded.uri

    def _watch(self) -> int:
        """Until stopped: restart what dies (with backoff), and say when the web answers."""
        while not self.stopping:
            now = time.monotonic()
            self._keep_mongo(now)
            for child in self.children:
                if self._keep(child, now) == CONFIG_ERROR:
                    return CONFIG_ERROR
            if not self.announced and self._web_answers():
                self.announced = True
                self._announce()
            time.sleep(0.2)
        return 0

    def _keep(self, child: Child, now: float) -> int | None:
        """Notice that `child` died, or start it again when its backoff is over."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.process, child.started = self._spawn(child.name, child.argv), now
                child.restart_at = None
            return None
        code = child.process.poll()
        if code is None:
            return None
        pid = child.process.pid
        if code == CONFIG_ERROR:
            log.critical("%s (pid %d) exited with code %d, a configuration error; stopping "
                         "everything", child.name, pid, code)  # fmt: skip
            return code
        quick = now - child.started < STABLE_SECONDS
        child.quick_deaths = child.quick_deaths + 1 if quick else 1
        child.restart_at = now + restart_delay(child.quick_deaths)
        log.error("%s (pid %d) exited with code %d; restarting it in %.0f s", child.name, pid,
                  code, child.restart_at - now)  # fmt: skip
        return code

    def _announce(self) -> None:
        host = _local(self.settings.bind)
        log.info("hook is up: POST events to http://%s/tasks/<HOOK_API_KEY>; health at "
                 "http://%s/tasks/ ; Ctrl-C stops everything", host, host)  # fmt: skip

    def _keep_mongo(self, now: float) -> None:
        """Restart the embedded MongoDB this launcher started if it died (reaping it)."""
        embedded = self.embedded
        if embedded is None:
            return
        if self.mongo_restart_at is None:
            process = embedded.process
            if process is None or process.poll() is None:
                return
            self.mongo_deaths += 1
            self.mongo_restart_at = now + restart_delay(self.mongo_deaths)
            log.error("the embedded MongoDB (pid %d) exited with code %d; restarting it in %.0f s",
                      process.pid, process.returncode, self.mongo_restart_at - now)  # fmt: skip
        elif now >= self.mongo_restart_at:
            try:
                embedded.start()
            except ConfigError as exc:
                self.mongo_deaths += 1
                self.mongo_restart_at = now + restart_delay(self.mongo_deaths)
                log.error("the embedded MongoDB did not restart (%s); trying again in %.0f s",
                          exc, self.mongo_restart_at - now)  # fmt: skip
                return
            self.mongo_restart_at = None
            log.info("the embedded MongoDB is back")

    def _web_answers(self) -> bool:
        scheme = "https" if self.settings.tls_cert else "http"
        with warnings.catch_warnings():  # our own certificate, on loopback: not checked here
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            try:
                requests.get(f"{scheme}://{_local(self.settings.bind)}/tasks/", timeout=0.5,
                             verify=False)  # noqa: S501  # fmt: skip
            except requests.RequestException:
                return False
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:  # a second Ctrl-C: no more waiting
            for child in self.children:
                if child.process.poll() is None:
                    child.process.kill()
        self.stopping = True

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                log.info("stopping %s (pid %d)", child.name, child.process.pid)
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop in time; killing it", child.name,
                            child.process.pid)  # fmt: skip
                child.process.kill()
                child.process.wait()
        self.children.clear()
        if self.embedded is not None:
            log.info("stopping the embedded MongoDB")
            self.embedded.stop()
            self.embedded = None


def _local(bind: str) -> str:
    """The address to reach a bind address from this machine."""
    host, _, port = bind.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"{host}:{port}"
