"""The engines: every engine x precision this machine runs labels the test photos as onnxruntime
f32 does, within the tolerances below; the refusals name their settings; inference lets other
threads run.

Tolerances, per model on the darknet photos of tests/data, for every reference detection of
score 0.5 or more (a clear object): a detection of the same label overlapping it by IoU >= `iou`
with a score within `score` of it; and no detection of 0.5 or more that the reference lacks (the
same label at IoU >= 0.5, scored 0.3 or more). Measured worst cases: OpenVINO f32 0.000 and IoU
1.00; bf16 0.025 and 0.98; int8 (either engine) 0.091 and 0.86.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from PIL import Image

from hook.config.detectors import detector_from
from hook.config.settings import Settings
from hook.detect import engines, ensemble, registry
from hook.detect.detection import Detection
from hook.detect.detector import Detector
from hook.errors import ConfigError
from tests.factories import DATA, make_settings

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = ("yolov3-tiny", "nanodet-g")
PHOTOS = sorted(DATA.glob("*.jpg"))
CLEAR, ALSO = 0.5, 0.3
# score, IoU; int8's widest on these photos is 0.16 (horses.jpg's cow by YOLOv3-tiny)
TOLERANCES = {"f32": (0.01, 0.99), "bf16": (0.06, 0.95), "int8": (0.2, 0.8)}
CONFIGS = [("onnxruntime", "int8"), ("openvino", "f32"), ("openvino", "bf16"), ("openvino", "int8")]


def bf16_capable() -> bool:
    import openvino  # type: ignore[import-untyped]  # noqa: PLC0415 - for the tests using it

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def needs(engine: str, precision: str, name: str) -> None:
    """Skip only for what this machine truly lacks: a BF16 CPU, or int8 builds not made."""
    if precision == "bf16" and not bf16_capable():
        pytest.skip("this CPU has no BF16 arithmetic (AVX-512 BF16 or AMX)")
    if precision == "int8" and not engines.int8_path(MODELS / f"{name}.onnx").is_file():
        pytest.skip("int8 builds not made: .venv/bin/python models/build.py int8")


def iou(a: Detection, b: Detection) -> float:
    x1, y1 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x2, y2 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) + (b.box[2] - b.box[0]) * (
        b.box[3] - b.box[1]
    )
    return inter / (area - inter)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in PHOTOS]


@pytest.fixture(scope="module")
def reference(images: list[Image.Image]) -> dict[str, list[list[Detection]]]:
    found = {}
    for name in NAMES:
        detector = Detector(MODELS / f"{name}.onnx", min_score=0.2)
        found[name] = [detector.detect(image) for image in images]
    return found


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("engine", "precision"), CONFIGS)
def test_each_engine_labels_as_onnxruntime_f32(
    engine: str,
    precision: str,
    name: str,
    images: list[Image.Image],
    reference: dict[str, list[list[Detection]]],
) -> None:
    needs(engine, precision, name)
    detector = Detector(MODELS / f"{name}.onnx", min_score=0.2, engine=engine, precision=precision)
    assert detector.engine.description == f"{engine} CPU {precision}"
    score_tolerance, min_iou = TOLERANCES[precision]
    clear = 0
    for photo, image, expected in zip(PHOTOS, images, reference[name], strict=True):
        got = detector.detect(image)
        for want in (d for d in expected if d.score >= CLEAR):
            clear += 1
            same = [d for d in got if d.label == want.label and iou(d, want) >= min_iou]
            assert same, f"{photo.name}: {want} not found by {engine} {precision}"
            closest = min(abs(d.score - want.score) for d in same)
            assert closest <= score_tolerance, f"{photo.name}: {want.label} score off by {closest}"
        for new in (d for d in got if d.score >= CLEAR):
            assert any(
                d.label == new.label and iou(d, new) >= 0.5 and d.score >= ALSO for d in expected
            ), f"{photo.name}: {engine} {precision} alone finds {new}"
    assert clear >= 10  # the comparison covers real objects


def test_the_fused_detector_takes_engine_and_precision_from_the_settings() -> None:
    needs("openvino", "int8", "nanodet-g")
    env = {"HOOK_ENGINE": "openvino", "HOOK_PRECISION": "int8", "HOOK_THREADS": "1"}
    settings = Settings.from_env(env, require_api_key=False)
    assert (settings.engine, settings.precision, settings.threads) == ("openvino", "int8", 1)
    detector = detector_from(settings)
    fused = ensemble.members_of(detector)  # the tiles' model is the first of them
    assert [m.engine.description for m in fused] == ["openvino CPU int8"] * 2
    assert [m.model.name for m in fused] == ["yolov3-tiny.onnx", "nanodet-g.onnx"]
    dog = detector.detect(Image.open(DATA / "dog.jpg").convert("RGB"))
    assert {"dog", "bicycle"} <= {d.label for d in dog if d.score >= CLEAR}


def test_settings_refuse_unknown_engines_and_precisions() -> None:
    for env, name in (
        ({"HOOK_ENGINE": "tensorrt"}, "HOOK_ENGINE"),
        ({"HOOK_PRECISION": "fp16"}, "HOOK_PRECISION"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(env, require_api_key=False)
    defaults = Settings.from_env({}, require_api_key=False)
    assert (defaults.engine, defaults.precision) == ("onnxruntime", "f32")


def test_auto_precision_is_int8_where_every_build_is_made(tmp_path: Path) -> None:
    models = [MODELS / "yolov3-tiny.onnx", MODELS / "nanodet-g.onnx"]
    assert all(engines.int8_path(m).is_file() for m in models)  # the set-up makes them
    assert engines.chosen_precision("auto", models) == "int8"
    assert engines.chosen_precision("auto", models, "cuda") == "f32"  # a GPU runs float
    assert engines.chosen_precision("f32", models) == "f32"  # as given, always
    for suffix in (".onnx", ".names"):  # a copy without its int8 build beside it
        shutil.copyfile(MODELS / f"yolov3-tiny{suffix}", tmp_path / f"yolov3-tiny{suffix}")
    lone = tmp_path / "yolov3-tiny.onnx"
    assert engines.chosen_precision("auto", [models[1], lone]) == "f32"
    assert Detector(lone, precision="auto").engine.description.endswith("f32")
    assert Detector(models[0], precision="auto").engine.description.endswith("int8")


def test_auto_precision_keeps_f32_when_the_int8_build_is_of_another_model(
    tmp_path: Path,
) -> None:
    for suffix in (".onnx", ".names", ".int8.onnx", ".int8.onnx.sha256"):
        shutil.copyfile(MODELS / f"yolov3-tiny{suffix}", tmp_path / f"yolov3-tiny{suffix}")
    model = tmp_path / "yolov3-tiny.onnx"
    assert engines.made_from(model) and engines.chosen_precision("auto", [model]) == "int8"
    stamp = tmp_path / "yolov3-tiny.int8.onnx.sha256"
    stamp.write_text(stamp.read_text().replace("source ", "source 0", 1))  # of another file
    assert not engines.made_from(model)
    assert engines.chosen_precision("auto", [model]) == "f32"
    assert engines.chosen_precision("int8", [model]) == "int8"  # asked for: as given


def test_bf16_with_onnxruntime_says_to_use_openvino() -> None:
    with pytest.raises(ConfigError, match=r"HOOK_PRECISION=bf16.*HOOK_ENGINE=openvino"):
        Detector(MODELS / "yolov3-tiny.onnx", precision="bf16")


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_int8_without_its_build_names_the_build_command(engine: str, tmp_path: Path) -> None:
    for suffix in (".onnx", ".names"):
        shutil.copyfile(MODELS / f"yolov3-tiny{suffix}", tmp_path / f"yolov3-tiny{suffix}")
    model = tmp_path / "yolov3-tiny.onnx"
    with pytest.raises(
        ConfigError,
        match=r"HOOK_PRECISION=int8 needs .*yolov3-tiny\.int8\.onnx"
        r".*models/build\.py int8",
    ) as raised:
        Detector(model, engine=engine, precision="int8")
    assert "HOOK_PRECISION=f32" in str(raised.value)
    Detector(model, engine=engine)  # f32 is the model itself, there


def test_openvino_with_cuda_names_both_settings() -> None:
    with pytest.raises(ConfigError, match=r"HOOK_DEVICE=cuda.*HOOK_ENGINE=openvino"):
        Detector(MODELS / "yolov3-tiny.onnx", engine="openvino", device="cuda")


def test_openvino_reads_the_model_as_onnxruntime_does() -> None:
    """Inputs, outputs and metadata alike, so the Detector reads the same model from both."""
    model = MODELS / "nanodet-g.onnx"
    ours, theirs = engines.load(model, engine="openvino"), engines.load(model)
    assert ours.metadata == theirs.metadata and "names" in ours.metadata
    assert ours.outputs == theirs.outputs
    assert [(p.name, p.type, p.shape[1:]) for p in ours.inputs] == [
        (p.name, p.type, p.shape[1:]) for p in theirs.inputs
    ]
    assert not isinstance(ours.inputs[0].shape[0], int)  # dynamic batch, as onnxruntime says


def two_outputs(path: Path) -> Path:
    """A real ONNX graph with outputs "plus" (x + 1) then "minus" (-x)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("plus", "minus")]
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("Add", ["x", "one"], ["plus"]),
        helper.make_node("Neg", ["x"], ["minus"]),
    ]
    graph = helper.make_graph(nodes, "two", [x], outs, initializer=[one])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_outputs_come_back_by_name_in_the_order_asked(engine: str, tmp_path: Path) -> None:
    loaded = engines.load(two_outputs(tmp_path / "two.onnx"), engine=engine)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    plus, minus = x + 1, -x
    assert loaded.outputs == ("plus", "minus")
    for asked, expected in (
        (None, [plus, minus]),
        (["minus", "plus"], [minus, plus]),
        (["minus"], [minus]),
    ):
        got = loaded.run(asked, {"x": x})
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)
    with pytest.raises(Exception, match="absent"):  # each engine has its own error type
        loaded.run(["absent"], {"x": x})


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_outputs_are_the_callers_own_memory(engine: str) -> None:
    """onnxruntime's outputs were views on its arena: a large event's outputs, all held until
    its images were labeled, grew the arena by each (860 KB a canvas here) for good. Asked to
    release, the run answers the same."""
    loaded = engines.load(MODELS / "yolov3-tiny.onnx", engine=engine, threads=1)
    batch = np.random.default_rng(1).random((2, 3, 416, 416), dtype=np.float32)
    kept = loaded.run(None, {"images": batch})
    for out in kept:
        assert out.flags.owndata, f"{engine}: an output is a view on memory the engine owns"
    for again, first in zip(loaded.run(None, {"images": batch}, release=True), kept, strict=True):
        np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_inference_lets_other_threads_run(engine: str) -> None:
    """Another Python thread runs all along one inference: the engine released the GIL."""
    loaded = engines.load(MODELS / "yolov3-tiny.onnx", engine=engine, threads=1)
    batch = np.random.default_rng(0).random((8, 3, 416, 416), dtype=np.float32)
    took: list[float] = []
    done = threading.Event()

    def infer() -> None:
        started = time.perf_counter()
        loaded.run(None, {"images": batch})
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=infer)
    worker.start()
    last = time.perf_counter()
    longest = 0.0
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert took[0] > 0.2  # long enough to tell: a held GIL would stall this loop all along
    assert longest < took[0] / 2


