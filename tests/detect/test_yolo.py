"""The pure box and image math: letterbox round trips, tensors, both decoders, per-class NMS."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hook.detect import decoders, yolo


@pytest.mark.parametrize(
    ("source", "canvas"),
    [
        ((768, 576), (416, 416)),
        ((640, 424), (416, 416)),
        ((300, 900), (416, 416)),
        ((1352, 900), (640, 384)),
        ((500, 500), (320, 256)),
        ((37, 1000), (416, 416)),
    ],
)
def test_letterbox_maps_boxes_back_exactly(
    source: tuple[int, int], canvas: tuple[int, int]
) -> None:
    box = yolo.fit(source, canvas)
    w, h = source
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.1, w * 0.6, h * 0.9]], dtype=np.float32)
    sx, sy = box.scale
    forward = boxes * np.array([sx, sy, sx, sy], dtype=np.float32) + np.array(box.pad * 2)
    back = yolo.unletterbox(forward.astype(np.float32), box)
    np.testing.assert_allclose(back, boxes, rtol=1e-5, atol=1e-3)
    # the image fills the canvas along one side and is centred along the other
    assert box.resized[0] == canvas[0] or box.resized[1] == canvas[1]
    assert abs(box.pad[0] * 2 + box.resized[0] - canvas[0]) <= 1
    assert abs(box.pad[1] * 2 + box.resized[1] - canvas[1]) <= 1
    assert abs(box.resized[0] / box.resized[1] - w / h) < 0.03 * (w / h) + 1 / box.resized[1]


def test_letterbox_puts_the_pixels_where_the_box_says() -> None:
    """A red square drawn on a wide image lands where the forward mapping predicts."""
    image = Image.new("RGB", (800, 400), (0, 0, 0))
    ImageDraw.Draw(image).rectangle((500, 100, 599, 199), fill=(255, 0, 0))
    canvas, box = yolo.letterbox(image, (416, 416))
    pixels = np.asarray(canvas)
    red = np.argwhere((pixels[:, :, 0] > 128) & (pixels[:, :, 1] < 64))
    (y1, x1), (y2, x2) = red.min(axis=0), red.max(axis=0) + 1
    back = yolo.unletterbox(np.array([[x1, y1, x2, y2]], dtype=np.float32), box)[0]
    np.testing.assert_allclose(back, [500, 100, 600, 200], atol=2.5)
    assert tuple(pixels[5, 5]) == (yolo.PAD_GRAY,) * 3  # padding above the image
    assert box.pad == (0, 104)


def test_letterbox_with_a_reduced_decode_maps_to_the_original_size() -> None:
    small = Image.new("RGB", (676, 450))
    canvas, box = yolo.letterbox(small, (416, 416), source=(1352, 900))
    assert canvas.shape == (416, 416, 3) and box.source == (1352, 900)
    back = yolo.unletterbox(
        np.array([[0, box.pad[1], 416, 416 - box.pad[1]]], dtype=np.float32), box
    )
    np.testing.assert_allclose(back[0], [0, 0, 1352, 900], atol=1.5)


def test_to_tensor_layouts_and_types() -> None:
    image = Image.new("RGB", (4, 2), (255, 0, 51))
    nchw = yolo.to_tensor([image, image], channels_first=True, dtype=np.dtype(np.float32))
    assert nchw.shape == (2, 3, 2, 4) and nchw.dtype == np.float32 and nchw.flags.c_contiguous
    np.testing.assert_allclose(nchw[0, :, 0, 0], [1.0, 0.0, 0.2], atol=1e-6)
    nhwc = yolo.to_tensor([image], channels_first=False, dtype=np.dtype(np.uint8))
    assert (
        nhwc.shape == (1, 2, 4, 3)
        and nhwc.dtype == np.uint8
        and list(nhwc[0, 0, 0]) == [255, 0, 51]
    )


def test_output_layout_by_shape() -> None:
    assert yolo.output_layout((1, 2535, 85), 80) == yolo.Layout.V5
    assert yolo.output_layout((1, 84, 8400), 80) == yolo.Layout.V8
    with pytest.raises(ValueError, match="neither"):
        yolo.output_layout((1, 300, 6), 80)
    with pytest.raises(ValueError, match="3-D"):
        yolo.output_layout((1, 84), 80)


def test_decode_v5_multiplies_objectness_and_class() -> None:
    rows = np.array(
        [
            [50, 40, 20, 10, 0.9, 0.1, 0.8],  # score 0.72, class 1
            [10, 10, 4, 4, 0.2, 0.9, 0.0],  # score 0.18: below threshold
        ],
        dtype=np.float32,
    )
    boxes, scores, ids = yolo.decode(rows, yolo.Layout.V5, canvas=(100, 80), min_score=0.25)
    np.testing.assert_allclose(boxes, [[40, 35, 60, 45]])
    np.testing.assert_allclose(scores, [0.72], rtol=1e-6)
    assert ids.tolist() == [1]


def test_decode_v8_is_transposed_and_scales_normalised_boxes() -> None:
    columns = np.array(
        [[0.5, 0.25], [0.5, 0.5], [0.2, 0.1], [0.1, 0.1], [0.1, 0.3], [0.7, 0.2]], dtype=np.float32
    )  # 4 + 2 classes, 2 candidates
    boxes, scores, ids = yolo.decode(columns, yolo.Layout.V8, canvas=(200, 100), min_score=0.25)
    np.testing.assert_allclose(boxes, [[80, 45, 120, 55], [40, 45, 60, 55]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.7, 0.3], rtol=1e-6)
    assert ids.tolist() == [1, 0]


def test_decode_class_mask_picks_the_best_allowed_class() -> None:
    rows = np.array([[50, 40, 20, 10, 1.0, 0.9, 0.5]], dtype=np.float32)
    mask = np.array([0.0, 1.0], dtype=np.float32)
    _, scores, ids = yolo.decode(
        rows, yolo.Layout.V5, canvas=(100, 80), min_score=0.25, class_mask=mask
    )
    assert ids.tolist() == [1] and scores.tolist() == [0.5]


def test_nms_suppresses_within_a_class_only() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32
    )
    scores = np.array([0.6, 0.9, 0.8, 0.3], dtype=np.float32)
    ids = np.array([0, 0, 1, 0])
    assert yolo.nms(boxes, scores, ids, 0.45).tolist() == [1, 2, 3]
    assert yolo.nms(boxes, scores, ids, 0.99).tolist() == [1, 2, 0, 3]
    assert yolo.nms(boxes, scores, ids, 0.45, max_detections=2).tolist() == [1, 2]
    assert yolo.nms(boxes[:0], scores[:0], ids[:0], 0.45).tolist() == []


def test_iou() -> None:
    box = np.array([0, 0, 10, 10], dtype=np.float32)
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float32)
    np.testing.assert_allclose(yolo.ious(box, others), [1.0, 1 / 3, 0.0], rtol=1e-6)


def test_nms_keeps_classes_apart_even_with_negative_coordinates() -> None:
    boxes = np.array([[0, 0, 416, 416], [-400, -400, 10, 10]], dtype=np.float32)
    kept = yolo.nms(boxes, np.array([0.9, 0.8], dtype=np.float32), np.array([0, 1]), 0.45)
    assert kept.tolist() == [0, 1]


def test_min_score_zero_reports_no_masked_or_empty_rows() -> None:
    rows = np.array(
        [[50, 40, 20, 10, 1.0, 0.0, 0.0], [50, 40, 20, 10, 1.0, 0.9, 0.0]], dtype=np.float32
    )
    mask = np.array([0.0, 1.0], dtype=np.float32)
    _, scores, ids = yolo.decode(
        rows, yolo.Layout.V5, canvas=(100, 80), min_score=0.0, class_mask=mask
    )
    assert ids.tolist() == [] and scores.tolist() == []


# -- end-to-end layouts: told apart by outputs, decoded to canvas pixels ----------------------
def z(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def test_plan_outputs_tells_the_layouts_apart() -> None:
    ssd_names = [
        "detection_boxes:0",
        "raw_detection_boxes",
        "detection_scores:0",
        "detection_classes:0",
        "num_detections:0",
    ]
    ssd = yolo.plan_outputs(ssd_names, [z(1, 100, 4), z(1, 9, 4), z(1, 100), z(1, 100), z(1)], 90)
    assert ssd == yolo.Plan(yolo.Layout.SSD, (4, 0, 2, 3))
    named = yolo.plan_outputs(
        ["labels", "boxes", "scores"], [z(1, 300, dtype=np.int64), z(1, 300, 4), z(1, 300)], 80
    )
    assert named == yolo.Plan(yolo.Layout.DETR, (1, 2, 0))
    by_shape = yolo.plan_outputs(
        ["a", "b", "c"], [z(1, 300), z(1, 300, 4), z(1, 300, dtype=np.int32)], 80
    )
    assert by_shape == yolo.Plan(yolo.Layout.DETR, (1, 0, 2))
    assert yolo.plan_outputs(["output0"], [z(1, 2535, 85)], 80).layout == yolo.Layout.V5
    assert yolo.plan_outputs(["output0"], [z(1, 84, 8400)], 80).layout == yolo.Layout.V8


def test_plan_outputs_six_columns_need_the_end2end_mark() -> None:
    rows = [z(1, 300, 6)]
    assert yolo.plan_outputs(["output0"], rows, 1).layout == yolo.Layout.V5  # 5 + 1 columns
    assert yolo.plan_outputs(["output0"], rows, 1, end2end=True).layout == yolo.Layout.END2END
    assert yolo.plan_outputs(["output0"], rows, 80, end2end=True).layout == yolo.Layout.END2END
    with pytest.raises(ValueError, match=r"output0 \[1, 300, 6\] fit no layout for 80.*neither"):
        yolo.plan_outputs(["output0"], rows, 80)


def test_plan_outputs_refuses_what_fits_nothing() -> None:
    two_floats = [z(1, 300, 4), z(1, 300), z(1, 300)]  # which is the score? not a guess
    with pytest.raises(ValueError, match=r"a \[1, 300, 4\], b \[1, 300\], c \[1, 300\]"):
        yolo.plan_outputs(["a", "b", "c"], two_floats, 80)
    with pytest.raises(ValueError, match="boxes, scores and class ids are not"):
        yolo.plan_outputs(["boxes", "scores", "labels"], [z(1, 300, 4), z(1, 300), z(1, 30)], 80)


def test_per_image_slices_every_output() -> None:
    items = yolo.per_image([np.arange(6).reshape(2, 3), np.array([7, 8])])
    assert [(a.tolist(), int(b)) for a, b in items] == [([0, 1, 2], 7), ([3, 4, 5], 8)]


def test_label_offset_for_tf_ids() -> None:
    assert yolo.label_offset(yolo.Layout.SSD, ["person", "bicycle"]) == 1
    assert yolo.label_offset(yolo.Layout.SSD, ["???", "person"]) == 0
    assert yolo.label_offset(yolo.Layout.SSD, ["Background", "person"]) == 0
    assert yolo.label_offset(yolo.Layout.DETR, ["person", "bicycle"]) == 0
    assert yolo.is_placeholder(" N/A ") and not yolo.is_placeholder("person")


def test_non_finite_and_empty_rows_are_no_detections() -> None:
    rows = np.array(
        [
            [100, 100, 50, 50, 0.9, 0.8],  # the one real detection
            [np.nan, 100, 50, 50, 0.9, 0.8],
            [100, np.inf, 50, 50, 0.9, 0.8],
            [100, 100, 50, 50, np.nan, 0.8],
            [100, 100, 50, 50, 0.9, np.inf],
            [100, 100, 0, 50, 0.9, 0.8],  # zero width
        ],
        dtype=np.float32,
    )
    boxes, scores, ids = yolo.decode(rows, yolo.Layout.V5, canvas=(416, 416), min_score=0.25)
    assert ids.tolist() == [0]
    assert boxes.tolist() == [[75, 75, 125, 125]] and scores.tolist() == pytest.approx([0.72])
    split = decoders.decode_detr(
        np.array([[10, 10, 50, 50], [np.nan, 0, 5, 5], [10, 10, 10, 50], [0, 0, 9, 9]], float),
        np.array([0.9, 0.9, 0.9, np.inf]),
        np.array([0, 0, 0, 0]),
        canvas=(416, 416),
        min_score=0.25,
        classes=1,
    )
    assert split[0].tolist() == [[10, 10, 50, 50]]
