"""Detector benchmark: where an image's time goes, and what makes CPU inference faster.

Per image (the test photos): milliseconds to decode (base64 + JPEG, with draft), preprocess
(letterbox + tensor), infer (session.run) and postprocess (decode + NMS + unletterbox), and the
images/s that makes; raw `session.run` on the same tensor in the same run is the ceiling.
Then variants: thread counts, graph optimisation, a batch of 3 (one event), two 1-thread
processes side by side, and int8 quantization (accuracy checked on the photos).

    .venv/bin/python bench/detector.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from hook.config.table import DEFAULT_MODEL
from hook.detect import yolo
from hook.detect.detector import Detector
from hook.detect.engines import Engine
from hook.intake.images import decode_image

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "tests" / "data").glob("*.jpg"))
MAX_PIXELS = 40_000_000


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call of fn over about `seconds` (after one warm-up call)."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def session(model: Path | bytes, threads: int = 0, level: str = "all") -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def phases(detector: Detector, seconds: float) -> list[tuple[str, float, float, float, float]]:
    rows = []
    for path in PHOTOS:
        text = base64.b64encode(path.read_bytes())

        def decode(text: bytes = text) -> tuple:
            return decode_image(base64.b64decode(text), max_pixels=MAX_PIXELS, fit=detector.canvas)

        image, size = decode()
        canvas, box = detector.to_canvas(image, size)
        tensor = yolo.to_tensor([canvas], channels_first=True, dtype=detector.dtype)
        (output,) = detector.infer(tensor)  # this photo's outputs, as postprocess takes them

        def prepare(image=image, size=size) -> object:
            canvas, _ = detector.to_canvas(image, size)
            return yolo.to_tensor([canvas], channels_first=True, dtype=detector.dtype)

        rows.append(
            (
                path.name,
                per_call(decode, seconds / 4),
                per_call(prepare, seconds / 4),
                per_call(partial(detector.engine.run, None, {"images": tensor}), seconds),
                per_call(partial(detector.postprocess, output, box), seconds / 4),
            )
        )
    return rows


def tensors(detector: Detector, count: int) -> np.ndarray:
    canvases = []
    for path in (PHOTOS * count)[:count]:
        image, size = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas)
        canvases.append(detector.to_canvas(image, size)[0])
    return yolo.to_tensor(canvases, channels_first=True, dtype=detector.dtype)


def _loop(
    model: str, threads: int, tensor: np.ndarray, seconds: float, out: multiprocessing.Queue
) -> None:
    s = session(Path(model), threads)
    s.run(None, {"images": tensor})
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        s.run(None, {"images": tensor})
        n += 1
    out.put(n / (time.perf_counter() - started))


def parallel(
    model: Path, processes: int, threads: int, tensor: np.ndarray, seconds: float
) -> float:
    """Images/s of `processes` independent sessions side by side."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_loop, args=(str(model), threads, tensor, seconds, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total


