"""Build the three MTCNN networks as ONNX models from canonical weights, and read them back.

Signatures (all float32, NCHW, RGB normalised as ``(x - 127.5) / 128``):

=======  ====================  ===============================================================
network  input ``image``       outputs
=======  ====================  ===============================================================
pnet     ``(N, 3, H, W)``      ``prob (N, 2, h, w)`` softmax (not face, face);
                               ``reg (N, 4, h, w)`` box offsets; ``h = floor((H - 2) / 2) - 4``
rnet     ``(N, 3, 24, 24)``    ``prob (N, 2)``, ``reg (N, 4)``
onet     ``(N, 3, 48, 48)``    ``prob (N, 2)``, ``reg (N, 4)``, ``landmarks (N, 10)``
=======  ====================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facefaas.models.weights import NETWORK_LAYOUT, MtcnnWeights, Params

__all__ = ["NETWORK_OUTPUTS", "OPSET", "build_network", "build_networks", "weights_from_onnx"]

OPSET = 17
_IR_VERSION = 8  # readable by every onnxruntime since 1.10

NETWORK_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "pnet": ("prob", "reg"),
    "rnet": ("prob", "reg"),
    "onet": ("prob", "reg", "landmarks"),
}
_INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}
_OUTPUT_SHAPES: Mapping[str, Mapping[str, list[int | str]]] = {
    "pnet": {"prob": ["batch", 2, "rows", "cols"], "reg": ["batch", 4, "rows", "cols"]},
    "rnet": {"prob": ["batch", 2], "reg": ["batch", 4]},
    "onet": {"prob": ["batch", 2], "reg": ["batch", 4], "landmarks": ["batch", 10]},
}


class _Graph:
    def __init__(self, params: Params) -> None:
        self.params = params
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def conv(self, x: str, layer: str) -> str:
        w = self.init(f"{layer}.weight", self.params[f"{layer}.weight"])
        b = self.init(f"{layer}.bias", self.params[f"{layer}.bias"])
        self.nodes.append(helper.make_node("Conv", [x, w, b], [layer], name=layer))
        return layer

    def prelu(self, x: str, layer: str) -> str:
        slope = self.init(layer, self.params[layer].reshape(-1, 1, 1))
        out = f"{layer}.out"
        self.nodes.append(helper.make_node("PRelu", [x, slope], [out], name=layer))
        return out

    def pool(self, x: str, name: str, kernel: int, stride: int, same: bool = False) -> str:
        # TensorFlow's SAME pooling pads only after (bottom/right) when the total pad is 1.
        pads = [0, 0, 1, 1] if same else [0, 0, 0, 0]
        self.nodes.append(
            helper.make_node(
                "MaxPool",
                [x],
                [name],
                name=name,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=pads,
            )
        )
        return name

    def dense(self, x: str, layer: str, out: str) -> str:
        w = self.init(f"{layer}.weight", self.params[f"{layer}.weight"])
        b = self.init(f"{layer}.bias", self.params[f"{layer}.bias"])
        self.nodes.append(helper.make_node("Gemm", [x, w, b], [out], name=layer, transB=1))
        return out

    def softmax(self, x: str, out: str) -> str:
        self.nodes.append(helper.make_node("Softmax", [x], [out], name=out, axis=1))
        return out

    def flatten(self, x: str) -> str:
        out = f"{x}.flat"
        self.nodes.append(helper.make_node("Flatten", [x], [out], name=out, axis=1))
        return out


def _body(net: str, g: _Graph) -> None:
    x = "image"
    if net == "pnet":
        x = g.pool(g.prelu(g.conv(x, "conv1"), "prelu1"), "pool1", 2, 2)
        x = g.prelu(g.conv(x, "conv2"), "prelu2")
        x = g.prelu(g.conv(x, "conv3"), "prelu3")
        g.softmax(g.conv(x, "conv4_1"), "prob")
        g.nodes.append(helper.make_node("Identity", [g.conv(x, "conv4_2")], ["reg"], name="reg"))
        return
    x = g.pool(g.prelu(g.conv(x, "conv1"), "prelu1"), "pool1", 3, 2, same=True)
    x = g.pool(g.prelu(g.conv(x, "conv2"), "prelu2"), "pool2", 3, 2)
    if net == "rnet":
        x = g.prelu(g.conv(x, "conv3"), "prelu3")
        x = g.flatten(g.prelu(g.conv(x, "fc4"), "prelu4"))
        g.softmax(g.dense(x, "fc5_1", "logits"), "prob")
        g.dense(x, "fc5_2", "reg")
        return
    x = g.pool(g.prelu(g.conv(x, "conv3"), "prelu3"), "pool3", 2, 2)
    x = g.prelu(g.conv(x, "conv4"), "prelu4")
    x = g.flatten(g.prelu(g.conv(x, "fc5"), "prelu5"))
    g.softmax(g.dense(x, "fc6_1", "logits"), "prob")
    g.dense(x, "fc6_2", "reg")
    g.dense(x, "fc6_3", "landmarks")


def build_network(net: str, params: Params) -> onnx.ModelProto:
    """One network (``pnet``, ``rnet`` or ``onet``) as a checked ONNX model."""
    g = _Graph(params)
    _body(net, g)
    side = _INPUT_SIDE[net]
    spatial: list[int | str] = ["height", "width"] if side is None else [side, side]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, *spatial])]
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, _OUTPUT_SHAPES[net][name])
        for name in NETWORK_OUTPUTS[net]
    ]
    graph = helper.make_graph(g.nodes, f"mtcnn_{net}", inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facefaas",
        ir_version=_IR_VERSION,
    )
    onnx.checker.check_model(model)
    return model


def build_networks(weights: MtcnnWeights) -> dict[str, onnx.ModelProto]:
    """``{"pnet": ..., "rnet": ..., "onet": ...}`` ONNX models of these weights."""
    return {net: build_network(net, params) for net, params in weights.networks().items()}


def weights_from_onnx(models: Mapping[str, onnx.ModelProto]) -> MtcnnWeights:
    """Read canonical weights back from networks built by :func:`build_networks`.

    Initializers are matched by name; PReLU slopes are flattened. Raises
    :class:`~facefaas.errors.ModelValidationError` when names or shapes do not fit MTCNN.
    """
    nets: dict[str, Params] = {}
    for net, layout in NETWORK_LAYOUT.items():
        inits = {t.name: numpy_helper.to_array(t) for t in models[net].graph.initializer}
        nets[net] = {
            name: (inits[name].reshape(-1) if name.startswith("prelu") else inits[name])
            for name in layout
            if name in inits
        }
    return MtcnnWeights(**nets)
