"""The embedded MongoDB: an nx-27017 server on loopback, for trying hook out and for tests.

Started once per data dir: a file lock serialises the gunicorn workers and worker.py processes
that all find HOOK_MONGO_URI unset, so the first starts the server and the rest reuse it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from hook.errors import ConfigError

log = logging.getLogger(__name__)

START_TIMEOUT = 20.0


class EmbeddedMongo:
    """One nx-27017 process serving `data_dir` on `host:port`."""

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.pid_file = self.data_dir / "nx.pid"
        self.log_file = self.data_dir / "nx.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def command(self) -> list[str]:
        """The argv that runs the server in the foreground (also used by the systemd unit)."""
        return [
            sys.executable,
            "-c",
            "from nx_27017.nx_27017 import main; main()",
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "-p",
            str(self.port),
            "--log-file",
            str(self.log_file),
            "--pid-file",
            str(self.pid_file),
        ]

    def answers(self, timeout: float = 1.0) -> bool:
        """True if a MongoDB-speaking server answers a ping on host:port."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                pass
        except OSError:
            return False
        client: MongoClient = MongoClient(
            self.uri, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=1000
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def serves_this_data_dir(self) -> bool:
        """True if the server in our pid file is alive and is nx-27017 on our data dir."""
        try:
            pid = int(self.pid_file.read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return False
        return b"nx_27017" in b" ".join(argv) and str(self.data_dir).encode() in argv

    def adopt(self) -> bool:
        """Use a server already answering on our port: True if it is ours, False if none;
        ConfigError if something else holds the port (another data dir, a real mongod)."""
        if not self.answers(timeout=0.5):
            return False
        if not self.serves_this_data_dir():
            raise ConfigError(
                f"{self.host}:{self.port} is answered by a server that is not the embedded "
                f"MongoDB of {self.data_dir}; stop it or set another HOOK_EMBEDDED_PORT"
            )
        return True

    def make_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / ".writable").touch()
        except OSError as exc:
            raise ConfigError(
                f"the embedded MongoDB's data dir {self.data_dir} is not usable: {exc.strerror} "
                "(HOOK_DATA_DIR)"
            ) from None

    def start(self, *, detach: bool = False) -> None:
        """Start the server and wait until it answers; ConfigError if it cannot."""
        self.make_data_dir()
        if self.answers(timeout=0.3):
            raise ConfigError(
                f"something already answers on {self.host}:{self.port}; stop it or choose "
                "another port (HOOK_EMBEDDED_PORT)"
            )
        with open(self.log_file, "ab") as output:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # Ctrl-C reaches the launcher, which orders the stops
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers(timeout=0.5):
            if self.process.poll() is not None:
                raise ConfigError(
                    f"the embedded MongoDB (nx-27017) exited with code {self.process.returncode} "
                    f"on start; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the embedded MongoDB did not answer in {START_TIMEOUT:.0f} s")
            time.sleep(0.05)
        log.info(
            "embedded MongoDB (nx-27017) pid %d serving %s on %s:%d",
            self.process.pid,
            self.data_dir,
            self.host,
            self.port,
        )
        if detach:
            self.process = None  # it outlives us; ensure_running() finds it by its port

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM our own server process, then SIGKILL if it will not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def ensure_running(self) -> bool:
        """Start the server unless it already answers; True if this call started it (detached)."""
        self.make_data_dir()
        with _locked(self.data_dir / "start.lock"):
            if self.adopt():
                return False
            self.start(detach=True)
            return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
