"""Darknet (cfg + weights) to ONNX, for the YOLOv3-tiny family, with numpy and the onnx package.

Supports what YOLOv3-tiny uses: convolutional (batch norm folded into the weights, leaky or
linear), maxpool (including darknet's stride-1 pool, padded at the right and bottom only),
route (one or several layers), upsample and yolo heads. The graph decodes the heads itself and
emits the YOLOv5 layout [batch, N, 5 + C]: cx, cy, w, h in input pixels, objectness, C class
probabilities, all already sigmoid/exp'd. The batch dimension is dynamic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.graph import OUTPUT, GraphBuilder

OPSET = 17
BN_EPSILON = 1e-6  # darknet normalises by (sqrt(var) + .000001), not sqrt(var + eps)


@dataclass
class Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)

    def integer(self, key: str, default: int | None = None) -> int:
        if key not in self.options:
            if default is None:
                raise ValueError(f"[{self.kind}] has no {key}=")
            return default
        return int(self.options[key])

    def ints(self, key: str) -> list[int]:
        return [int(v) for v in self.options[key].split(",") if v.strip()]


def parse_cfg(text: str) -> list[Section]:
    """Darknet's INI-like cfg: [section] headers and key=value lines, # comments."""
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append(Section(line.strip("[]").strip()))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
    if not sections or sections[0].kind not in ("net", "network"):
        raise ValueError("the cfg does not start with a [net] section")
    return sections


def read_weights(data: bytes) -> np.ndarray:
    """The float32 payload of a .weights file, after its version header."""
    major, minor, _revision = np.frombuffer(data[:12], dtype="<i4")
    seen_bytes = 8 if (major * 10 + minor) >= 2 and major < 1000 else 4
    return np.frombuffer(data[12 + seen_bytes :], dtype="<f4")


@dataclass(frozen=True)
class Tensor:
    """A layer's output: its name in the graph and its shape (batch left out)."""

    name: str
    c: int
    h: int
    w: int