class Photos:
    """Calibration data for static quantization: the letterboxed test photos."""

    def __init__(self, batch: np.ndarray) -> None:
        self.items = iter([{"images": batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self) -> dict | None:
        return next(self.items, None)


def labels_of(
    detector: Detector, sess: ort.InferenceSession | Engine
) -> list[list[tuple[str, tuple]]]:
    """Per photo, the (label, box centre) list a session's output gives."""
    found = []
    for path in PHOTOS:
        image, size = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas)
        canvas, box = detector.to_canvas(image, size)
        tensor = yolo.to_tensor([canvas], channels_first=True, dtype=detector.dtype)
        outputs = sess.run(list(detector.output_names), detector.feeds(tensor))
        dets = detector.postprocess(yolo.per_image(outputs)[0], box)
        found.append(
            [
                (d.label, ((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2))
                for d in dets
                if d.score >= 0.5
            ]
        )
    return found


def agreement(reference: list, other: list) -> str:
    """Confident float-model detections the other reproduces (same label, centre within 15 px)."""
    hits = total = 0
    for ref, got in zip(reference, other, strict=True):
        for label, (cx, cy) in ref:
            total += 1
            hits += any(
                lab == label and abs(x - cx) < 15 and abs(y - cy) < 15 for lab, (x, y) in got
            )
    return f"{hits}/{total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    args = parser.parse_args()
    sec = args.seconds
    started = time.perf_counter()
    detector = Detector(DEFAULT_MODEL)
    print(
        f"detector: {DEFAULT_MODEL.name}, onnxruntime {ort.__version__}, "
        f"load + warm-up {detector.load_seconds:.2f} s; {len(PHOTOS)} photos\n"
    )
    rows = phases(detector, sec)
    heads = ("decode", "prep", "infer", "post", "total")
    print(f"{'photo':<12} " + " ".join(f"{h:>7}" for h in heads) + f" {'img/s':>6}")
    for name, *ms in rows:
        print(
            f"{name:<12} "
            + " ".join(f"{v * 1000:>7.1f}" for v in ms)
            + f" {sum(ms) * 1000:>7.1f} {1 / sum(ms):>6.1f}"
        )
    mean = [statistics.mean(col) for col in zip(*[r[1:] for r in rows], strict=True)]
    pipeline = 1 / sum(mean)
    one = tensors(detector, 1)
    raw = 1 / per_call(lambda: detector.engine.run(None, {"images": one}), sec)
    print(
        f"{'mean':<12} "
        + " ".join(f"{v * 1000:>7.1f}" for v in mean)
        + f" {sum(mean) * 1000:>7.1f} {pipeline:>6.1f}"
    )
    print(
        f"\nraw session.run (default threads), same tensor: {raw:.1f} img/s; "
        f"whole pipeline in one thread = {pipeline / raw:.2f} of it\n"
    )

    print("variants, images/s of inference alone (ratio to the default session):")
    variants: list[tuple[str, float]] = []
    for threads in (1, 2):
        s = session(DEFAULT_MODEL, threads)
        variants.append(
            (
                f"1 session, {threads} thread(s)",
                1 / per_call(partial(s.run, None, {"images": one}), sec),
            )
        )
    for level in ("basic", "extended"):
        s = session(DEFAULT_MODEL, 0, level)
        variants.append(
            (
                f"graph optimisation {level}",
                1 / per_call(partial(s.run, None, {"images": one}), sec),
            )
        )
    three = tensors(detector, 3)
    variants.append(
        (
            "batch of 3 (one event), default threads",
            3 / per_call(lambda: detector.engine.run(None, {"images": three}), sec),
        )
    )
    variants.append(("2 processes x 1 thread", parallel(DEFAULT_MODEL, 2, 1, one, sec)))
    variants.append(("2 processes x 2 threads", parallel(DEFAULT_MODEL, 2, 2, one, sec)))

    reference = labels_of(detector, detector.engine)
    calibration = tensors(detector, len(PHOTOS))
    calibration = np.concatenate([calibration, calibration[:, :, :, ::-1]])  # and mirrored
    with tempfile.TemporaryDirectory() as tmp:
        dynamic, static = Path(tmp) / "dynamic.onnx", Path(tmp) / "static.onnx"
        quantize_dynamic(str(DEFAULT_MODEL), str(dynamic), weight_type=QuantType.QUInt8)
        # Only the convolutions: quantizing the in-graph YOLO decode (sigmoid, exp) ruins it.
        quantize_static(
            str(DEFAULT_MODEL),
            str(static),
            Photos(calibration),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            calibrate_method=CalibrationMethod.Percentile,
        )
        for name, path in (
            ("int8 dynamic (quantize_dynamic)", dynamic),
            ("int8 static, convs only, per channel", static),
        ):
            s = session(path)
            rate = 1 / per_call(partial(s.run, None, {"images": one}), sec)
            variants.append(
                (f"{name}, accuracy {agreement(reference, labels_of(detector, s))}", rate)
            )
    for name, rate in variants:
        print(f"  {name:<58} {rate:>6.1f} img/s  {rate / raw:>5.2f}")
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
