"""Pure image and box math for object detectors: letterbox, tensors, layouts, decoding, NMS.

No I/O and no model here: every function maps arrays to arrays, so each is tested alone.
Boxes are float arrays of rows (x1, y1, x2, y2) in pixels, y growing downwards.

Layouts are told apart by a model's outputs (names, count, shapes; see `plan_outputs`), and each
has one decoder (YOLO's own here, those of end-to-end outputs in hook.detect.decoders); all decoders
give (boxes in canvas pixels, scores, class ids), so the same NMS and un-letterbox follow for
every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hook.detect.decoders import decode_detr, decode_end2end, decode_ssd
from hook.detect.detection import Letterbox
from hook.detect.pixels import Picture, Pixels, on_canvas, pixels_of, resized, size_of

PAD_GRAY = 114  # the letterbox fill Ultralytics trains with


# Names a label file puts where a class id has no class (TF's id 0, gaps in COCO's 91 ids).
PLACEHOLDERS = frozenset({"???", "n/a", "background", "__background__"})
# Output names of the TF Object Detection API's SSD-style exports (tf2onnx may add ":0").
SSD_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
# Output names of split end-to-end exports (RT-DETR / D-FINE: labels, boxes, scores).
BOX_NAMES = frozenset({"boxes", "bboxes"})
SCORE_NAMES = frozenset({"scores"})
CLASS_NAMES = frozenset({"labels", "classes", "class_ids"})
ACCEPTED = (
    "accepted: YOLOv5 [B, N, 5+C]; YOLOv8/YOLO11 [B, 4+C, N]; end-to-end [B, N, 6] "
    "(x1, y1, x2, y2, score, class; needs Ultralytics' `end2end` or `nms` metadata); "
    "boxes [B, N, 4] + scores [B, N] + class ids [B, N] (RT-DETR/D-FINE `boxes`, `scores`, "
    "`labels`); TF SSD num_detections [B] + detection_boxes [B, N, 4] + detection_scores [B, N] "
    "+ detection_classes [B, N]"
)


class Layout(StrEnum):
    """How a detector lays out its outputs."""

    V5 = "yolov5"  # [B, N, 5 + C]: cx, cy, w, h, objectness, class scores
    V8 = "yolov8"  # [B, 4 + C, N]: cx, cy, w, h, class scores (no objectness)
    END2END = "end2end"  # [B, N, 6]: x1, y1, x2, y2, score, class id (YOLOv10, Ultralytics)
    DETR = "detr"  # boxes [B, N, 4] x1, y1, x2, y2 + scores [B, N] + class ids [B, N]
    SSD = "tf-ssd"  # num_detections [B], detection_boxes [B, N, 4] y1, x1, y2, x2, scores, classes


@dataclass(frozen=True)
class Plan:
    """A model's layout and which of its outputs the decoder reads, in the decoder's order."""

    layout: Layout
    outputs: tuple[int, ...]  # positions in the model's output list


def fit(source: tuple[int, int], canvas: tuple[int, int]) -> Letterbox:
    """Keep the aspect ratio, fit inside the canvas, centre it."""
    (w, h), (cw, ch) = source, canvas
    scale = min(cw / w, ch / h)
    rw, rh = max(1, min(cw, round(w * scale))), max(1, min(ch, round(h * scale)))
    return Letterbox(source=(w, h), resized=(rw, rh), pad=((cw - rw) // 2, (ch - rh) // 2))


def letterbox(
    image: Picture, canvas: tuple[int, int], source: tuple[int, int] | None = None
) -> tuple[Pixels, Letterbox]:
    """Scale an RGB image into a gray canvas of `canvas` (w, h) without distortion.

    `source` is the size boxes should map back to, when `image` is a reduced decode of a
    larger original (JPEG draft); by default the image's own size.
    """
    image = pixels_of(image)
    box = fit(source or size_of(image), canvas)
    return on_canvas(resized(image, box.resized), canvas, box.pad, PAD_GRAY), box


def to_tensor(images: Sequence[Picture], *, channels_first: bool, dtype: np.dtype) -> np.ndarray:
    """RGB images -> one batch, NCHW or NHWC; floats scaled to 0..1, integers left 0..255."""
    batch = np.stack([pixels_of(image) for image in images])
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


def plan_outputs(
    names: Sequence[str], arrays: Sequence[np.ndarray], classes: int, *, end2end: bool = False
) -> Plan:
    """Tell the layouts apart by the outputs' names, count and shapes; ValueError if none fits.

    In this order: the four TF SSD names; three outputs `boxes`/`scores`/`labels` (by name, or
    else exactly three outputs [B, N, 4] + a float [B, N] + an integer [B, N]); else the first
    output alone. A [B, N, 6] output is end-to-end only when the model says so (`end2end`, from
    Ultralytics' metadata, the same keys its AutoBackend reads): the shape alone cannot tell
    it from a one-class YOLOv5 (5 + 1 = 6), and with other label counts an unmarked [B, N, 6]
    stays an error rather than a guess. Without the mark, one label means YOLOv5.
    """
    described = ", ".join(f"{n} {list(a.shape)}" for n, a in zip(names, arrays, strict=True))
    try:
        return (
            _ssd_plan(names, arrays)
            or _detr_plan(names, arrays)
            or _single_plan(arrays[0].shape if arrays else (), classes, end2end=end2end)
        )
    except ValueError as exc:
        raise ValueError(
            f"outputs {described} fit no layout for {classes} labels ({exc}); {ACCEPTED}"
        ) from None


def _base_name(name: str) -> str:
    return name.split(":", maxsplit=1)[0].lower()  # tf2onnx keeps TF's ":0" tensor suffix


def _ssd_plan(names: Sequence[str], arrays: Sequence[np.ndarray]) -> Plan | None:
    """TF's SSD outputs by name (extra outputs, like raw_detection_boxes, are ignored)."""
    found = {_base_name(n): i for i, n in enumerate(names)}
    if not all(name in found for name in SSD_NAMES):
        return None
    num, boxes, scores, ids = (arrays[found[name]].shape for name in SSD_NAMES)
    if not (
        len(boxes) == 3
        and boxes[2] == 4
        and scores == ids == boxes[:2]
        and num[:1] == boxes[:1]
        and (len(num) == 1 or (len(num) == 2 and num[1] == 1))
    ):
        raise ValueError("TF SSD outputs are not [B], [B, N, 4], [B, N], [B, N]")
    return Plan(Layout.SSD, tuple(found[name] for name in SSD_NAMES))


def _detr_plan(names: Sequence[str], arrays: Sequence[np.ndarray]) -> Plan | None:
    """Split end-to-end outputs, by name when named so, else by shape and dtype."""
    base = [_base_name(n) for n in names]
    named = [
        [i for i, n in enumerate(base) if n in group][:1]
        for group in (BOX_NAMES, SCORE_NAMES, CLASS_NAMES)
    ]
    roles = [i for found in named for i in found]
    if len(roles) != 3:
        roles = _detr_roles_by_shape(arrays)
        if not roles:
            return None
    b, s, c = (arrays[i].shape for i in roles)
    if not (len(b) == 3 and b[2] == 4 and s == c == b[:2]):
        raise ValueError("boxes, scores and class ids are not [B, N, 4], [B, N], [B, N]")
    return Plan(Layout.DETR, tuple(roles))


def _detr_roles_by_shape(arrays: Sequence[np.ndarray]) -> list[int]:
    """Exactly three outputs: one [B, N, 4] (boxes), a float [B, N] and an integer [B, N]."""
    if len(arrays) != 3:
        return []
    boxes = [i for i, a in enumerate(arrays) if a.ndim == 3 and a.shape[2] == 4]
    flat = [i for i, a in enumerate(arrays) if a.ndim == 2]
    integer = [i for i in flat if np.issubdtype(arrays[i].dtype, np.integer)]
    if len(boxes) != 1 or len(flat) != 2 or len(integer) != 1:
        return []
    return [boxes[0], next(i for i in flat if i != integer[0]), integer[0]]


def _single_plan(shape: tuple[int, ...], classes: int, *, end2end: bool) -> Plan:
    if end2end and len(shape) == 3 and shape[2] == 6:
        return Plan(Layout.END2END, (0,))
    return Plan(output_layout(shape, classes), (0,))


def per_image(outputs: Sequence[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """A batch's outputs (each [B, ...]) -> per image, its slice of every output."""
    return list(zip(*outputs, strict=True))


def label_offset(layout: Layout, labels: Sequence[str]) -> int:
    """What to subtract from a model's class ids to index its label names.

    TF's detection_classes are 1-based label-map ids (label_map.pbtxt starts at id 1): id 1 is
    the names file's first line, unless that line is a placeholder for id 0 (`background`,
    `???`, `N/A`, as TF's labelmap.txt files have), then ids index the file directly. Every
    other layout's ids are 0-based indexes into the names file.
    """
    if layout != Layout.SSD:
        return 0
    return 0 if labels and is_placeholder(labels[0]) else 1


def is_placeholder(label: str) -> bool:
    """A name that only holds a class id's place: never reported."""
    return label.strip().lower() in PLACEHOLDERS


def decode_outputs(
    outputs: Sequence[np.ndarray],
    layout: Layout,
    *,
    canvas: tuple[int, int],
    min_score: float,
    classes: int,
    class_mask: np.ndarray | None = None,
    id_offset: int = 0,
    pixels: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's outputs, in its Plan's order -> (canvas-pixel boxes, scores, class ids).

    `pixels`: the model was fed the canvas size (RT-DETR's orig_target_sizes), so its boxes
    are known to be canvas pixels; `id_offset` comes from `label_offset`.
    """
    if layout in (Layout.V5, Layout.V8):
        return decode(outputs[0], layout, canvas=canvas, min_score=min_score, class_mask=class_mask)
    if layout == Layout.END2END:
        return decode_end2end(
            outputs[0], canvas=canvas, min_score=min_score, classes=classes, class_mask=class_mask
        )
    if layout == Layout.DETR:
        boxes, scores, ids = outputs
        return decode_detr(
            boxes,
            scores,
            ids,
            canvas=canvas,
            min_score=min_score,
            classes=classes,
            class_mask=class_mask,
            fractions=False if pixels else None,
        )
    num, boxes, scores, ids = outputs
    return decode_ssd(
        num,
        boxes,
        scores,
        ids,
        canvas=canvas,
        min_score=min_score,
        classes=classes,
        class_mask=class_mask,
        id_offset=id_offset,
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
    finite = np.isfinite(rows).all(axis=1)  # a broken model's NaN or inf is no detection
    scores = np.where(finite[:, None], scores, 0)
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(rows)), class_ids]
    keep = (best >= min_score) & (best > 0)  # a score of 0 is no detection, whatever the floor
    keep &= (rows[:, 2] > 0) & (rows[:, 3] > 0)  # no empty boxes
    xywh = rows[keep, :4]
    if finite.any() and float(np.abs(rows[finite, :2]).max()) <= 2.0:
        xywh = xywh * np.array([canvas[0], canvas[1], canvas[0], canvas[1]], dtype=np.float32)
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    return boxes, best[keep], class_ids[keep]


def ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
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
        order = rest[ious(shifted[first], shifted[rest]) <= threshold]
    return np.array(keep, dtype=np.int64)


def unletterbox(boxes: np.ndarray, box: Letterbox) -> np.ndarray:
    """Canvas pixels -> original-image pixels, clipped to the image."""
    sx, sy = box.scale
    out = (boxes - np.array([box.pad[0], box.pad[1]] * 2, dtype=np.float32)) / np.array(
        [sx, sy, sx, sy], dtype=np.float32
    )
    w, h = box.source
    return np.clip(out, 0, np.array([w, h, w, h], dtype=np.float32))
