"""hook.worker.parts: the background parts start in their listed order and stop in reverse."""

from __future__ import annotations

import threading

import pytest

from hook.worker.parts import Loop, Parts


class Part:
    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails

    def start(self) -> None:
        if self.fails:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_parts_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    parts = Parts([Part(name, log) for name in ("leases", "reports", "completions")])
    parts.start()
    parts.stop()
    assert log == [
        "start leases",
        "start reports",
        "start completions",
        "stop completions",
        "stop reports",
        "stop leases",
    ]
    parts.stop()  # stopping twice stops nothing twice
    assert len(log) == 6


def test_a_part_that_cannot_start_leaves_the_started_ones_to_stop() -> None:
    log: list[str] = []
    parts = Parts([Part("leases", log), Part("reports", log, fails=True), Part("late", log)])
    with pytest.raises(RuntimeError, match="reports cannot start"):
        parts.start()
    parts.stop()
    assert log == ["start leases", "stop leases"]


def test_a_loop_runs_in_its_own_thread_and_stop_waits_for_it() -> None:
    stopping, ran = threading.Event(), []

    def loop() -> None:
        ran.append(threading.current_thread().name)
        stopping.wait(10)

    part = Loop("reports", loop)
    part.start()
    stopping.set()
    part.stop()
    assert ran == ["reports"] and not part.thread.is_alive()
