"""The detection types everything past the model speaks: light, so the rules, the callbacks'
labels and the worker's job import them without loading a model runtime.

    Detection   one object: label, score, box in the original image's pixels
    Letterbox   how an image was placed on a model's canvas, to map boxes back
    Detects     what a detector offers: to_canvas, run, postprocess (the worker calls the three
                in different threads), and detect / detect_many built from them

Detector (one model), Ensemble (several fused) and Tiled (large frames in tiles) are Detects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hook.detect.thresholds import NO_THRESHOLDS, Thresholds

if TYPE_CHECKING:  # Pillow is for the detectors; the types here need none of it at run time
    from hook.detect.pixels import Picture


@dataclass(frozen=True)
class Detection:
    """One object: its label, score 0..1 and box (x1, y1, x2, y2) in original-image pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]


class Detects:
    """`detect` and `detect_many` from a class's to_canvas, run and postprocess.

    The worker calls the three stages itself (in different threads); tests, benchmarks and tools
    call these. Detector, hook.detect.ensemble.Ensemble and hook.detect.tiled.Tiled share them.
    """

    canvas: tuple[int, int]  # the model's input (w, h); an ensemble's largest
    load_seconds: float
    # what the rules report from (hook.config.detectors.detector_from: HOOK_MIN_SCORE and
    # HOOK_LABEL_SCORES); a detector built by hand reports every detection it keeps
    thresholds: Thresholds = NO_THRESHOLDS

    def fit_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """What an image of `size` must be decoded to cover (decode_image's fit)."""
        return self.canvas

    def to_canvas(self, image: Picture, source: tuple[int, int] | None) -> tuple[Any, Any]:
        raise NotImplementedError

    def run(self, canvases: list[Any]) -> Sequence[Any]:
        raise NotImplementedError

    def postprocess(self, output: Any, box: Any) -> list[Detection]:
        raise NotImplementedError

    def detect(self, image: Picture, source: tuple[int, int] | None = None) -> list[Detection]:
        return self.detect_many([(image, source)])[0]

    def detect_many(
        self, images: Sequence[tuple[Picture, tuple[int, int] | None]]
    ) -> list[list[Detection]]:
        """Detect in several images (one event's), batched when the model allows it."""
        if not images:
            return []
        placed = [self.to_canvas(image, source) for image, source in images]
        outputs = self.run([canvas for canvas, _ in placed])
        return [self.postprocess(out, box) for out, (_, box) in zip(outputs, placed, strict=True)]


@dataclass(frozen=True)
class Letterbox:
    """How an image of `source` size was placed on the model's canvas, to map boxes back."""

    source: tuple[int, int]  # width, height of the original image
    resized: tuple[int, int]  # width, height it was scaled to
    pad: tuple[int, int]  # left, top offset on the canvas

    @property
    def scale(self) -> tuple[float, float]:
        return self.resized[0] / self.source[0], self.resized[1] / self.source[1]