def test_lanes_in_threads_each_with_its_own_openvino_detector(images: list[Image.Image]) -> None:
    """Two detectors labeling in two threads at once find what each finds alone."""
    lanes = [Detector(MODELS / "yolov3-tiny.onnx", engine="openvino", threads=1) for _ in "ab"]
    alone = [lanes[0].detect(image) for image in images]
    found: dict[int, list[list[Detection]]] = {}

    def label(i: int) -> None:
        found[i] = [lanes[i].detect(image) for image in images for _ in range(2)][::2]

    threads = [threading.Thread(target=label, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found[0] == alone and found[1] == alone


def test_auto_device_is_cuda_only_where_onnxruntime_has_its_provider() -> None:
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert engines.chosen_device("auto", "onnxruntime") == ("cuda" if has_cuda else "cpu")
    assert engines.chosen_device("cpu", "onnxruntime") == "cpu"
    assert engines.chosen_device("auto", "openvino") == "auto"  # OpenVINO picks its own


def test_the_registry_is_the_one_list_of_engines() -> None:
    """Settings, their check and the dispatch all come from hook.detect.registry."""
    assert set(engines.KINDS) == set(registry.ENGINES)
    for name in registry.ENGINES:
        assert make_settings(HOOK_ENGINE=name).engine == name
    with pytest.raises(ConfigError, match="HOOK_ENGINE"):
        make_settings(HOOK_ENGINE="tensorrt")
    with pytest.raises(ConfigError, match="set HOOK_ENGINE=openvino with it"):
        engines.load(MODELS / "yolov3-tiny.onnx", engine="onnxruntime", precision="bf16")
