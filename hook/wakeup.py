"""Instant pick-up on one machine: the web rings idle workers the moment it stores a task.

An idle worker would otherwise find a new task only at its next poll of MongoDB (up to a
quarter of a second later). Each worker binds a datagram socket in `<data_dir>/wake/`; the
web's `Doorbell` sends every socket there one byte after each new task. A datagram carries
no task: it only says "look now", so a lost or extra one costs nothing but a poll, and the
worker's polling stays the fallback for everything a datagram cannot reach (other machines,
a socket that could not be made).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import select
import socket
import time
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)

WAKE_DIR = "wake"
SUFFIX = ".sock"
MAX_PATH = 107  # bytes of an AF_UNIX path, without its terminating NUL (Linux: 108 in all)
RING = b"!"


def wake_dir(data_dir: Path) -> Path:
    """Where the workers of this data dir bind their wake-up sockets."""
    return Path(data_dir) / WAKE_DIR


class WakeUp:
    """A worker's wake-up: `wait(timeout)` returns early when the web or this process rings.

    Two sockets: one bound in the wake dir for other processes (absent when it cannot be
    made: then only the timeout and in-process rings end a wait) and a private socket pair
    for `ring()` from this process (stop(), the change feed), so one `poll` serves both.
    """

    def __init__(self, bound: socket.socket | None, path: Path | None) -> None:
        self.path = path
        self._bound = bound
        self._inner, self._outer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for sock in (self._inner, self._outer):
            sock.setblocking(False)
        self._poll = select.poll()
        for listened in (bound, self._inner):
            if listened is not None:
                self._poll.register(listened, select.POLLIN)
        self._closed = False

    @classmethod
    def open(cls, data_dir: Path) -> Self:
        """Bind a socket of its own in `<data_dir>/wake/`; on failure, warn once and go on
        without it (polling then picks up what the web stores)."""
        directory = wake_dir(data_dir)
        path = directory / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        try:
            if len(os.fsencode(path)) > MAX_PATH:
                raise OSError(errno.ENAMETOOLONG, f"over {MAX_PATH} bytes for a socket's path")
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            bound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                bound.bind(os.fspath(path))
                os.chmod(path, 0o600)
                bound.setblocking(False)
            except BaseException:
                bound.close()
                raise
        except OSError as exc:
            log.warning(
                "no wake-up socket at %s (%s): pick-up of new tasks falls back to polling",
                path,
                exc.strerror or exc,
            )
            return cls(None, None)
        return cls(bound, path)

    def wait(self, timeout: float) -> bool:
        """Block until a ring or `timeout` seconds; True if rung. Every ring already queued is
        taken too, so a burst of tasks costs one wake-up, not one per task."""
        if self._closed:  # nothing to wait on but the clock
            time.sleep(max(timeout, 0.0))
            return False
        ready = self._poll.poll(max(timeout, 0.0) * 1000)
        for sock in (self._bound, self._inner):
            if sock is not None and any(fd == sock.fileno() for fd, _ in ready):
                _drain(sock)
        return bool(ready)

    def ring(self) -> None:
        """Wake the current or next `wait` from this process; never blocks, never raises."""
        with contextlib.suppress(OSError):  # a full buffer: a ring is already pending
            self._outer.send(RING)

    def close(self) -> None:
        """Remove the socket, so the web stops ringing it."""
        if self._closed:
            return
        self._closed = True
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        for sock in (self._bound, self._inner, self._outer):
            if sock is not None:
                sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # BlockingIOError: nothing more queued
        while sock.recv(64):
            pass


class Doorbell:
    """The web's side: one byte to every worker socket in the wake dir, after a new task.

    It runs on every accepted POST, so it is a directory listing and a non-blocking send per
    worker, and it never raises: a full buffer means that worker has a ring pending already;
    a refused send means a dead worker's leftover socket, which it removes.
    """

    def __init__(self, data_dir: Path) -> None:
        self.directory = wake_dir(data_dir)
        self._sock: socket.socket | None = None

    def ring(self) -> int:
        """Ring every worker; the number of sockets rung (for tests and figures)."""
        try:
            entries = [e.path for e in os.scandir(self.directory) if e.name.endswith(SUFFIX)]
        except OSError:  # no wake dir yet: no worker of this data dir on this machine
            return 0
        rung = 0
        for path in entries:
            try:
                self._socket().sendto(RING, path)
                rung += 1
            except BlockingIOError:  # its queue is full: it will wake anyway
                rung += 1
            except ConnectionRefusedError:  # bound by no one: a dead worker's socket
                with contextlib.suppress(OSError):
                    os.unlink(path)
                log.debug("removed %s, a wake-up socket no worker holds", path)
            except OSError as exc:  # gone meanwhile, not ours to write...: polling covers it
                log.debug("could not ring %s: %s", path, exc)
        return rung

    def _socket(self) -> socket.socket:
        # made on first use, so each gunicorn worker (forked) has its own
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
