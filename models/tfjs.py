"""A TensorFlow.js graph model (model.json + weights .bin) read into numpy, constants folded.

The json's weightsManifest says how each weight is stored in the bin (float32, float16, or
uint8/uint16 quantized with a scale and a minimum); all come out as float32 or int arrays. The
modelTopology's nodes come out as TfNode records, and subgraphs of constants only (onnx-tf's
reshape-shape arithmetic) are folded into new constants, so a translator sees only real ops.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Json = dict[str, Any]


@dataclass(frozen=True)
class TfNode:
    name: str
    op: str
    inputs: tuple[str, ...]  # data inputs as "node" or "node:index"; control inputs dropped
    attr: Json


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


def attr_ints(node: TfNode, key: str, default: list[int]) -> list[int]:
    return [int(v) for v in node.attr.get(key, {}).get("list", {}).get("i", default)]


def attr_str(node: TfNode, key: str, default: str) -> str:
    raw = node.attr.get(key, {}).get("s")
    return base64.b64decode(raw).decode() if raw else default


def attr_bool(node: TfNode, key: str) -> bool:
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
