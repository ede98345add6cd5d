"""The int8 builds: which convolutions stay float, what the builds are calibrated on, and that
the shipped builds are the shipped variant of the models beside them."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hook.detect import pixels
from hook.detect.model_files import int8_path, read_stamp, stamp_path
from models import build, int8
from models.quantize import VARIANTS, Variant, excluded, first_convs, head_convs, quantize

MODELS = Path(__file__).resolve().parents[2] / "models"


def tiny_detector(path: Path) -> Path:
    """A normalisation Conv, a 3x3 Conv, LeakyRelu, two 1x1 heads and a decode tail."""
    rng = np.random.default_rng(0)

    def weights(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["images", "w_norm"], ["norm"], name="normalise"),
        helper.make_node("Conv", ["norm", "w_first"], ["first"], name="first", pads=[1] * 4),
        helper.make_node("LeakyRelu", ["first"], ["act"], name="act", alpha=0.1),
        helper.make_node("Conv", ["act", "w_body"], ["body"], name="body", pads=[1] * 4),
        helper.make_node("LeakyRelu", ["body"], ["act2"], name="act2", alpha=0.1),
        helper.make_node("Conv", ["act2", "w_head_a"], ["head_a"], name="head_a"),
        helper.make_node("Conv", ["act2", "w_head_b"], ["head_b"], name="head_b"),
        helper.make_node("Concat", ["head_a", "head_b"], ["heads"], name="concat", axis=1),
        helper.make_node("Sigmoid", ["heads"], ["output0"], name="decode"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 16, 16])],
        [
            weights("w_norm", 3, 3, 1, 1),
            weights("w_first", 8, 3, 3, 3),
            weights("w_body", 8, 8, 3, 3),
            weights("w_head_a", 3, 8, 1, 1),
            weights("w_head_b", 3, 8, 1, 1),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def float_convs(model: Path) -> set[str]:
    """The Convs of a QDQ model whose weights are a float initializer, not DequantizeLinear's."""
    graph = onnx.load(str(model)).graph
    initializers = {i.name for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    floats = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight, data = node.input[1], producer.get(node.input[0])
        if weight in initializers and (data is None or data.op_type != "DequantizeLinear"):
            floats.add(node.name)
    return floats


def test_the_first_convolution_and_the_heads_are_found(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "tiny.onnx")
    assert first_convs(model) == ["normalise", "first"]
    assert head_convs(model) == ["head_a", "head_b"]


@pytest.mark.parametrize(
    ("name", "first", "heads"),
    [
        ("yolov3-tiny", ["conv_3"], ["conv_45", "conv_86"]),
        ("nanodet-g", ["normalise_3", "conv_5"], ["conv_144", "conv_158", "conv_171"]),
    ],
)
def test_the_default_models_first_convolutions_and_heads(
    name: str, first: list[str], heads: list[str]
) -> None:
    model = MODELS / f"{name}.onnx"
    if not model.is_file():
        pytest.skip("models not built: .venv/bin/python models/build.py")
    assert first_convs(model) == first
    assert head_convs(model) == heads  # the 1x1 convolutions the decode reads


def test_convolutions_kept_float_stay_float_in_the_build(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "tiny.onnx")
    batch = np.random.default_rng(1).random((4, 3, 16, 16), dtype=np.float32)
    kept = Variant("conv", VARIANTS["conv-minmax"].method, keep_float=("first", "heads"))
    assert excluded(model, kept) == ["normalise", "first", "head_a", "head_b"]
    every = quantize(model, tmp_path / "every.onnx", VARIANTS["conv-minmax"], batch, "images")
    some = quantize(model, tmp_path / "some.onnx", kept, batch, "images")
    assert float_convs(every) == set()
    assert float_convs(some) == {"normalise", "first", "head_a", "head_b"}


def test_the_shipped_builds_are_the_shipped_variant_with_7_bit_weights() -> None:
    assert VARIANTS[int8.SHIPPED].reduce_range  # no u8*s8 saturation on AVX2 without VNNI
    assert set(VARIANTS["conv-rr-keep"].keep_float) == {"first", "heads"}
    for model in int8.MODELS:
        built = int8_path(model)
        if not built.is_file():
            pytest.skip("int8 builds not made: .venv/bin/python models/build.py int8")
        stamp = read_stamp(model)
        assert stamp is not None and stamp[1]["variant"] == int8.SHIPPED
        assert float_convs(built) == set(excluded(model, VARIANTS[int8.SHIPPED]))


def photo_sets(root: Path, sets: dict[str, list[str]]) -> None:
    """bench/NAME/*.toml manifests and tests/data/NAME photos for each set."""
    for name, photos in sets.items():
        (root / "bench" / name).mkdir(parents=True)
        (root / "data" / name).mkdir(parents=True)
        for photo in photos:
            (root / "bench" / name / f"{photo}.toml").write_text('title = "x"\n')
            (root / "data" / name / f"{photo}.jpg").write_bytes(photo.encode())


def test_calibration_takes_the_camera_frames_when_the_checkout_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int8, "BENCH", tmp_path / "bench")
    monkeypatch.setattr(int8, "DATA", tmp_path / "data")
    photo_sets(tmp_path, {"photos": ["b", "a"], "holdout": ["h"]})
    assert int8.calibration_photos() == [tmp_path / "data" / "photos" / f"{n}.jpg" for n in "ab"]
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model")
    without = int8.recipe(model, int8.calibration_photos())
    photo_sets(tmp_path, {"cameras": ["c"]})
    found = int8.calibration_photos()
    assert found is not None and [p.relative_to(tmp_path / "data").as_posix() for p in found] == [
        "photos/a.jpg",
        "photos/b.jpg",
        "cameras/c.jpg",
    ]  # never the holdout
    assert int8.described(found) == "2 photos of tests/data/photos and 1 of tests/data/cameras"
    assert int8.recipe(model, found)["calibration"] != without["calibration"]
    (tmp_path / "data" / "cameras" / "c.jpg").unlink()  # manifests without their photos
    assert int8.calibration_photos() is None


