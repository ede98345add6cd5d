"""The detector: the real model on real photos, and tiny hand-made ONNX graphs for the layouts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from hook.config.table import DEFAULT_MODEL
from hook.detect.detection import Detection
from hook.detect.detector import MAX_RUN, Detector
from hook.errors import BadImage, ConfigError
from hook.intake.images import decode_image
from tests.factories import DATA, REGIONS

MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DEFAULT_MODEL)


def detect_file(detector: Detector, name: str) -> list[Detection]:
    image, size = decode_image(
        (DATA / name).read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas
    )
    return detector.detect(image, size)


def centre(d: Detection) -> tuple[float, float]:
    return (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_real_model_finds_the_objects_where_they_are(detector: Detector, name: str) -> None:
    found = detect_file(detector, name)
    for label, (x1, x2, y1, y2) in REGIONS[name].items():
        best = max((d for d in found if d.label == label), key=lambda d: d.score, default=None)
        assert best is not None, f"{label} not found in {name}: {found}"
        cx, cy = centre(best)
        assert x1 <= cx <= x2 and y1 <= cy <= y2, f"{label} centred at {cx:.0f},{cy:.0f}"
        assert best.score >= 0.5
    assert all(0 <= d.score <= 1 for d in found)
    assert found == sorted(found, key=lambda d: -d.score)


def test_real_model_reads_its_own_shape(detector: Detector) -> None:
    assert detector.canvas == (416, 416) and detector.channels_first and detector.batchable
    assert detector.layout.value == "yolov5" and len(detector.labels) == 80
    assert detector.labels[0] == "person"


def test_batch_gives_the_same_as_one_by_one(detector: Detector) -> None:
    images = [
        decode_image((DATA / n).read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas)
        for n in ("dog.jpg", "person.jpg", "eagle.jpg")
    ]
    batched = detector.detect_many(images)
    single = [detector.detect(image, size) for image, size in images]
    for a, b in zip(batched, single, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        np.testing.assert_allclose([d.box for d in a], [d.box for d in b], atol=0.05)


def test_many_canvases_go_through_the_engine_a_few_at_a_time(
    detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event of 64 large frames in tiles is 448 canvases: they run MAX_RUN at a time (one
    run of them all took a worker past 24 GB), in order, each output the image's own; the
    last of several runs gives the engine's extra working memory back, a lone run does not."""
    image, size = decode_image(
        (DATA / "dog.jpg").read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas
    )
    canvas, _ = detector.to_canvas(image, size)
    blank = np.full((*detector.canvas[::-1], 3), 114, dtype=np.uint8)
    canvases = [canvas if n % 5 == 0 else blank for n in range(2 * MAX_RUN + 3)]
    runs: list[tuple[int, bool]] = []
    infer = detector.infer

    def counted(tensor: np.ndarray, *, release: bool = False) -> list[tuple[np.ndarray, ...]]:
        runs.append((len(tensor), release))
        return infer(tensor, release=release)

    monkeypatch.setattr(detector, "infer", counted)
    outputs = detector.run(canvases)
    assert runs == [(MAX_RUN, False), (MAX_RUN, False), (3, True)]
    assert len(outputs) == len(canvases)
    runs.clear()
    (alone,) = detector.run([canvas])
    assert runs == [(1, False)]
    for n in (0, 5, 10, 15):
        np.testing.assert_allclose(outputs[n][0], alone[0], atol=1e-3)


def test_reduced_jpeg_decode_keeps_boxes_in_original_pixels(detector: Detector) -> None:
    data = (DATA / "kite.jpg").read_bytes()
    reduced, size = decode_image(data, max_pixels=MAX_PIXELS, fit=detector.canvas)
    full, full_size = decode_image(data, max_pixels=MAX_PIXELS)
    assert size == full_size == (1352, 900) and reduced.size == (676, 450)
    a, b = detector.detect(reduced, size), detector.detect(full, full_size)
    assert {d.label for d in a} == {d.label for d in b} >= {"kite", "person"}
    for da in a[:3]:
        db = min(b, key=lambda d: np.abs(np.subtract(d.box, da.box)).sum())
        assert np.abs(np.subtract(da.box, db.box)).max() < 6


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    decoded, size = decode_image(out.getvalue(), max_pixels=MAX_PIXELS)
    assert decoded.size == (20, 40) and size == (20, 40) and decoded.mode == "RGB"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not an image", "supported format"),
        ((DATA / "dog.jpg").read_bytes()[:3000], "readable"),
        ((DATA / "dog.jpg").read_bytes()[:60000], "does not decode"),
    ],
    ids=["garbage", "truncated-header", "truncated-pixels"],
)
def test_bad_image_bytes_are_a_bad_image(data: bytes, words: str) -> None:
    with pytest.raises(BadImage, match=words):
        decode_image(data, max_pixels=MAX_PIXELS)


