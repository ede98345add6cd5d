"""Camio's label format: detections per image -> the JSON body POSTed to callback_url.

    {"status": "success",
     "labels": {"<timestamp as received>": {"dog": {"probability": 0.93,
                                                    "polygon": [[x, y], ...], ...}}}}

Per image and label: the highest score and its box as a polygon of 4 corners in fractions of the
image size, origin at the bottom-left (y grows upwards). Extra fields beside those two: `count`
(boxes of that label) and `boxes` (all of them, best first, same shape).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hook.detect.detection import Detection

DIGITS = 4  # 1/10000 of the image: finer than any camera's pixels at these sizes


def polygon(box: tuple[float, float, float, float], size: tuple[int, int]) -> list[list[float]]:
    """A pixel box (top-left origin) -> 4 corners as fractions, bottom-left origin, CCW."""
    width, height = size
    x1, x2 = _fraction(box[0], width), _fraction(box[2], width)
    bottom, top = 1 - _fraction(box[3], height), 1 - _fraction(box[1], height)
    return [
        [x1, round(bottom, DIGITS)],
        [x2, round(bottom, DIGITS)],
        [x2, round(top, DIGITS)],
        [x1, round(top, DIGITS)],
    ]


def image_labels(detections: Sequence[Detection], size: tuple[int, int]) -> dict[str, Any]:
    """One image's entry: label -> best probability and polygon, plus count and all boxes."""
    entry: dict[str, Any] = {}
    for d in sorted(detections, key=lambda d: -d.score):
        shape = {"probability": round(d.score, DIGITS), "polygon": polygon(d.box, size)}
        if d.label not in entry:
            entry[d.label] = {**shape, "count": 0, "boxes": []}
        entry[d.label]["count"] += 1
        entry[d.label]["boxes"].append(shape)
    return entry


def camio_labels(images: Sequence[tuple[str, tuple[int, int], Sequence[Detection]]]) -> dict:
    """The whole callback body from (timestamp key, image size, detections) per image."""
    return {
        "status": "success",
        "labels": {key: image_labels(found, size) for key, size, found in images},
    }


def _fraction(value: float, total: int) -> float:
    return round(min(1.0, max(0.0, value / total)), DIGITS)


def detections_in(body: str, key: str, size: tuple[int, int]) -> list[Detection]:
    """Every box of image `key` in a stored labels body, in the pixels of an image of `size`
    (the inverse of `image_labels`, to the body's 1/10000): what its picture draws."""
    entry = json.loads(body).get("labels", {}).get(key) or {}
    width, height = size
    found = []
    for label, best in entry.items():
        for shape in best.get("boxes") or [best]:  # bodies before `boxes` kept only the best
            (x1, bottom), (x2, _), (_, top), _ = shape["polygon"]
            box = (x1 * width, (1 - top) * height, x2 * width, (1 - bottom) * height)
            found.append(Detection(label, float(shape["probability"]), box))
    return found
