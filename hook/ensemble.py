"""Several detectors as one: every model sees each image, their detections are fused.

An Ensemble offers what the worker uses of a Detector (canvas, to_canvas, run, postprocess,
detect, detect_many), so a worker labels with one model or several alike. Models with the same
canvas share one letterboxed picture. Members keep their candidates down to MEMBER_FLOOR; the
fused score (hook.fusion) is what HOOK_MIN_SCORE applies to.

The members run side by side, each in a thread (the engines release the GIL): an event on an
idle worker is labeled in the time of the slowest member, not of all of them in turn, while a
busy worker's lanes keep every core at work either way (bench/worker.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
from PIL import Image

from hook import engines, yolo
from hook.detector import Detection, Detector, Detects
from hook.errors import ConfigError
from hook.fusion import fuse
from hook.settings import Settings

log = logging.getLogger(__name__)

MEMBER_FLOOR = 0.1  # a member's detections below this never reach the fusion
FUSION_IOU = 0.55  # boxes of one label from two models overlapping this much are one object

View = tuple[Image.Image, yolo.Letterbox]  # one member's canvas of an image, and its placement
Views = tuple[View, ...]  # every member's
Output = tuple[tuple[Sequence[np.ndarray], yolo.Letterbox], ...]  # every member's, for one image


class Ensemble(Detects):
    """Detectors run side by side on each image; their detections fused per label."""

    def __init__(
        self, members: Sequence[Detector], *, weights: Sequence[float] | None = None,
        min_score: float = 0.25, iou: float = 0.45,
    ) -> None:  # fmt: skip
        if len(members) < 2:
            raise ConfigError("an ensemble needs two models or more")
        self.members = tuple(members)
        self.weights = tuple(weights) if weights else (1.0,) * len(members)
        if len(self.weights) != len(members) or any(w <= 0 for w in self.weights):
            raise ConfigError(
                f"HOOK_MODEL_WEIGHTS needs one positive weight per model ({len(members)} models)"
            )
        self.min_score, self.iou = min_score, iou
        # Decode JPEGs large enough for the largest canvas any member letterboxes onto.
        self.canvas = (max(m.canvas[0] for m in members), max(m.canvas[1] for m in members))
        self.load_seconds = sum(m.load_seconds for m in members)
        # the other members' runs, beside the first's in the calling thread
        self.pool = ThreadPoolExecutor(len(members) - 1, thread_name_prefix="member")

    def to_canvas(
        self, image: Image.Image, source: tuple[int, int] | None = None
    ) -> tuple[Views, yolo.Letterbox]:
        """Each member's letterboxed canvas (shared between equal canvases), and the first's box."""
        made: dict[tuple[int, int], View] = {}
        for m in self.members:
            if m.canvas not in made:
                made[m.canvas] = m.to_canvas(image, source)
        views = tuple(made[m.canvas] for m in self.members)
        return views, views[0][1]

    def run(self, placed: list[Views]) -> list[Output]:
        """Every member on every image, each batched as that member allows, side by side."""
        later = [
            self.pool.submit(member.run, [views[i][0] for views in placed])
            for i, member in enumerate(self.members[1:], start=1)
        ]
        first = self.members[0].run([views[0][0] for views in placed])
        per_member = [first, *(future.result() for future in later)]
        return [
            tuple((per_member[i][k], views[i][1]) for i in range(len(self.members)))
            for k, views in enumerate(placed)
        ]

    def postprocess(self, output: Output, box: yolo.Letterbox) -> list[Detection]:
        """One image's member outputs -> fused detections in original-image pixels, best first."""
        found = [m.postprocess(out, b) for m, (out, b) in zip(self.members, output, strict=True)]
        return fuse(found, weights=self.weights, iou_threshold=FUSION_IOU,
                    min_score=self.min_score, nms_iou=self.iou)  # fmt: skip


def members_of(detector: Detector | Ensemble) -> tuple[Detector, ...]:
    """The models a detector runs: an ensemble's members, or the detector itself."""
    return detector.members if isinstance(detector, Ensemble) else (detector,)


def label_names(detector: Detector | Ensemble) -> set[str]:
    """Every label the detector (or any member of the ensemble) can report."""
    return {label for member in members_of(detector) for label in member.labels}


def from_settings(settings: Settings) -> Detector | Ensemble:
    """The detector HOOK_MODEL names: one model as it is, several fused."""
    precision = engines.chosen_precision(settings.precision, settings.models, settings.device)
    settings = replace(settings, precision=precision)
    if len(settings.models) == 1:
        return Detector.from_settings(settings)
    floor = min(MEMBER_FLOOR, settings.min_score)
    members = [Detector(path, min_score=floor, iou=settings.iou, classes=settings.classes,
                        device=settings.device, threads=settings.threads, engine=settings.engine,
                        precision=settings.precision)
               for path in settings.models]  # fmt: skip
    fused = Ensemble(members, weights=settings.model_weights, min_score=settings.min_score,
                     iou=settings.iou)  # fmt: skip
    log.info(
        "detector: %s fused, weights %s, min score %.2f",
        " + ".join(m.model.name for m in members), "/".join(f"{w:g}" for w in fused.weights),
        fused.min_score,
    )  # fmt: skip
    return fused