def test_classes_setting_limits_labels() -> None:
    only_dogs = Detector(DEFAULT_MODEL, classes=("dog",))
    found = detect_file(only_dogs, "dog.jpg")
    assert found and {d.label for d in found} == {"dog"}
    with pytest.raises(ConfigError, match="does not know: unicorn"):
        Detector(DEFAULT_MODEL, classes=("dog", "unicorn"))


# -- tiny graphs that emit a known tensor ------------------------------------------------------
def constant_model(path: Path, output: np.ndarray, input_shape: list, *, names: str | None) -> Path:
    """An ONNX model that ignores its image input and returns `output`."""
    const = helper.make_node("Constant", [], ["raw"], value=numpy_helper.from_array(output))
    zero = helper.make_node("ReduceMin", ["images"], ["low"], keepdims=0)
    scale = helper.make_node("Mul", ["low", "zero"], ["nothing"])  # use the input, contribute 0
    add = helper.make_node("Add", ["raw", "nothing"], ["output0"])
    graph = helper.make_graph(
        [const, zero, scale, add],
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        [numpy_helper.from_array(np.array(0, dtype=np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        helper.set_model_props(model, {"names": names})
    onnx.save(model, path)
    return path


def v8_output() -> np.ndarray:
    """[1, 4+3, 4] on a 96x64 canvas: two overlapping cats, a car on the same spot, a weak dog."""
    candidates = [  # cx, cy, w, h, cat, dog, car
        [48, 32, 20, 10, 0.9, 0.1, 0.0],
        [49, 32, 20, 10, 0.8, 0.0, 0.0],
        [48, 32, 20, 10, 0.0, 0.0, 0.7],
        [10, 10, 4, 4, 0.1, 0.2, 0.0],
    ]
    return np.array(candidates, dtype=np.float32).T[None].copy()


def test_yolov8_layout_from_a_tiny_graph(tmp_path: Path) -> None:
    model = constant_model(
        tmp_path / "v8.onnx", v8_output(), [1, 3, 64, 96], names="{0: 'cat', 1: 'dog', 2: 'car'}"
    )
    detector = Detector(model, min_score=0.25)  # the graph scores a third box 0.2
    assert detector.layout.value == "yolov8" and detector.labels == ["cat", "dog", "car"]
    assert detector.canvas == (96, 64) and not detector.batchable
    found = detector.detect(Image.new("RGB", (192, 128)))  # twice the canvas: boxes double
    assert [(d.label, round(d.score, 3)) for d in found] == [("cat", 0.9), ("car", 0.7)]
    np.testing.assert_allclose(found[0].box, [76, 54, 116, 74], atol=1e-3)
    wide = detector.detect(Image.new("RGB", (192, 64)))  # letterboxed: 96x32 with 16 px bands
    np.testing.assert_allclose(wide[0].box, [76, 22, 116, 42], atol=1e-3)
    assert len(detector.detect_many([(Image.new("RGB", (96, 64)), None)] * 3)) == 3


def test_yolov5_layout_nhwc_with_a_names_file(tmp_path: Path) -> None:
    rows = np.array([[[30, 30, 10, 10, 0.5, 0.2, 0.9]]], dtype=np.float32)  # [1, 1, 5+2]
    model = constant_model(tmp_path / "v5.onnx", rows, ["batch", 64, 64, 3], names=None)
    (tmp_path / "v5.names").write_text("bird\nplane\n")
    detector = Detector(model, min_score=0.4)
    assert (
        not detector.channels_first and detector.batchable and detector.labels == ["bird", "plane"]
    )
    (found,) = detector.detect(Image.new("RGB", (64, 64)))
    assert found.label == "plane" and found.score == pytest.approx(0.45)
    np.testing.assert_allclose(found.box, [25, 25, 35, 35])


def test_start_up_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"does not exist; build the default models with: "
        r"\.venv/bin/python models/build\.py all",
    ):
        Detector(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        Detector(tmp_path / "junk.onnx")
    odd = constant_model(
        tmp_path / "odd.onnx",
        np.zeros((1, 300, 6), np.float32),
        [1, 3, 32, 32],
        names="['a', 'b', 'c']",
    )
    with pytest.raises(ConfigError, match="neither"):
        Detector(odd)
    nameless = constant_model(tmp_path / "nameless.onnx", v8_output(), [1, 3, 64, 96], names=None)
    with pytest.raises(ConfigError, match="no label names"):
        Detector(nameless)
