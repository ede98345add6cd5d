"""`python worker.py`: label queued tasks and deliver them to Camio until stopped.

The edge: reads settings once, builds the store, detector and worker, and turns signals into
flags. First SIGTERM/SIGINT: finish the tasks already claimed, then exit 0. Second: exit now
(claimed tasks come back to the queue when their leases end).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from hook import ensemble
from hook.errors import ConfigError
from hook.hosts import HostAllowList
from hook.logs import configure
from hook.mongo import connect, make_indexes
from hook.retry import RetryPolicy
from hook.settings import Settings
from hook.store import TaskStore
from hook.worker import Config, Worker

log = logging.getLogger("hook.worker")


def build(settings: Settings) -> Worker:
    store = TaskStore(connect(settings, app_name="hook-worker"))
    make_indexes(store)
    config = Config(
        lease_seconds=settings.lease_seconds,
        callback_timeout=settings.callback_timeout,
        retention_seconds=settings.retention_hours * 3600,
        max_image_pixels=settings.max_image_pixels,
        policy=RetryPolicy(base=settings.retry_base_seconds, max_attempts=settings.max_attempts),
        hosts=HostAllowList(settings.callback_hosts),
    )
    return Worker(store, ensemble.from_settings(settings), config)


def main() -> int:
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        worker = build(settings)
    except ConfigError as exc:
        configure()
        log.critical("cannot start: %s", exc)
        return 2
    except Exception:  # a model onnxruntime cannot run, MongoDB refusing the indexes...
        configure()
        log.critical("cannot start", exc_info=True)
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if worker.stopping.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: finishing the tasks in hand, then exiting", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
