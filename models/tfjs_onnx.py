"""TensorFlow ops of a tfjs graph (models/tfjs.py) to ONNX nodes, without layout Transposes.

The tfjs graph (made by onnx-tf) keeps its tensors NCHW and wraps every Conv2D, MaxPool and
ResizeBilinear in Transposes to TF's NHWC. Here each TF tensor is tracked as an ONNX tensor plus
the permutation between the two, so those Transposes cost nothing: ONNX's Conv is NCHW, and a
Transpose is only emitted where an op needs a layout its input does not have. Pads are absorbed
into the Conv or MaxPool that follows them, and biases into their Conv.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import onnx
from onnx import helper

from models.graph import GraphBuilder
from models.tfjs import TfNode, attr_bool, attr_ints, attr_str

NHWC_TO_NCHW = (0, 3, 1, 2)  # an NHWC tensor laid out NCHW: the layout of ONNX's Conv


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


def _window(node: TfNode, x: Value, kernel: tuple[int, int]) -> _Window:
    """Strides, dilations, ONNX pads and NHWC output size of a Conv2D or MaxPool on x."""
    if attr_str(node, "data_format", "NHWC") != "NHWC":
        raise ValueError(f"{node.name}: only NHWC is supported")
    strides = attr_ints(node, "strides", [1, 1, 1, 1])[1:3]
    dilations = attr_ints(node, "dilations", [1, 1, 1, 1])[1:3]
    padding = attr_str(node, "padding", "VALID")
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


class Tensors(GraphBuilder):
    """The ONNX graph being built and the TF tensors in it, each with its layout (a `Value`)."""

    def __init__(self, consts: dict[str, np.ndarray], consumers: Counter[str]) -> None:
        super().__init__()
        self.consts = consts
        self.consumers = consumers
        self.values: dict[str, Value] = {}
        self.cache: dict[tuple[object, ...], str] = {}

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

    def _absorbable(self, x: Value, fill: float) -> Value:
        """`x` with its pending pad kept for the next op if that op pads with `fill`."""
        if x.pads is not None and x.pad_value != fill:
            return self._materialise_pad(x)
        return x


class Translator(Tensors):
    """Emits ONNX nodes for the non-constant TF nodes, one handler per TF op."""

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

    def conv2d(self, node: TfNode) -> None:
        x = self._absorbable(self.value(node.inputs[0]), 0.0)
        kernel = self.constant(node.inputs[1])  # HWIO
        kh, kw, per_group, filters = kernel.shape
        if x.shape[3] % per_group:
            raise ValueError(f"{node.name}: {x.shape[3]} channels for a {per_group}-channel filter")
        window = _window(node, x, (kh, kw))
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
        kh, kw = attr_ints(node, "ksize", [1, 1, 1, 1])[1:3]
        window = _window(node, x, (kh, kw))
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
        if attr_bool(node, "align_corners"):
            mode = "align_corners"
        elif attr_bool(node, "half_pixel_centers"):
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

    HANDLERS: ClassVar[dict[str, Callable[[Translator, TfNode], None]]] = {
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
