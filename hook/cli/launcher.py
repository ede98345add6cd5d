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
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType

from hook.cli.argv import web_argv, worker_argv
from hook.cli.readiness import Readiness, describe
from hook.cli.simulator import DEFAULT_PORT
from hook.config import lanes
from hook.config.mongo import embedded_for
from hook.config.settings import Settings
from hook.detect import engines
from hook.errors import ConfigError
from hook.invocation import hook_command
from hook.store.embedded import EmbeddedMongo

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0
RESTART_FIRST, RESTART_MAX = 1.0, 30.0  # seconds before restarting a process that died
STABLE_SECONDS = 60.0  # a process that ran this long before dying restarts after RESTART_FIRST
CONFIG_ERROR = 2  # the exit code of web and worker for "configuration error, do not restart"
NOT_UP_EVERY = 30.0  # seconds between "not up yet" lines while the service starts
TRY_IT_HOST = f"127.0.0.1:{DEFAULT_PORT}"  # where `simulate` takes its callbacks by default


@dataclass
class Child:
    """A process the launcher started, and how to start it again."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    started: float  # monotonic
    since: float = field(default_factory=time.time)  # wall clock, to match its heartbeats
    quick_deaths: int = 0  # exits in a row soon after starting: the backoff grows with them
    restart_at: float | None = None  # when it is down: when to start it again


def restart_delay(quick_deaths: int) -> float:
    """Seconds before restarting something that died: 1, 2, 4 ... up to RESTART_MAX."""
    return min(RESTART_MAX, RESTART_FIRST * 2 ** max(0, quick_deaths - 1))


def child_env(environ: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The children's environment. With HOOK_CALLBACK_HOSTS unset, the try-it allow-list: the
    default hosts plus exactly simulate's callback port on loopback, so the README's try-it
    works without a restart and without opening every local port."""
    env = dict(environ)
    if not env.get("HOOK_CALLBACK_HOSTS", "").strip():
        env["HOOK_CALLBACK_HOSTS"] = ",".join((*settings.callback_hosts, TRY_IT_HOST))
    return env


