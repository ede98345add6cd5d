"""Static int8 quantization of a detector, calibrated on photos letterboxed as hook feeds them.

onnxruntime's quantize_static (uint8 activations, int8 per-channel weights, QDQ format, which
onnxruntime and OpenVINO both run as int8). Variants say which operators, which calibration and
which arithmetic; "conv-rr" (the convolutions only, Percentile calibration on the photos and
their mirror images, 7-bit weights by `reduce_range`, the decode tail left float) is the one
models/build.py int8 ships (models/int8.py).

Why reduce_range (measured 2026-12-04 with bench/precision.py, onnxruntime 1.32, an AMD EPYC with
AVX2 and no AVX-512 VNNI, 2 cores; calibrated on bench/photos and bench/cameras; score 0.35;
recall (found/wanted), false labels, photos of nothing labeled; photos 29 things / 21 empty,
holdout 21 / 12, cameras 53 / 16):

    variant           ms 1 thread / 2 threads (int8/f32)    photos        holdout      cameras
    yolov3-tiny f32   88.5 / 50.6                           22/29 2 1     8/21 2 2     29/53 2 0
      conv-percentile 0.71 / 0.72                           16/29 4 3     8/21 2 1     24/53 2 0
      conv-rr         0.71 / 0.73                           22/29 2 1     7/21 3 3     28/53 2 0
      conv-rr-keep    0.76 / 0.81                           21/29 2 1     8/21 4 3     29/53 3 0
      conv-u8u8       0.90 / 0.95                           22/29 2 1     8/21 2 2     30/53 2 0
    nanodet-g f32     71.9 / 42.9                           27/29 17 10   14/21 26 8   34/53 22 4
      conv-percentile 0.76 / 0.77                           26/29 18 10   12/21 25 7   31/53 24 6
      conv-rr         0.76 / 0.77                           27/29 19 11   14/21 21 7   31/53 25 6
      conv-rr-keep    0.83 / 0.86                           26/29 19 11   14/21 23 7   32/53 28 6
      conv-u8u8       0.95 / 1.02                           27/29 16 11   13/21 30 8   34/53 24 4
    fused f32 (1, 1.5)                                      26/29 6 2     10/21 4 4    30/53 1 0
      conv-percentile                                       22/29 3 1     9/21 4 2     27/53 0 0
      conv-rr                                               25/29 6 2     9/21 4 3     29/53 2 0
      conv-rr-keep                                          25/29 8 4     10/21 3 3    30/53 1 0

(conv-percentile and conv-u8u8 rows calibrated on bench/photos alone.) On a CPU without VNNI,
onnxruntime multiplies uint8 activations by int8 weights with VPMADDUBSW, whose 16-bit sums
saturate: 8-bit weights (conv-percentile, shipped before) cost yolov3-tiny a quarter of its
recall, 7-bit weights (conv-rr) or unsigned weights (conv-u8u8) do not. conv-u8u8 runs nearly at
f32's speed; keeping the first convolution and the heads float (conv-rr-keep) costs 5-9% of the
time for no clear gain. Against f32, per photo: conv-rr gives 3 label differences for
yolov3-tiny over the three sets (every f32 box of 0.35 found again, scores 0.04 apart on
average), conv-percentile 29; nanodet-g, whose many low-score labels sit near 0.35, gives 24-34
with reduce_range or unsigned weights, 46 with conv-percentile. The camera-like frames are where
int8 nanodet-g is furthest from f32 (31 of 53 against 34) under every fast variant.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from hook.detect import yolo
from hook.detect.detector import Detector
from hook.intake.images import decode_image

MAX_PIXELS = 40_000_000  # the photo sets' largest, decoded whole before letterboxing


@dataclass(frozen=True)
class Variant:
    """One way of quantizing: which operators, which calibration, which arithmetic."""

    ops: str  # "conv", "notail" (all but the decode tail) or "all"
    method: CalibrationMethod
    mirror: bool = False  # calibrate on the photos' mirror images too
    percentile: float | None = None  # Percentile's CalibPercentile (onnxruntime: 99.999)
    keep_float: tuple[str, ...] = ()  # convolutions left float: "first" and/or "heads"
    per_channel: bool = True  # weights: one scale per output channel
    reduce_range: bool = False  # 7-bit weights: no u8*s8 saturation on AVX2 without VNNI
    weights: QuantType = QuantType.QInt8
    activations: QuantType = QuantType.QUInt8
    symmetric: bool = False  # ActivationSymmetric
    qoperator: bool = False  # QLinearConv in the file, not QDQ pairs around a float Conv


VARIANTS = {
    "conv-rr": Variant("conv", CalibrationMethod.Percentile, mirror=True, reduce_range=True),
    "conv-rr-keep": Variant(
        "conv",
        CalibrationMethod.Percentile,
        mirror=True,
        reduce_range=True,
        keep_float=("first", "heads"),
    ),
    "conv-minmax-rr": Variant("conv", CalibrationMethod.MinMax, mirror=True, reduce_range=True),
    "conv-u8u8": Variant(
        "conv", CalibrationMethod.Percentile, mirror=True, weights=QuantType.QUInt8
    ),
    "conv-percentile": Variant("conv", CalibrationMethod.Percentile, mirror=True),
    "conv-minmax": Variant("conv", CalibrationMethod.MinMax),
    "notail-minmax": Variant("notail", CalibrationMethod.MinMax),
    "all-minmax": Variant("all", CalibrationMethod.MinMax),
}


class Tensors(CalibrationDataReader):
    """Calibration batches of one image each."""

    def __init__(self, batch: np.ndarray, input_name: str) -> None:
        self.items = iter([{input_name: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def calibration(photos: Sequence[Path], detector: Detector, mirror: bool) -> np.ndarray:
    """The photos as the detector is fed them: decoded, letterboxed, to its input tensor."""
    canvases = []
    for photo in photos:
        image, size = decode_image(photo.read_bytes(), max_pixels=MAX_PIXELS, fit=detector.canvas)
        canvases.append(detector.to_canvas(image, size)[0])
    batch = yolo.to_tensor(canvases, channels_first=detector.channels_first, dtype=detector.dtype)
    if not mirror:
        return batch
    width_axis = 3 if detector.channels_first else 2
    return np.concatenate([batch, np.flip(batch, axis=width_axis)])


def decode_tail(model: Path) -> list[str]:
    """Names of the nodes no Conv depends on: the in-graph decode after the last convolutions."""
    graph = onnx.load(str(model)).graph
    producer = {out: node for node in graph.node for out in node.output}
    upstream: set[str] = set()
    stack = [node for node in graph.node if node.op_type == "Conv"]
    while stack:
        for name in stack.pop().input:
            node = producer.get(name)
            if node is not None and node.name not in upstream:
                upstream.add(node.name)
                stack.append(node)
    return [n.name for n in graph.node if n.op_type != "Conv" and n.name not in upstream]


def head_convs(model: Path) -> list[str]:
    """The convolutions no other Conv depends on: the 1x1s whose outputs the decode reads."""
    graph = onnx.load(str(model)).graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    heads = []
    for conv in (n for n in graph.node if n.op_type == "Conv"):
        stack, seen, feeds_conv = list(conv.output), set(), False
        while stack and not feeds_conv:
            for node in consumers.get(stack.pop(), []):
                feeds_conv = node.op_type == "Conv"
                if feeds_conv:
                    break
                if node.name not in seen:
                    seen.add(node.name)
                    stack.extend(node.output)
        if not feeds_conv:
            heads.append(conv.name)
    return heads


def first_convs(model: Path) -> list[str]:
    """The first convolution on the image, with any Conv straight before it (a baked
    normalisation, as nanodet-g's): the layer whose 3 input channels int8 hurts most."""
    graph = onnx.load(str(model)).graph
    producer = {out: node for node in graph.node for out in node.output}
    first = next(n for n in graph.node if n.op_type == "Conv")
    chain = [first.name]
    for node in graph.node:  # a Conv fed straight by the one before it
        if node.op_type == "Conv" and producer.get(node.input[0]) is first:
            chain.append(node.name)
            first = node
    return chain


def excluded(model: Path, variant: Variant) -> list[str]:
    """The nodes `variant` leaves float in `model`."""
    names = decode_tail(model) if variant.ops == "notail" else []
    if "first" in variant.keep_float:
        names += first_convs(model)
    if "heads" in variant.keep_float:
        names += head_convs(model)
    return names


def quantize(model: Path, out: Path, variant: Variant, batch: np.ndarray, input_name: str) -> Path:
    """An int8 copy of `model` at `out`, calibrated on `batch` (a tensor of the model's input)."""
    options: dict[str, Any] = {"nodes_to_exclude": excluded(model, variant)}
    if variant.ops == "conv":
        options["op_types_to_quantize"] = ["Conv"]
    extra: dict[str, Any] = {}
    if variant.percentile is not None:
        extra["CalibPercentile"] = variant.percentile
    if variant.symmetric:
        extra["ActivationSymmetric"] = True
    with quiet():
        quantize_static(
            str(model),
            str(out),
            Tensors(batch, input_name),
            quant_format=QuantFormat.QOperator if variant.qoperator else QuantFormat.QDQ,
            activation_type=variant.activations,
            weight_type=variant.weights,
            per_channel=variant.per_channel,
            reduce_range=variant.reduce_range,
            calibrate_method=variant.method,
            extra_options=extra,
            **options,
        )
    return out


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without the quantizer's progress prints and its advice to pre-process (the graph is)."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(before)


def quantized(model: Path, out: Path, photos: Sequence[Path], name: str) -> Path:
    """`model` quantized by the variant `name`, calibrated on `photos`, written to `out`."""
    variant = VARIANTS[name]
    detector = Detector(model, threads=0)
    batch = calibration(photos, detector, variant.mirror)
    return quantize(model, out, variant, batch, detector.input_name)
