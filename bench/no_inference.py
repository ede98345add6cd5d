"""The worker with every model run taken out: the pipeline's own ceiling (bench/worker.py
--no-inference starts this instead of worker.py).

Everything else is the product as `python worker.py` runs it: settings, lanes, claims, image
reads, the JPEG decode and letterbox to the default detector's canvases (tiles included), the
labels and rules, the store's writes, the POSTs. Only the detector's run is skipped; each image
is labeled with one person on its top-left quarter, so the bodies are the usual size.

    .venv/bin/python -m bench.no_inference   (with the settings worker.py takes)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from hook.config.settings import Settings
from hook.detect.detection import Detection, Detects, Letterbox
from hook.detect.pixels import Picture
from hook.logs import configure
from hook.worker.main import Signals, build, serve
from hook.worker.pipeline import Worker


class NoInference(Detects):
    """`detector` placing images as it does, answering without running any model."""

    def __init__(self, detector: Detects) -> None:
        self.detector = detector
        self.canvas, self.load_seconds = detector.canvas, 0.0
        self.thresholds = detector.thresholds

    def fit_for(self, size: tuple[int, int]) -> tuple[int, int]:
        return self.detector.fit_for(size)

    def to_canvas(self, image: Picture, source: tuple[int, int] | None) -> tuple[Any, Any]:
        return self.detector.to_canvas(image, source)

    def run(self, canvases: list[Any]) -> Sequence[Any]:
        return [None] * len(canvases)

    def postprocess(self, output: Any, box: Letterbox) -> list[Detection]:
        width, height = box.source
        return [Detection("person", 0.9, (0.0, 0.0, width / 2, height / 2))]


def main() -> int:
    settings = Settings.from_env()
    configure(settings.log_level)
    built = build(settings)
    worker = Worker(
        built.store,
        [NoInference(d) for d in built.lanes],
        built.config,
        rules=built.rules,
        round_trips=built.round_trips,
        wake=built.wake,
    )
    signals = Signals()
    signals.install()
    return serve(worker, signals)


if __name__ == "__main__":
    sys.exit(main())