@dataclass
class Launcher:
    """Owns the child processes it started, restarts those that die; nothing else."""

    settings: Settings
    environ: Mapping[str, str]  # the launcher's own environment: the edge passes os.environ
    children: list[Child] = field(default_factory=list)
    embedded: EmbeddedMongo | None = None
    stopping: bool = False
    signals: int = 0  # SIGINT/SIGTERM/SIGHUP received: a second one kills what still runs
    env: dict[str, str] = field(default_factory=dict)  # the children's
    mongo_restart_at: float | None = None
    mongo_deaths: int = 0
    readiness: Readiness | None = None  # until the service is up
    not_up_log_at: float = 0.0

    @property
    def worker_count(self) -> int:
        """worker.py processes to run: HOOK_WORKERS, or one per few cores (hook.config.lanes),
        one on a GPU."""
        device = engines.chosen_device(self.settings.device, self.settings.engine)
        return lanes.worker_processes(self.settings.workers, lanes.usable_cores(), device)

    def commands(self) -> list[tuple[str, list[str]]]:
        """What to run besides MongoDB, as (name, argv)."""
        web = ("web", web_argv(self.settings))
        workers = [(f"worker {n + 1}", worker_argv()) for n in range(self.worker_count)]
        return [web, *workers]

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self.env = child_env(self.environ, self.settings)
        if self.env.get("HOOK_CALLBACK_HOSTS") != self.environ.get("HOOK_CALLBACK_HOSTS"):
            log.info(
                "HOOK_CALLBACK_HOSTS is unset, so for trying hook out labels may go to %s "
                "and to %s (simulate's callback) only; set HOOK_CALLBACK_HOSTS to choose "
                "(camio.com alone in production)",
                ",".join(self.settings.callback_hosts),
                TRY_IT_HOST,
            )
        try:
            if self.settings.mongo_uri:
                uri = self.settings.mongo_uri
            else:
                uri = self.env["HOOK_MONGO_URI"] = self._start_embedded()
            self.readiness = Readiness(self.settings.bind, self.tls, uri, self.settings.mongo_db)
            self.not_up_log_at = time.monotonic() + NOT_UP_EVERY
            for name, argv in self.commands():
                self.children.append(Child(name, argv, self._spawn(name, argv), time.monotonic()))
            return self._watch()
        finally:
            self._stop_all()

    @property
    def tls(self) -> bool:
        return self.settings.tls_cert is not None

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
        """Until stopped: restart what dies (with backoff), and say when the service is up."""
        while not self.stopping:
            now = time.monotonic()
            self._keep_mongo(now)
            for child in self.children:
                if self._keep(child, now) == CONFIG_ERROR:
                    return CONFIG_ERROR
            self._check_up(now)
            time.sleep(0.2)
        return 0

    def _keep(self, child: Child, now: float) -> int | None:
        """Notice that `child` died, or start it again when its backoff is over."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.process, child.started = self._spawn(child.name, child.argv), now
                child.since, child.restart_at = time.time(), None
            return None
        code = child.process.poll()
        if code is None:
            return None
        pid = child.process.pid
        if code == CONFIG_ERROR:
            log.critical(
                "%s (pid %d) exited with code %d, a configuration error; stopping everything",
                child.name,
                pid,
                code,
            )
            return code
        quick = now - child.started < STABLE_SECONDS
        child.quick_deaths = child.quick_deaths + 1 if quick else 1
        child.restart_at = now + restart_delay(child.quick_deaths)
        log.error(
            "%s (pid %d) exited with code %d; restarting it in %.0f s",
            child.name,
            pid,
            code,
            child.restart_at - now,
        )
        return code

    def _check_up(self, now: float) -> None:
        """Until it is so: is the web answering and has every worker loaded its model?"""
        if self.readiness is None:
            return
        running = {
            c.name: (c.process.pid, c.since)
            for c in self.children
            if c.name.startswith("worker") and c.restart_at is None
        }
        waiting = self.readiness.waiting_for(running)
        if len(running) < self.worker_count:
            waiting.append("a worker being restarted")
        if not waiting:
            self.readiness.close()
            self.readiness = None
            self._announce()
        elif now >= self.not_up_log_at:
            self.not_up_log_at = now + NOT_UP_EVERY
            log.info("not up yet: waiting for %s", ", ".join(waiting))

    def _announce(self) -> None:
        base = describe(self.settings.bind, tls=self.tls)
        # the key is never logged: the URL names the variable the first command exported
        log.info(
            "hook is up: POST events to %s/tasks/$HOOK_API_KEY (the key you exported); health "
            "at %s/tasks/ ; Ctrl-C stops everything",
            base,
            base,
        )
        if TRY_IT_HOST in self.env.get("HOOK_CALLBACK_HOSTS", "").split(","):
            log.info(
                "try it from another terminal, with HOOK_API_KEY exported there too: "
                '%s simulate "%s/tasks/$HOOK_API_KEY" --images tests/data',
                hook_command(),
                base,
            )

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
            log.error(
                "the embedded MongoDB (pid %d) exited with code %d; restarting it in %.0f s",
                process.pid,
                process.returncode,
                self.mongo_restart_at - now,
            )
        elif now >= self.mongo_restart_at:
            try:
                embedded.start()
            except ConfigError as exc:
                self.mongo_deaths += 1
                self.mongo_restart_at = now + restart_delay(self.mongo_deaths)
                log.error(
                    "the embedded MongoDB did not restart (%s); trying again in %.0f s",
                    exc,
                    self.mongo_restart_at - now,
                )
                return
            self.mongo_restart_at = None
            log.info("the embedded MongoDB is back")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only counts: the main loop and _stop_all act on it (nothing else is safe here)."""
        self.signals += 1
        self.stopping = True

    def _stop_all(self) -> None:
        if self.readiness is not None:
            self.readiness.close()
        for child in reversed(self.children):
            if child.process.poll() is None:
                log.info("stopping %s (pid %d)", child.name, child.process.pid)
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            while child.process.poll() is None:
                if self.signals >= 2 or time.monotonic() >= deadline:
                    why = "a second signal" if self.signals >= 2 else "it did not stop in time"
                    log.warning("%s (pid %d): %s; killing it", child.name, child.process.pid, why)
                    child.process.kill()
                    child.process.wait()
                    break
                time.sleep(0.1)
        self.children.clear()
        if self.embedded is not None:
            log.info("stopping the embedded MongoDB")
            self.embedded.stop()
            self.embedded = None
