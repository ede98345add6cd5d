"""Camio's label format: best score per label, polygons as bottom-left-origin fractions."""

from __future__ import annotations

import json

import pytest

from hook.callbacks.labels import camio_labels, detections_in, image_labels, polygon
from hook.detect.detection import Detection


def test_polygon_is_fractions_with_the_origin_at_the_bottom_left() -> None:
    # a box in the top-left quarter of a 200x100 image, pixel rows growing downwards
    assert polygon((0, 0, 100, 50), (200, 100)) == [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
    # bottom-right corner box
    assert polygon((150, 75, 200, 100), (200, 100)) == [
        [0.75, 0.0],
        [1.0, 0.0],
        [1.0, 0.25],
        [0.75, 0.25],
    ]
    # boxes spilling outside the image are clipped
    assert polygon((-5, -5, 250, 120), (200, 100)) == [[0, 0], [1, 0], [1, 1], [0, 1]]


def test_image_labels_keeps_the_best_box_per_label_and_counts() -> None:
    found = [
        Detection("dog", 0.61, (0, 0, 10, 10)),
        Detection("dog", 0.9, (50, 50, 100, 100)),
        Detection("car", 0.4, (0, 0, 100, 100)),
    ]
    entry = image_labels(found, (100, 100))
    assert set(entry) == {"dog", "car"}
    assert entry["dog"]["probability"] == 0.9
    assert entry["dog"]["polygon"] == [[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]
    assert entry["dog"]["count"] == 2 and [b["probability"] for b in entry["dog"]["boxes"]] == [
        0.9,
        0.61,
    ]
    assert entry["car"]["count"] == 1


def test_camio_body_keys_by_timestamp_and_empty_images_are_empty_objects() -> None:
    body = camio_labels(
        [
            (
                "2017-05-05T01:31:13.738647",
                (100, 100),
                [Detection("person", 0.93, (0, 0, 50, 100))],
            ),
            ("2016-10-09T06:17:36.923-0000", (640, 480), []),
        ]
    )
    assert body["status"] == "success"
    assert list(body["labels"]) == ["2017-05-05T01:31:13.738647", "2016-10-09T06:17:36.923-0000"]
    assert body["labels"]["2016-10-09T06:17:36.923-0000"] == {}
    assert body["labels"]["2017-05-05T01:31:13.738647"]["person"]["probability"] == 0.93


def test_detections_in_gives_back_every_box_in_pixels() -> None:
    """The inverse of the body, for drawing a picture from stored labels: each box of each
    label (not only the best), in the pixels of the image's size, to the body's precision."""
    size = (640, 480)
    found = [
        Detection("dog", 0.91, (64.0, 48.0, 320.0, 240.0)),
        Detection("dog", 0.55, (400.0, 300.0, 640.0, 480.0)),
        Detection("car", 0.41, (0.0, 0.0, 100.0, 50.0)),
    ]
    body = json.dumps(camio_labels([("t0", size, found), ("t1", size, [])]))
    back = detections_in(body, "t0", size)
    assert sorted(d.label for d in back) == ["car", "dog", "dog"]
    for want in found:
        (got,) = [d for d in back if d.label == want.label and d.score == want.score]
        assert got.box == pytest.approx(want.box, abs=0.1)
    assert detections_in(body, "t1", size) == [] and detections_in(body, "nope", size) == []
    # the same labels drawn on a reduced decode: boxes scale with the size given
    half = detections_in(body, "t0", (320, 240))
    assert max(d.box[2] for d in half) == pytest.approx(320.0)
