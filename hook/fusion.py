"""Fusing several models' detections of one image: weighted box fusion across models.

Each model's detections (already NMS'd within the model) are matched per label: a box joins
the cluster whose fused box it overlaps most (IoU above `iou`), one box per model and cluster.
A cluster's score is the weighted mean over ALL models of each model's score in it, a model
that saw nothing there counting 0; its box is the score-weighted mean of its members' boxes.
So an object both models see keeps about its score, while one model's lone detection is
scaled down by that model's share of the weights: low-score noise of one model needs the
other's support or a high score of its own to pass the threshold (Solovyev et al., "Weighted
boxes fusion", 2021, with the per-model maximum in place of the per-box mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hook.detector import Detection


@dataclass
class _Cluster:
    label: str
    members: dict[int, Detection] = field(default_factory=dict)  # model index -> its box
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def add(self, model: int, detection: Detection) -> None:
        self.members[model] = detection
        total = sum(d.score for d in self.members.values()) or 1.0
        x1, y1, x2, y2 = (
            sum(d.box[i] * d.score for d in self.members.values()) / total for i in range(4)
        )
        self.box = (x1, y1, x2, y2)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def fuse(
    per_model: Sequence[Sequence[Detection]],
    *,
    weights: Sequence[float] | None = None,
    iou_threshold: float = 0.55,
    min_score: float = 0.0,
    nms_iou: float = 0.45,
) -> list[Detection]:
    """One image's detections from each model -> fused detections at min_score, best first.

    Clusters of one label that still overlap by more than `nms_iou` (two models' boxes of one
    object that matched neither each other nor one cluster) are one object: the best is kept.
    """
    weights = list(weights) if weights is not None else [1.0] * len(per_model)
    if len(weights) != len(per_model) or any(w <= 0 for w in weights):
        raise ValueError("fuse needs one positive weight per model")
    total = sum(weights)
    ranked = sorted(
        ((d.score * weights[m], m, d) for m, found in enumerate(per_model) for d in found),
        key=lambda item: -item[0],
    )
    clusters: list[_Cluster] = []
    for _, model, detection in ranked:
        best, best_iou = None, iou_threshold
        for cluster in clusters:
            if cluster.label != detection.label or model in cluster.members:
                continue
            overlap = iou(cluster.box, detection.box)
            if overlap > best_iou:
                best, best_iou = cluster, overlap
        if best is None:
            best = _Cluster(detection.label)
            clusters.append(best)
        best.add(model, detection)
    fused = [
        Detection(c.label, sum(weights[m] * d.score for m, d in c.members.items()) / total, c.box)
        for c in clusters
    ]
    return suppress(sorted(fused, key=lambda d: -d.score), nms_iou, min_score)


def suppress(ranked: list[Detection], threshold: float, min_score: float) -> list[Detection]:
    """Greedy NMS per label over best-first detections, keeping those at min_score."""
    kept: list[Detection] = []
    for d in ranked:
        if d.score < min_score:
            break
        if all(k.label != d.label or iou(k.box, d.box) <= threshold for k in kept):
            kept.append(d)
    return kept
