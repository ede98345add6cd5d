"""End-to-end output layouts through the Detector, on tiny hand-built ONNX graphs.

Each graph reads only its image input's shape (for the batch size) and emits constant, known
outputs, one copy per image; the RT-DETR-like one also scales its normalised boxes by the
`orig_target_sizes` input, as RT-DETR's exported postprocessor does. Every check is in
original-image pixels on a non-square photo, so the letterbox round trip is part of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from hook.config.detectors import detector_from
from hook.detect import ensemble
from hook.detect.detection import Detection
from hook.detect.detector import Detector
from hook.errors import ConfigError
from tests.factories import make_settings

CANVAS_NCHW = [3, 64, 96]  # canvas 96 x 64 (w x h)
CANVAS_NHWC = [64, 96, 3]
# A 300 x 100 photo on the 96 x 64 canvas: scaled by 0.32 to 96 x 32, 16 px bands above/below.
# So canvas (x, y) = (0.32 * X, 0.32 * Y + 16) for original (X, Y).
WIDE = (300, 100)


def graph_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    *,
    image_shape: list,
    image_type: int = TensorProto.FLOAT,
    sizes_scale: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """A model whose outputs are `outputs` (each [1, ...]) repeated over the image batch.

    `sizes_scale` names the output to multiply by a second input `orig_target_sizes` [B, 2]
    as (w, h, w, h), like RT-DETR's exported postprocessor.
    """
    nodes = [
        helper.make_node("Shape", ["images"], ["image_shape"]),
        helper.make_node("Slice", ["image_shape", "zero", "one"], ["batch"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
    ]
    inputs = [helper.make_tensor_value_info("images", image_type, image_shape)]
    batch = image_shape[0]
    if sizes_scale:
        inputs.append(
            helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, [batch, 2])
        )
        nodes += [
            helper.make_node("Cast", ["orig_target_sizes"], ["wh"], to=TensorProto.FLOAT),
            helper.make_node("Concat", ["wh", "wh"], ["whwh"], axis=1),
            helper.make_node("Unsqueeze", ["whwh", "one"], ["scale"]),  # [B, 1, 4]
        ]
    graph_outputs = []
    for name, value in outputs.items():
        rest = f"{name}_rest"
        inits += [
            numpy_helper.from_array(value, f"{name}_value"),
            numpy_helper.from_array(np.array(value.shape[1:], np.int64), rest),
        ]
        expanded = f"{name}_expanded" if name == sizes_scale else name
        nodes += [
            helper.make_node("Concat", ["batch", rest], [f"{name}_shape"], axis=0),
            helper.make_node("Expand", [f"{name}_value", f"{name}_shape"], [expanded]),
        ]
        if name == sizes_scale:
            nodes.append(helper.make_node("Mul", [expanded, "scale"], [name]))
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        graph_outputs.append(helper.make_tensor_value_info(name, elem, [batch, *value.shape[1:]]))
    graph = helper.make_graph(nodes, "layout", inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path


def with_names(model: Path, names: str) -> Path:
    model.with_suffix(".names").write_text(names)
    return model


def found(detector: Detector, size: tuple[int, int] = WIDE) -> list[tuple[str, float]]:
    return [(d.label, round(d.score, 3)) for d in detector.detect(Image.new("RGB", size))]


def box_of(detections: list[Detection], label: str) -> tuple[float, float, float, float]:
    return next(d.box for d in detections if d.label == label)


# -- RT-DETR / D-FINE: labels, boxes, scores, and the orig_target_sizes input ------------------
def detr_model(tmp_path: Path) -> Path:
    """Normalised x1, y1, x2, y2 boxes, scaled in the graph by orig_target_sizes (w, h)."""
    boxes = np.array(
        [
            [
                [
                    0.25,
                    0.375,
                    0.5,
                    0.625,
                ],  # dog: canvas (24, 24, 48, 40) = original (75, 25, 150, 75)
                [
                    0.5,
                    0.3125,
                    1.0,
                    0.6875,
                ],  # car: canvas (48, 20, 96, 44) = orig. (150, 12.5, 300, 87.5)
                [0.0, 0.25, 0.25, 0.75],  # cat, weak: canvas (0, 16, 24, 48)
                [0.1, 0.3, 0.2, 0.4],  # class id 7: no such label
            ]
        ],
        dtype=np.float32,
    )
    outputs: dict[str, np.ndarray] = {
        "labels": np.array([[1, 2, 0, 7]], np.int64),
        "boxes": boxes,
        "scores": np.array([[0.9, 0.6, 0.2, 0.95]], np.float32),
    }
    model = graph_model(
        tmp_path / "rtdetr.onnx", outputs, image_shape=["batch", *CANVAS_NCHW], sizes_scale="boxes"
    )
    return with_names(model, "cat\ndog\ncar\n")


def test_detr_with_target_sizes_maps_boxes_to_the_original_image(tmp_path: Path) -> None:
    detector = Detector(detr_model(tmp_path), min_score=0.25)  # its cat scores 0.2
    assert detector.layout.value == "detr" and detector.batchable
    assert detector.output_names == ("boxes", "scores", "labels")
    assert detector.sizes_input is not None and detector.sizes_input[0] == "orig_target_sizes"
    detections = detector.detect(Image.new("RGB", WIDE))
    assert [(d.label, round(d.score, 3)) for d in detections] == [("dog", 0.9), ("car", 0.6)]
    np.testing.assert_allclose(box_of(detections, "dog"), [75, 25, 150, 75], atol=1e-3)
    np.testing.assert_allclose(box_of(detections, "car"), [150, 12.5, 300, 87.5], atol=1e-3)


def test_detr_dynamic_batch_runs_several_images_at_once(tmp_path: Path) -> None:
    detector = Detector(detr_model(tmp_path))
    canvases = [detector.to_canvas(Image.new("RGB", size))[0] for size in (WIDE, (96, 64))]
    outputs = detector.run(canvases)  # one session run: orig_target_sizes is [2, 2]
    assert len(outputs) == 2 and [a.shape for a in outputs[0]] == [(4, 4), (4,), (4,)]
    wide, exact = detector.detect_many(
        [(Image.new("RGB", WIDE), None), (Image.new("RGB", (96, 64)), None)]
    )
    np.testing.assert_allclose(box_of(wide, "dog"), [75, 25, 150, 75], atol=1e-3)
    np.testing.assert_allclose(box_of(exact, "dog"), [24, 24, 48, 40], atol=1e-3)


def test_detr_min_score_and_classes_apply(tmp_path: Path) -> None:
    model = detr_model(tmp_path)
    assert found(Detector(model, min_score=0.1)) == [("dog", 0.9), ("car", 0.6), ("cat", 0.2)]
    assert found(Detector(model, min_score=0.7)) == [("dog", 0.9)]
    assert found(Detector(model, min_score=0.1, classes=("cat", "car"))) == [
        ("car", 0.6),
        ("cat", 0.2),
    ]


def test_split_outputs_told_apart_by_shape_and_dtype_fixed_batch(tmp_path: Path) -> None:
    """YOLOv10-style split outputs with unhelpful names, pixel boxes, float16 input, batch 1."""
    outputs = {
        "out_a": np.array([[0.8, 0.3]], np.float32),  # scores
        "out_b": np.array([[2, 0]], np.int32),  # class ids
        "out_c": np.array([[[24, 24, 48, 40], [0, 16, 24, 48]]], np.float32),  # canvas pixels
    }
    model = graph_model(
        tmp_path / "split.onnx",
        outputs,
        image_shape=[1, *CANVAS_NCHW],
        image_type=TensorProto.FLOAT16,
    )
    detector = Detector(with_names(model, "bird\nplane\nboat\n"))
    assert detector.layout.value == "detr" and not detector.batchable
    assert detector.output_names == ("out_c", "out_a", "out_b") and detector.sizes_input is None
    many = detector.detect_many([(Image.new("RGB", WIDE), None)] * 3)  # one by one
    assert len(many) == 3
    for detections in many:
        assert [(d.label, round(d.score, 3)) for d in detections] == [("boat", 0.8), ("bird", 0.3)]
        np.testing.assert_allclose(box_of(detections, "boat"), [75, 25, 150, 75], atol=1e-3)
        np.testing.assert_allclose(box_of(detections, "bird"), [0, 0, 75, 100], atol=1e-3)


# -- end-to-end [B, N, 6]: YOLOv10 / Ultralytics end2end --------------------------------------
END2END_ROWS = np.array(
    [
        [
            [24, 24, 48, 40, 0.85, 0],  # person: original (75, 25, 150, 75)
            [48, 20, 96, 44, 0.1, 0],  # weak
            [0, 0, 0, 0, 0.0, 0],  # padding
        ]
    ],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    "mark", [{"end2end": "True"}, {"args": "{'batch': 1, 'nms': True}"}], ids=["end2end", "nms"]
)
def test_end2end_single_output_marked_by_ultralytics_metadata(
    tmp_path: Path, mark: dict[str, str]
) -> None:
    """One label: [B, N, 6] is also YOLOv5's 5 + 1 shape; Ultralytics' metadata settles it."""
    model = graph_model(
        tmp_path / "e2e.onnx",
        {"output0": END2END_ROWS},
        image_shape=["batch", *CANVAS_NHWC],
        metadata={"names": "{0: 'person'}", **mark},
    )
    detector = Detector(model)
    assert detector.layout.value == "end2end" and not detector.channels_first
    (person,) = detector.detect(Image.new("RGB", WIDE))
    assert person.label == "person" and person.score == pytest.approx(0.85)
    np.testing.assert_allclose(person.box, [75, 25, 150, 75], atol=1e-3)
    assert [d.label for d in Detector(model, min_score=0.05).detect(Image.new("RGB", WIDE))] == [
        "person",
        "person",
    ]


def test_unmarked_six_columns_with_one_label_stay_yolov5(tmp_path: Path) -> None:
    model = graph_model(
        tmp_path / "v5.onnx",
        {"output0": END2END_ROWS},
        image_shape=[1, *CANVAS_NCHW],
        metadata={"names": "{0: 'person'}"},
    )
    assert Detector(model).layout.value == "yolov5"


# -- TF Object Detection API SSD: four outputs, 1-based ids, num_detections -------------------
def ssd_model(tmp_path: Path) -> Path:
    boxes = np.array(
        [
            [
                [0.375, 0.25, 0.625, 0.5],  # y1, x1, y2, x2: canvas (24, 24, 48, 40)
                [0.3125, 0.5, 0.6875, 1.0],  # canvas (48, 20, 96, 44)
                [0.25, 0.0, 0.75, 0.25],  # class id 0: TF's background, never a detection
                [
                    0.25,
                    0.25,
                    0.75,
                    0.75,
                ],  # beyond num_detections: not valid, however high its score
                [0.0, 0.0, 0.0, 0.0],
            ]
        ],
        dtype=np.float32,
    )
    outputs = {
        "detection_boxes:0": boxes,
        "detection_scores:0": np.array([[0.9, 0.5, 0.8, 0.99, 0.0]], np.float32),
        "detection_classes:0": np.array([[1.0, 3.0, 0.0, 2.0, 0.0]], np.float32),
        "num_detections:0": np.array([3.0], np.float32),
        "raw_detection_boxes": np.zeros((1, 8, 4), np.float32),  # TF2 exports add these
    }
    return graph_model(
        tmp_path / "ssd.onnx",
        outputs,
        image_shape=["batch", *CANVAS_NHWC],
        image_type=TensorProto.UINT8,
    )


@pytest.mark.parametrize(
    "names",
    ["person\nbicycle\ncar\n", "???\nperson\nbicycle\ncar\n", "background\nperson\nbicycle\ncar\n"],
    ids=["label-map-order", "placeholder-first", "background-first"],
)
def test_tf_ssd_one_based_ids_and_num_detections(tmp_path: Path, names: str) -> None:
    """TF's id 1 is the first real name, with or without a placeholder line for id 0."""
    detector = Detector(with_names(ssd_model(tmp_path), names))
    assert detector.layout.value == "tf-ssd" and detector.dtype == np.uint8
    detections = detector.detect(Image.new("RGB", WIDE))
    assert [(d.label, round(d.score, 3)) for d in detections] == [("person", 0.9), ("car", 0.5)]
    np.testing.assert_allclose(box_of(detections, "person"), [75, 25, 150, 75], atol=1e-3)
    np.testing.assert_allclose(box_of(detections, "car"), [150, 12.5, 300, 87.5], atol=1e-3)
    assert found(Detector(detector.model, min_score=0.6)) == [("person", 0.9)]
    assert found(Detector(detector.model, classes=("car", "bicycle"))) == [("car", 0.5)]


