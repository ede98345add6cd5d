"""A small ONNX graph builder shared by the converters: named nodes and initializers."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OUTPUT = "output0"  # the detection output, as Ultralytics names it and hook's detector reads it


class GraphBuilder:
    """Collects nodes and constant tensors under unique names; `op` returns the output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.producer: dict[str, onnx.NodeProto] = {}  # output name -> the node that makes it
        self.count = 0

    def _name(self, hint: str) -> str:
        self.count += 1
        return f"{hint.rsplit('/', 1)[-1]}_{self.count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = hint if hint == OUTPUT else self._name(hint)
        node = helper.make_node(op_type, inputs, [out], name=out, **attrs)
        self.nodes.append(node)
        self.producer[out] = node
        return out
