"""Several detectors as one: every model sees each image, their detections are fused.

An Ensemble offers what the worker uses of a Detector (canvas, to_canvas, run, postprocess,
detect, detect_many), so a worker labels with one model or several alike. Models with the same
canvas share one letterboxed picture. Members keep their candidates down to MEMBER_FLOOR, the
fusion (hook.detect.fusion)
down to the thresholds' floor; the thresholds themselves (HOOK_MIN_SCORE,
HOOK_LABEL_SCORES) travel with the detector and are applied with the rules per camera.

The members run side by side, each in a thread (the engines release the GIL): an event on an
idle worker is labeled in the time of the slowest member, not of all of them in turn, while a
busy worker's lanes keep every core at work either way (bench/worker.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hook.detect import yolo
from hook.detect.detection import Detection, Detects
from hook.detect.detector import Detector
from hook.detect.fusion import CLOSE_VEHICLES, FusionRules, fuse
from hook.detect.pixels import Picture, Pixels, pixels_of
from hook.detect.thresholds import FLOOR, NMS_IOU
from hook.detect.tiled import Tiled
from hook.errors import ConfigError

log = logging.getLogger(__name__)

MEMBER_FLOOR = 0.1  # a member's detections below this never reach the fusion
FUSION_IOU = 0.55  # boxes of one label from two models overlapping this much are one object
FUSION_NEAR = 0.5  # ... or whose centres are closer than this x the smaller box's size
KIN = (CLOSE_VEHICLES,)  # labels two models may give one object

View = tuple[Pixels, yolo.Letterbox]  # one member's canvas of an image, and its placement
Views = tuple[View, ...]  # every member's
Output = tuple[tuple[Sequence[np.ndarray], yolo.Letterbox], ...]  # every member's, for one image


class Ensemble(Detects):
    """Detectors run side by side on each image; their detections fused per label."""

    def __init__(
        self,
        members: Sequence[Detector],
        *,
        weights: Sequence[float] | None = None,
        sure: Sequence[float] = (),
        min_score: float = FLOOR,
        iou: float = NMS_IOU,
        near: float = 0.0,
        kin: Sequence[frozenset[str]] = (),
    ) -> None:
        if len(members) < 2:
            raise ConfigError("an ensemble needs two models or more")
        self.members = tuple(members)
        self.weights = tuple(weights) if weights else (1.0,) * len(members)
        if len(self.weights) != len(members) or any(w <= 0 for w in self.weights):
            raise ConfigError(
                f"HOOK_MODEL_WEIGHTS needs one positive weight per model ({len(members)} models)"
            )
        if sure and len(sure) != len(members):
            raise ConfigError(
                f"HOOK_MODEL_SURE needs one score per model ({len(members)} models), or none"
            )
        self.min_score, self.iou = min_score, iou
        self.rules = FusionRules(
            self.weights, tuple(sure), FUSION_IOU, near, tuple(kin), nms_iou=iou
        )
        # Decode JPEGs large enough for the largest canvas any member letterboxes onto.
        self.canvas = (max(m.canvas[0] for m in members), max(m.canvas[1] for m in members))
        self.load_seconds = sum(m.load_seconds for m in members)
        # the other members' runs, beside the first's in the calling thread
        self.pool = ThreadPoolExecutor(len(members) - 1, thread_name_prefix="member")

    def to_canvas(
        self, image: Picture, source: tuple[int, int] | None = None
    ) -> tuple[Views, yolo.Letterbox]:
        """Each member's letterboxed canvas (shared between equal canvases), and the first's box."""
        pixels = pixels_of(image)  # once, however many canvases
        made: dict[tuple[int, int], View] = {}
        for m in self.members:
            if m.canvas not in made:
                made[m.canvas] = m.to_canvas(pixels, source)
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
        return fuse(found, self.rules, self.min_score)


def members_of(detector: Detects) -> tuple[Detector, ...]:
    """The models a detector runs: an ensemble's members, or the detector itself."""
    if isinstance(detector, Tiled):
        return members_of(detector.whole)
    if isinstance(detector, Ensemble):
        return detector.members
    assert isinstance(detector, Detector)
    return (detector,)


def label_names(detector: Detects) -> set[str]:
    """Every label the detector (or any member of the ensemble) can report."""
    return {label for member in members_of(detector) for label in member.labels}