class _Converter(GraphBuilder):
    """Walks the cfg's layers, reading weights in order and emitting ONNX nodes."""

    def __init__(self, net: Section, weights: np.ndarray) -> None:
        super().__init__()
        self.weights = weights
        self.offset = 0
        self.width, self.height = net.integer("width"), net.integer("height")
        self.channels = net.integer("channels", 3)

    def take(self, count: int) -> np.ndarray:
        if self.offset + count > self.weights.size:
            raise ValueError("the weights file is shorter than the cfg needs")
        chunk = self.weights[self.offset : self.offset + count]
        self.offset += count
        return chunk

    # -- layers -----------------------------------------------------------------------------
    def conv(self, layer: Section, x: Tensor) -> Tensor:
        """Convolution with batch norm folded into weights and bias, then its activation."""
        filters, size = layer.integer("filters"), layer.integer("size")
        stride = layer.integer("stride", 1)
        pad = size // 2 if layer.integer("pad", 0) else layer.integer("padding", 0)
        if layer.integer("batch_normalize", 0):
            beta, gamma, mean, var = (self.take(filters) for _ in range(4))
            kernel = self.take(filters * x.c * size * size).reshape(filters, x.c, size, size)
            factor = gamma / (np.sqrt(var) + BN_EPSILON)
            kernel = kernel * factor[:, None, None, None]
            bias = beta - mean * factor
        else:
            bias = self.take(filters)
            kernel = self.take(filters * x.c * size * size).reshape(filters, x.c, size, size)
        inputs = [
            x.name,
            self.const(kernel.astype(np.float32), "w"),
            self.const(bias.astype(np.float32), "b"),
        ]
        y = self.op(
            "Conv",
            inputs,
            "conv",
            kernel_shape=[size, size],
            strides=[stride, stride],
            pads=[pad] * 4,
        )
        activation = layer.options.get("activation", "linear")
        if activation == "leaky":
            y = self.op("LeakyRelu", [y], "leaky", alpha=0.1)
        elif activation != "linear":
            raise ValueError(f"activation {activation!r} is not supported")
        return Tensor(
            y, filters, (x.h + 2 * pad - size) // stride + 1, (x.w + 2 * pad - size) // stride + 1
        )

    def maxpool(self, layer: Section, x: Tensor) -> Tensor:
        size, stride = layer.integer("size"), layer.integer("stride", 1)
        pad = layer.integer("padding", size - 1)  # darknet pads at the right and bottom only
        y = self.op(
            "MaxPool",
            [x.name],
            "pool",
            kernel_shape=[size, size],
            strides=[stride, stride],
            pads=[0, 0, pad, pad],
        )
        return Tensor(y, x.c, (x.h + pad - size) // stride + 1, (x.w + pad - size) // stride + 1)

    def upsample(self, layer: Section, x: Tensor) -> Tensor:
        stride = layer.integer("stride", 2)
        scales = self.const(np.array([1, 1, stride, stride], dtype=np.float32), "scales")
        y = self.op(
            "Resize",
            [x.name, "", scales],
            "upsample",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        return Tensor(y, x.c, x.h * stride, x.w * stride)

    def route(self, sources: list[Tensor]) -> Tensor:
        names = [t.name for t in sources]
        y = names[0] if len(names) == 1 else self.op("Concat", names, "route", axis=1)
        return Tensor(y, sum(t.c for t in sources), sources[0].h, sources[0].w)

    def yolo(self, layer: Section, x: Tensor, mask: Sequence[int] | None = None) -> str:
        """Decode one head [b, A*(5+C), H, W] into [b, A*H*W, 5+C] rows in input pixels.

        `mask` picks the head's anchors in place of the cfg's (see `convert`).
        """
        anchors = np.array(layer.ints("anchors"), dtype=np.float32).reshape(-1, 2)
        anchors = anchors[list(mask) if mask is not None else layer.ints("mask")]
        count, classes = len(anchors), layer.integer("classes")
        shape = self.const(np.array([0, count, 5 + classes, x.h * x.w], dtype=np.int64), "shape")
        rows = self.op(
            "Transpose", [self.op("Reshape", [x.name, shape], "split")], "rows", perm=[0, 1, 3, 2]
        )  # [b, A, H*W, 5+C]

        def part(start: int, end: int) -> str:
            bounds = [np.array([v], dtype=np.int64) for v in (start, end, 3)]
            return self.op("Slice", [rows, *(self.const(b, "slice") for b in bounds)], "part")

        grid_y, grid_x = np.meshgrid(np.arange(x.h), np.arange(x.w), indexing="ij")
        cells = np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1).astype(np.float32)
        stride = np.array([self.width / x.w, self.height / x.h], dtype=np.float32)
        xy = self.op(
            "Mul",
            [
                self.op(
                    "Add",
                    [
                        self.op("Sigmoid", [part(0, 2)], "sig"),
                        self.const(cells[None, None], "cells"),
                    ],
                    "cell",
                ),
                self.const(stride, "stride"),
            ],
            "xy",
        )
        wh = self.op(
            "Mul",
            [
                self.op("Exp", [part(2, 4)], "exp"),
                self.const(anchors.reshape(1, count, 1, 2), "anchors"),
            ],
            "wh",
        )
        scores = self.op("Sigmoid", [part(4, 5 + classes)], "scores")
        decoded = self.op("Concat", [xy, wh, scores], "decoded", axis=3)
        flat = self.const(np.array([0, -1, 5 + classes], dtype=np.int64), "flat")
        return self.op("Reshape", [decoded, flat], "head")


def convert(
    cfg_text: str, weights_data: bytes, masks: Sequence[Sequence[int]] | None = None
) -> onnx.ModelProto:
    """Build the ONNX model (tests/models/test_darknet.py checks it against a numpy forward pass).

    `masks`, one per [yolo] layer in order, overrides the cfg's anchor masks: weights are
    decoded with the anchors they were trained with, which a shipped cfg may misstate
    (models/build.py TRAINED_MASKS).
    """
    sections = parse_cfg(cfg_text)
    heads_in_cfg = sum(1 for s in sections if s.kind == "yolo")
    if masks is not None and len(masks) != heads_in_cfg:
        raise ValueError(f"{len(masks)} anchor masks given for {heads_in_cfg} [yolo] layers")
    conv = _Converter(sections[0], read_weights(weights_data))
    done: list[Tensor] = []
    heads: list[str] = []
    x = Tensor("images", conv.channels, conv.height, conv.width)
    for index, layer in enumerate(sections[1:]):
        if layer.kind == "convolutional":
            x = conv.conv(layer, x)
        elif layer.kind == "maxpool":
            x = conv.maxpool(layer, x)
        elif layer.kind == "upsample":
            x = conv.upsample(layer, x)
        elif layer.kind == "route":
            x = conv.route([done[i if i >= 0 else index + i] for i in layer.ints("layers")])
        elif layer.kind == "yolo":
            heads.append(conv.yolo(layer, x, masks[len(heads)] if masks else None))
        else:
            raise ValueError(f"layer {index} [{layer.kind}] is not supported")
        done.append(x)
    unused = conv.weights.size - conv.offset
    if unused:
        raise ValueError(f"the weights file has {unused} floats the cfg does not use")
    detections = conv.op("Concat", heads, OUTPUT, axis=1)
    outputs = [helper.make_tensor_value_info(detections, TensorProto.FLOAT, ["batch", None, None])]
    images = helper.make_tensor_value_info(
        "images", TensorProto.FLOAT, ["batch", conv.channels, conv.height, conv.width]
    )
    graph = helper.make_graph(conv.nodes, "yolov3-tiny", [images], outputs, conv.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hook models/build.py"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
