"""Static int8 quantization of a detector, calibrated on photos letterboxed as hook feeds them.

onnxruntime's quantize_static (uint8 activations, int8 per-channel weights, QDQ format, which
onnxruntime and OpenVINO both run as int8). Variants say which operators and which calibration;
"conv-percentile" (the convolutions only, Percentile calibration on the photos and their mirror
images, the decode tail left float) is the one models/build.py int8 ships (models/int8.py):
bench/precision.py found it kept the accuracy table at about half of f32's time, where MinMax
lost a little and quantizing the decode tail lost nearly everything.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from hook import yolo
from hook.detector import Detector
from hook.images import decode_image

MAX_PIXELS = 40_000_000  # the photo sets' largest, decoded whole before letterboxing


@dataclass(frozen=True)
class Variant:
    """One way of quantizing: which operators, which calibration, mirrored photos or not."""

    ops: str  # "conv", "notail" (all but the decode tail) or "all"
    method: CalibrationMethod
    mirror: bool = False


VARIANTS = {
    "conv-minmax": Variant("conv", CalibrationMethod.MinMax),
    "conv-percentile": Variant("conv", CalibrationMethod.Percentile, mirror=True),
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
        image, size = decode_image(photo.read_bytes(), max_pixels=MAX_PIXELS,
                                   fit=detector.canvas)  # fmt: skip
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


def quantize(model: Path, out: Path, variant: Variant, batch: np.ndarray, input_name: str) -> Path:
    """An int8 copy of `model` at `out`, calibrated on `batch` (a tensor of the model's input)."""
    options: dict[str, list[str]] = {}
    if variant.ops == "conv":
        options["op_types_to_quantize"] = ["Conv"]
    elif variant.ops == "notail":
        options["nodes_to_exclude"] = decode_tail(model)
    with quiet():
        quantize_static(
            str(model), str(out), Tensors(batch, input_name), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=variant.method, **options,
        )  # fmt: skip
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
