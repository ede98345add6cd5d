"""Pure image and box math for YOLO-family detectors: letterbox, tensors, decoding, NMS.

No I/O and no model here: every function maps arrays to arrays, so each is tested alone.
Boxes are float arrays of rows (x1, y1, x2, y2) in pixels, y growing downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image

PAD_GRAY = 114  # the letterbox fill Ultralytics trains with


class Layout(StrEnum):
    """How a detector lays out its output rows."""

    V5 = "yolov5"  # [1, N, 5 + C]: cx, cy, w, h, objectness, class scores
    V8 = "yolov8"  # [1, 4 + C, N]: cx, cy, w, h, class scores (no objectness)


@dataclass(frozen=True)
class Letterbox:
    """How an image of `source` size was placed on the model's canvas, to map boxes back."""

    source: tuple[int, int]  # width, height of the original image
    resized: tuple[int, int]  # width, height it was scaled to
    pad: tuple[int, int]  # left, top offset on the canvas

    @property
    def scale(self) -> tuple[float, float]:
        return self.resized[0] / self.source[0], self.resized[1] / self.source[1]


def fit(source: tuple[int, int], canvas: tuple[int, int]) -> Letterbox:
    """Keep the aspect ratio, fit inside the canvas, centre it."""
    (w, h), (cw, ch) = source, canvas
    scale = min(cw / w, ch / h)
    rw, rh = max(1, min(cw, round(w * scale))), max(1, min(ch, round(h * scale)))
    return Letterbox(source=(w, h), resized=(rw, rh), pad=((cw - rw) // 2, (ch - rh) // 2))


def letterbox(
    image: Image.Image, canvas: tuple[int, int], source: tuple[int, int] | None = None
) -> tuple[Image.Image, Letterbox]:
    """Scale `image` into a gray canvas of `canvas` (w, h) without distortion.

    `source` is the size boxes should map back to, when `image` is a reduced decode of a
    larger original (JPEG draft); by default the image's own size.
    """
    box = fit(source or image.size, canvas)
    resized = image.resize(box.resized, Image.Resampling.BILINEAR, reducing_gap=3.0)
    out = Image.new("RGB", canvas, (PAD_GRAY,) * 3)
    out.paste(resized, box.pad)
    return out, box


def to_tensor(images: list[Image.Image], *, channels_first: bool, dtype: np.dtype) -> np.ndarray:
    """RGB images -> one batch, NCHW or NHWC; floats scaled to 0..1, integers left 0..255."""
    batch = np.stack([np.asarray(image, dtype=np.uint8) for image in images])
    if channels_first:
        batch = batch.transpose(0, 3, 1, 2)
    if np.issubdtype(dtype, np.floating):
        return np.ascontiguousarray(batch, dtype=dtype) * dtype.type(1 / 255)
    return np.ascontiguousarray(batch, dtype=dtype)


def output_layout(shape: tuple[int, ...], classes: int) -> Layout:
    """Tell the layouts apart by shape, given the number of classes; ValueError if neither."""
    if len(shape) != 3:
        raise ValueError(f"expected a 3-D output [batch, rows, columns], got shape {list(shape)}")
    if shape[2] == 5 + classes:
        return Layout.V5
    if shape[1] == 4 + classes:
        return Layout.V8
    raise ValueError(
        f"output shape {list(shape)} is neither [1, N, 5+{classes}] (YOLOv5) "
        f"nor [1, 4+{classes}, N] (YOLOv8/YOLO11) for {classes} labels"
    )


def decode(
    output: np.ndarray,
    layout: Layout,
    *,
    canvas: tuple[int, int],
    min_score: float,
    class_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw output -> (boxes in canvas pixels, scores, class ids) above min_score.

    Coordinates given as fractions of the canvas (some exports do) are scaled to pixels; the
    test is on all candidates, which always span the canvas when in pixels.
    """
    rows = output.T if layout == Layout.V8 else output
    rows = rows.astype(np.float32, copy=False)
    scores = rows[:, 5:] * rows[:, 4:5] if layout == Layout.V5 else rows[:, 4:]
    if class_mask is not None:
        scores = scores * class_mask
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(rows)), class_ids]
    keep = (best >= min_score) & (best > 0)  # a score of 0 is no detection, whatever the floor
    xywh = rows[keep, :4]
    if rows.shape[0] and float(np.abs(rows[:, :2]).max()) <= 2.0:
        xywh = xywh * np.array([canvas[0], canvas[1], canvas[0], canvas[1]], dtype=np.float32)
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    return boxes, best[keep], class_ids[keep]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of `boxes`."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    threshold: float,
    max_detections: int = 300,
) -> np.ndarray:
    """Greedy non-maximum suppression within each class; indices of the kept boxes, best first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    # Shift each class to its own region of the plane, so one pass never merges two classes.
    shifted = boxes + (class_ids[:, None] * (float(boxes.max() - boxes.min()) + 1.0))
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        first, rest = order[0], order[1:]
        keep.append(int(first))
        order = rest[iou(shifted[first], shifted[rest]) <= threshold]
    return np.array(keep, dtype=np.int64)


def unletterbox(boxes: np.ndarray, box: Letterbox) -> np.ndarray:
    """Canvas pixels -> original-image pixels, clipped to the image."""
    sx, sy = box.scale
    out = (boxes - np.array([box.pad[0], box.pad[1]] * 2, dtype=np.float32)) / np.array(
        [sx, sy, sx, sy], dtype=np.float32
    )
    w, h = box.source
    return np.clip(out, 0, np.array([w, h, w, h], dtype=np.float32))