def test_the_int8_target_builds_beside_the_models_of_the_folder_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """models/build.py int8 --out DIR: each int8 build, its stamp and its temporary files beside
    DIR's f32 model, not in models/ (the quantizer stubbed: the real one takes a minute)."""
    monkeypatch.setattr(int8, "BENCH", tmp_path / "bench")
    monkeypatch.setattr(int8, "DATA", tmp_path / "data")
    photo_sets(tmp_path, {"photos": ["a", "b"]})
    out = tmp_path / "models"
    out.mkdir()
    for model in int8.MODELS:
        (out / model.name).write_bytes(model.name.encode())

    def quantized(model: Path, target: Path, photos: Sequence[Path], name: str) -> Path:
        assert target.parent.parent == out and target.parent.name.startswith(".int8-")
        assert name == int8.SHIPPED and len(photos) == 2
        target.write_bytes(b"int8 " + model.read_bytes())
        return target

    monkeypatch.setattr("models.quantize.quantized", quantized)
    assert build.main(["int8", "--out", str(out)]) == 0
    photos = int8.calibration_photos()
    assert photos is not None
    names = []
    for model in (out / m.name for m in int8.MODELS):
        assert int8.intact(model, photos)
        assert int8_path(model).read_bytes() == b"int8 " + model.name.encode()
        names += [model.name, int8_path(model).name, f"{int8_path(model).name}.sha256"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary file left
    assert build.main(["int8", "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("already built and intact; nothing to do") == 2


def test_a_build_calibrated_on_canvases_resized_otherwise_is_not_intact(tmp_path: Path) -> None:
    """Builds stamped before the letterbox moved to OpenCV (no `resize` line) are made again."""
    photos = int8.calibration_photos()
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model")
    int8_path(model).write_bytes(b"int8 build")
    made = int8.recipe(model, photos)
    assert made["resize"] == pixels.RESIZE
    lines = [f"{sha256(b'int8 build').hexdigest()}  {int8_path(model).name}"]
    stamp = [*lines, *(f"{k} {v}" for k, v in made.items())]
    stamp_path(model).write_text("\n".join(stamp) + "\n")
    assert int8.intact(model, photos)
    stamp_path(model).write_text("\n".join(s for s in stamp if not s.startswith("resize")) + "\n")
    assert not int8.intact(model, photos)
