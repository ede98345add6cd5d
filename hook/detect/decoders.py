"""Decoders of the layouts whose outputs are already boxes: end-to-end YOLO, RT-DETR/D-FINE, TF SSD.

Each maps one image's outputs to (boxes x1, y1, x2, y2 in canvas pixels, scores, class ids),
as hook.detect.yolo.decode does for YOLO's raw candidates; hook.detect.yolo.decode_outputs
picks the decoder by a model's Layout. Pure numpy, no model here.
"""

from __future__ import annotations

import numpy as np


def decode_end2end(
    rows: np.ndarray,
    *,
    canvas: tuple[int, int],
    min_score: float,
    classes: int,
    class_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[N, 6] rows of x1, y1, x2, y2, score, class id (a float) -> canvas-pixel detections."""
    rows = rows.astype(np.float32, copy=False)
    boxes = to_pixels(rows[:, :4], canvas, fractions=None)
    return _select(
        boxes, rows[:, 4], rows[:, 5], classes=classes, min_score=min_score, class_mask=class_mask
    )


def decode_detr(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    canvas: tuple[int, int],
    min_score: float,
    classes: int,
    class_mask: np.ndarray | None = None,
    fractions: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split outputs: boxes [N, 4] x1, y1, x2, y2, scores [N], class ids [N] -> detections."""
    xyxy = to_pixels(boxes.astype(np.float32, copy=False), canvas, fractions=fractions)
    return _select(
        xyxy,
        scores.astype(np.float32, copy=False),
        class_ids,
        classes=classes,
        min_score=min_score,
        class_mask=class_mask,
    )


def decode_ssd(
    num: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    canvas: tuple[int, int],
    min_score: float,
    classes: int,
    class_mask: np.ndarray | None = None,
    id_offset: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF SSD: only the first `num` rows are detections; boxes are y1, x1, y2, x2 fractions."""
    count = int(np.asarray(num).reshape(-1)[0]) if np.size(num) else 0
    count = max(0, min(count, len(boxes)))
    yxyx = boxes[:count].astype(np.float32, copy=False)
    xyxy = to_pixels(yxyx[:, [1, 0, 3, 2]], canvas, fractions=True)
    ids = np.asarray(class_ids[:count], dtype=np.float64) - id_offset
    return _select(
        xyxy,
        scores[:count].astype(np.float32, copy=False),
        ids,
        classes=classes,
        min_score=min_score,
        class_mask=class_mask,
    )


def to_pixels(boxes: np.ndarray, canvas: tuple[int, int], *, fractions: bool | None) -> np.ndarray:
    """x1, y1, x2, y2 boxes -> canvas pixels; `fractions=None` guesses as `decode` does.

    The guess: every coordinate within +-2 means fractions of the canvas; a model's candidates
    in pixels always reach further than that.
    """
    if fractions is None:
        fractions = bool(len(boxes)) and float(np.abs(boxes).max()) <= 2.0
    if not fractions:
        return boxes
    return boxes * np.array([canvas[0], canvas[1], canvas[0], canvas[1]], dtype=np.float32)


def _select(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    classes: int,
    min_score: float,
    class_mask: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep rows with a known class, allowed by the mask, scoring at least min_score (and > 0)."""
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & np.isfinite(class_ids)
    ids = np.rint(np.where(finite, class_ids, -1)).astype(np.int64)  # float ids are whole numbers
    keep = finite & (ids >= 0) & (ids < classes) & (scores >= min_score) & (scores > 0)
    keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # no empty boxes
    if class_mask is not None:
        keep[keep] = class_mask[ids[keep]] > 0
    return boxes[keep], scores[keep], ids[keep]