# -- what no layout fits ----------------------------------------------------------------------
def test_unrecognised_outputs_are_a_config_error_naming_them(tmp_path: Path) -> None:
    outputs = {"foo": np.zeros((1, 10, 3), np.float32), "bar": np.zeros((1, 7), np.float32)}
    model = with_names(
        graph_model(tmp_path / "odd.onnx", outputs, image_shape=[1, *CANVAS_NCHW]), "a\nb\n"
    )
    with pytest.raises(ConfigError, match=r"foo \[1, 10, 3\], bar \[1, 7\] fit no layout") as err:
        Detector(model)
    assert "TF SSD" in str(err.value) and "RT-DETR" in str(err.value)


def test_tf_ssd_names_with_wrong_shapes_are_refused(tmp_path: Path) -> None:
    outputs = {
        "detection_boxes": np.zeros((1, 5, 3), np.float32),
        "detection_scores": np.zeros((1, 5), np.float32),
        "detection_classes": np.zeros((1, 5), np.float32),
        "num_detections": np.zeros((1,), np.float32),
    }
    model = graph_model(tmp_path / "bad.onnx", outputs, image_shape=[1, *CANVAS_NHWC])
    with pytest.raises(ConfigError, match=r"detection_boxes \[1, 5, 3\].*TF SSD outputs are not"):
        Detector(with_names(model, "a\n"))


def test_a_model_without_the_default_label_scores_labels_runs_on_the_default_settings(
    tmp_path: Path,
) -> None:
    """HOOK_LABEL_SCORES' default names COCO's people and vehicles: a model that lacks some keeps
    the ones it knows; naming an unknown label yourself stays a start-up error."""
    model = detr_model(tmp_path)  # labels dog, car, cat, ...
    detector = detector_from(make_settings(HOOK_MODEL=str(model), HOOK_TILES="off"))
    known = set(ensemble.label_names(detector))
    assert "motorcycle" not in known and detector.thresholds.labels == {"car": 0.3}
    with pytest.raises(ConfigError, match="HOOK_LABEL_SCORES names labels the model does not"):
        detector_from(make_settings(HOOK_MODEL=str(model), HOOK_LABEL_SCORES="horse=0.2"))
