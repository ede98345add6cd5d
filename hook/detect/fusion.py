"""Fusing several models' detections of one image: weighted box fusion across models.

Each model's detections (already NMS'd within the model) are matched into clusters, one box per
model and cluster. A box joins the cluster of its label (or of a kindred label, `FusionRules.kin`:
one model's car is another's truck) whose fused box it overlaps most above `iou`, or, failing
that, whose centre is near its own (`near`): small objects' boxes from two models are often a
few pixels apart, which is a low IoU at 20 px. A cluster's label is the one its members weigh
most for; its box is the score-weighted mean of its members' boxes.

Its score is the weighted mean over ALL models of each model's score in it (a model that saw
nothing there counts 0), so low-score noise of one model needs the other's support (Solovyev et
al., "Weighted boxes fusion", 2021). But a model sure of what it sees is kept at its own score:
a member scoring at least its model's `sure` score lends the cluster that score, so a confident
car that only one model finds is not scaled down below the threshold by the other's silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from hook.detect.detection import Detection
from hook.detect.thresholds import NMS_IOU

Box = tuple[float, float, float, float]
CLOSE_VEHICLES = frozenset({"car", "truck", "bus"})  # one model's van is another's car or truck
NEAR_SIZES = 4.0  # the near-centre rule joins boxes whose areas are within this ratio


@dataclass(frozen=True)
class FusionRules:
    """How boxes of several models become one list; validated at construction."""

    weights: tuple[float, ...]  # each model's weight in the fused score
    sure: tuple[float, ...] = ()  # per model: a box at least this keeps its own score (): never
    iou: float = 0.55  # boxes overlapping more than this are one object
    near: float = 0.0  # ... or centres closer than this x the smaller box's size (0: IoU only)
    kin: tuple[frozenset[str], ...] = ()  # label groups that may be one object
    nms_iou: float = NMS_IOU  # fused boxes of one label (or kin) overlapping more are one object

    def __post_init__(self) -> None:
        if not self.weights or any(w <= 0 for w in self.weights):
            raise ValueError("fusion needs one positive weight per model")
        if self.sure and len(self.sure) != len(self.weights):
            raise ValueError("fusion needs one sure score per model, or none")

    def kindred(self, a: str, b: str) -> bool:
        return a == b or any(a in group and b in group for group in self.kin)


@dataclass
class _Cluster:
    members: dict[int, Detection] = field(default_factory=dict)  # model index -> its box
    box: Box = (0.0, 0.0, 0.0, 0.0)

    def add(self, model: int, detection: Detection) -> None:
        self.members[model] = detection
        total = sum(d.score for d in self.members.values()) or 1.0
        x1, y1, x2, y2 = (
            sum(d.box[i] * d.score for d in self.members.values()) / total for i in range(4)
        )
        self.box = (x1, y1, x2, y2)

    def fused(self, rules: FusionRules) -> Detection:
        weights = rules.weights
        votes: dict[str, float] = {}
        for m, d in self.members.items():
            votes[d.label] = votes.get(d.label, 0.0) + weights[m] * d.score
        label = max(votes, key=lambda name: votes[name])
        score = sum(weights[m] * d.score for m, d in self.members.items()) / sum(weights)
        if rules.sure:
            sure = [d.score for m, d in self.members.items() if d.score >= rules.sure[m]]
            score = max([score, *sure])
        return Detection(label, score, self.box)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_gap(a: Sequence[float], b: Sequence[float]) -> float:
    """Distance between the boxes' centres over the smaller box's size (sqrt of its area)."""
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    side = math.sqrt(max(1e-9, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))))
    return math.hypot(dx, dy) / side


def _alike_in_size(a: Sequence[float], b: Sequence[float]) -> bool:
    """Areas within NEAR_SIZES of each other: a far person's box near a close one's centre is
    not the same object."""
    small, large = sorted(((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))
    return large <= NEAR_SIZES * max(small, 1e-9)


def fit(a: Box, b: Box, rules: FusionRules) -> float:
    """How well two boxes are one object: their IoU, or for near centres a value just above 0;
    0 when they are not."""
    overlap = iou(a, b)
    if overlap > rules.iou:
        return overlap
    if rules.near and _alike_in_size(a, b) and centre_gap(a, b) < rules.near:
        return overlap + 1e-6  # near but barely overlapping: a match, ranked below overlaps
    return 0.0


def fuse(
    per_model: Sequence[Sequence[Detection]], rules: FusionRules, min_score: float = 0.0
) -> list[Detection]:
    """One image's detections from each model -> fused detections at min_score, best first.

    Clusters of one label (or kin) that still overlap by more than `nms_iou` (two models' boxes
    of one object that matched neither each other nor one cluster) are one object: the best is
    kept.
    """
    if len(rules.weights) != len(per_model):
        raise ValueError("fusion needs one positive weight per model")
    ranked = sorted(
        ((d.score * rules.weights[m], m, d) for m, found in enumerate(per_model) for d in found),
        key=lambda item: -item[0],
    )
    clusters: list[_Cluster] = []
    for _, model, detection in ranked:
        best, best_fit = None, 0.0
        for cluster in clusters:
            if model in cluster.members:
                continue
            if not any(rules.kindred(d.label, detection.label) for d in cluster.members.values()):
                continue
            how = fit(cluster.box, detection.box, rules)
            if how > best_fit:
                best, best_fit = cluster, how
        if best is None:
            best = _Cluster()
            clusters.append(best)
        best.add(model, detection)
    fused = sorted((c.fused(rules) for c in clusters), key=lambda d: -d.score)
    return suppress(fused, rules.nms_iou, min_score, rules)


def suppress(
    ranked: list[Detection], threshold: float, min_score: float, rules: FusionRules | None = None
) -> list[Detection]:
    """Greedy NMS per label (and kin) over best-first detections, keeping those at min_score."""
    kept: list[Detection] = []
    for d in ranked:
        if d.score < min_score:
            break
        if all(
            not (rules.kindred(k.label, d.label) if rules else k.label == d.label)
            or iou(k.box, d.box) <= threshold
            for k in kept
        ):
            kept.append(d)
    return kept
