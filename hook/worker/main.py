"""`python worker.py`: label queued tasks and deliver them to Camio until stopped.

The edge: reads settings once, builds the store, detector and worker, runs the worker in a
thread and acts on signals from the main thread (the handlers only record them; logging or
exiting inside a handler is not safe).

SIGHUP reads the rules file (HOOK_RULES) again at once; it is also read again when it changes.
First SIGTERM/SIGINT, a warm stop: claim nothing more, give back at once the claimed tasks not
labeled yet (another worker takes them, their attempt not counted), deliver and settle those
already labeled or in delivery, then exit 0. Second: exit 1 at once; the tasks still claimed
come back to the queue when their leases end, and their stored labels are resent.

Exit codes: 0 stopped; 1 an unexpected failure (worth a restart); 2 a configuration error
(ConfigError: do not restart, which the systemd units and `hook run` rely on).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from types import FrameType

from hook.callbacks.hosts import HostAllowList
from hook.callbacks.outbound import Outbound
from hook.callbacks.signing import Signer
from hook.config.detectors import detector_from
from hook.config.mongo import connect, make_indexes
from hook.config.resolved import resolve
from hook.config.settings import Settings
from hook.detect import ensemble
from hook.errors import ConfigError
from hook.logs import configure
from hook.rules.ruleset import RulesFile
from hook.store import TaskStore
from hook.store.round_trips import RoundTrips
from hook.wakeup import WakeUp
from hook.worker.pipeline import Worker, WorkerConfig
from hook.worker.reporting import ReportConfig

log = logging.getLogger(__name__)

OK, FAILED, CONFIG_ERROR = 0, 1, 2
POLL_SECONDS = 0.2  # how soon the main thread notices a signal


class Signals:
    """SIGTERM/SIGINT and SIGHUP as they arrive; the handlers only count (nothing else is safe)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.hangups = 0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._record)
        signal.signal(signal.SIGINT, self._record)
        signal.signal(signal.SIGHUP, self._hangup)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        self.hangups += 1


def build(settings: Settings) -> Worker:
    """The store (its indexes made if MongoDB answers, else on first use) and the detector."""
    round_trips = RoundTrips()
    store = TaskStore(connect(settings, app_name="hook-worker", round_trips=round_trips))
    make_indexes(store)
    here = resolve(settings)
    device, layout = here.device, here.layout
    log.info(
        "%d lane(s) of %d inference thread(s), up to %d image(s) a run",
        layout.lanes,
        layout.threads,
        layout.batch_images,
    )
    per_lane = replace(settings, threads=layout.threads, device=device, precision=here.precision)
    detectors = [detector_from(per_lane) for _ in range(layout.lanes)]
    config = WorkerConfig(
        lease_seconds=settings.lease_seconds,
        callback_timeout=settings.callback_timeout,
        retention_seconds=settings.retention_hours * 3600,
        max_image_pixels=settings.max_image_pixels,
        policy=settings.retry_policy,
        hosts=HostAllowList(settings.callback_hosts),
        keep_pictures_seconds=settings.keep_pictures_hours * 3600,
        outbound=outbound(settings),
        reports=reports(settings),
        batch_images=layout.batch_images,
    )
    # a wrong file, or a label the model never reports, stops the start: ConfigError, exit 2
    rules = RulesFile.open(settings.rules, known=ensemble.label_names(detectors[0]))
    wake = WakeUp.open(settings.data_dir)  # the web rings it the moment a task is stored
    return Worker(store, detectors, config, rules=rules, round_trips=round_trips, wake=wake)


def outbound(settings: Settings) -> Outbound:
    """The callbacks' extra headers: signed with HOOK_SIGNING_SECRET, HOOK_CALLBACK_HEADERS."""
    secrets = settings.signing_secrets
    return Outbound(Signer(secrets) if secrets else None, settings.callback_headers or {})


def reports(settings: Settings) -> ReportConfig:
    """Failure reports: to HOOK_FAILURE_URL, the event's callback_url, both or neither."""
    return ReportConfig(settings.report_policy, settings.failure_url, settings.failure_to_callback)


def serve(worker: Worker, signals: Signals) -> int:
    """Run the worker until it returns: a warm stop at the first signal, exit at the second."""
    failed: list[BaseException] = []
    thread = threading.Thread(target=_run, args=(worker, failed), name="worker")
    thread.start()
    acted, hangups = 0, 0
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        if signals.hangups != hangups:
            hangups = signals.hangups
            log.info("SIGHUP: reading the rules again")
            worker.rules.reload()
        received = signals.received[:]
        if acted == 0 and received:
            log.info(
                "%s: warm stop: giving back the tasks not started, finishing the tasks in "
                "hand, then exiting",
                signal.Signals(received[0]).name,
            )
            worker.stop()
            acted = 1
        if len(received) >= 2:
            log.warning(
                "second %s: exiting now; the tasks still claimed come back when their leases end",
                signal.Signals(received[1]).name,
            )
            logging.shutdown()
            os._exit(FAILED)
    return FAILED if failed else OK


def _run(worker: Worker, failed: list[BaseException]) -> None:
    try:
        worker.run()
    except BaseException as exc:  # the process must still exit, and say why
        log.critical("worker failed", exc_info=True)
        failed.append(exc)


def main() -> int:
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        worker = build(settings)
    except ConfigError as exc:
        configure()
        log.critical("cannot start: %s", exc)
        return CONFIG_ERROR
    except Exception:  # a bug, or trouble no setting explains: worth a restart
        configure()
        log.critical("cannot start", exc_info=True)
        return FAILED
    signals = Signals()
    signals.install()
    return serve(worker, signals)


if __name__ == "__main__":
    sys.exit(main())
