"""An independent run of the TensorFlow.js NanoDet-g graph, to check the converter against.

It interprets the graph json op by op, as TensorFlow defines the ops (NHWC convolutions and
pools, TF's half-pixel bilinear resize, SparseToDense...), in float64, straight from nanodet.json
and nanodet.bin, then decodes NanoDet's boxes itself. It shares no code with the converter
(models/nanodet.py, models/tfjs.py, models/tfjs_onnx.py).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np

MEAN_BGR = np.array([103.53, 116.28, 123.675])
STD_BGR = np.array([57.375, 57.12, 58.395])

Array = np.ndarray


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
    cols = [
        [x[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :] for j in range(kw)] for i in range(kh)
    ]
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
        return (
            np.maximum(low, 0).astype(int),
            np.minimum(np.ceil(pos), n_in - 1).astype(int),
            pos - low,
        )

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
