"""Build the MTCNN networks as ONNX models from canonical weights, and read them back.

Signatures (all float32, NCHW, RGB normalised as ``(x - 127.5) / 128``, images in normal
orientation):

=======  ====================  ===============================================================
network  input ``image``       outputs
=======  ====================  ===============================================================
pnet     ``(N, 3, H, W)``      ``prob (N, 2, h, w)`` softmax (not face, face);
                               ``reg (N, 4, h, w)`` box offsets; ``h = floor((H - 2) / 2) - 4``
rnet     ``(N, 3, 24, 24)``    ``prob (N, 2)``, ``reg (N, 4)``
onet     ``(N, 3, 48, 48)``    ``prob (N, 2)``, ``reg (N, 4)``, ``landmarks (N, 10)``
lnet     ``(N, 15, 24, 24)``   ``offsets (N, 10)``: ``(x1..x5, y1..y5)``, landmark ``k``'s
         (optional)            position in its patch as a fraction of the patch side (0.5: the
                               patch centre, no move)
=======  ====================  ===============================================================

LNet's input is five 24x24 RGB patches, one centred on each O-Net landmark (left eye, right eye,
nose, left and right mouth corner), stacked on the channel axis: patch ``k`` (0-based) is channels
``3k..3k+2`` in R, G, B order. In the ONNX file, ``fc4.weight`` is the canonical
``(256, 5, 64, 3, 3)`` kernel reshaped to ``(256, 320, 3, 3)`` (over the five branches' maps
concatenated), and the PReLU slopes after fully connected layers are ``(channels,)``, those after
convolutions ``(channels, 1, 1)`` (:func:`onnx_initializer_shapes`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facefaas.models.weights import (
    LNET_BRANCHES,
    LNET_LAYOUT,
    NETWORK_LAYOUT,
    MtcnnWeights,
    Params,
)

__all__ = [
    "NETWORK_OUTPUTS",
    "OPSET",
    "build_network",
    "build_networks",
    "canonical_params",
    "layout_of",
    "network_bytes",
    "onnx_initializer_shapes",
    "weights_from_onnx",
]

OPSET = 17
_IR_VERSION = 8  # readable by every onnxruntime since 1.10

NETWORK_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "pnet": ("prob", "reg"),
    "rnet": ("prob", "reg"),
    "onet": ("prob", "reg", "landmarks"),
    "lnet": ("offsets",),
}
_INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48, "lnet": 24}
_INPUT_CHANNELS = {"pnet": 3, "rnet": 3, "onet": 3, "lnet": 3 * LNET_BRANCHES}
_OUTPUT_SHAPES: Mapping[str, Mapping[str, list[int | str]]] = {
    "pnet": {"prob": ["batch", 2, "rows", "cols"], "reg": ["batch", 4, "rows", "cols"]},
    "rnet": {"prob": ["batch", 2], "reg": ["batch", 4]},
    "onet": {"prob": ["batch", 2], "reg": ["batch", 4], "landmarks": ["batch", 10]},
    "lnet": {"offsets": ["batch", 2 * LNET_BRANCHES]},
}
_LNET_DENSE_PRELUS = frozenset(f"prelu4_{k}" for k in range(1, LNET_BRANCHES + 1))


def layout_of(net: str) -> Mapping[str, tuple[int, ...]]:
    """Canonical parameter shapes of ``net`` (``pnet``, ``rnet``, ``onet`` or ``lnet``)."""
    return LNET_LAYOUT if net == "lnet" else NETWORK_LAYOUT[net]


def onnx_initializer_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """The initializers' shapes in the ONNX file of ``net`` (module docstring)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in layout_of(net).items():
        if name.startswith("prelu") and name not in _LNET_DENSE_PRELUS:
            shapes[name] = (shape[0], 1, 1)
        elif len(shape) == 5:  # LNet's fc4: (out, branch, channel, h, w) -> (out, in, h, w)
            shapes[name] = (shape[0], shape[1] * shape[2], *shape[3:])
        else:
            shapes[name] = shape
    return shapes


def canonical_params(net: str, initializers: Mapping[str, np.ndarray]) -> Params:
    """Canonical parameters of ``net`` from its ONNX initializers, reshaped to the layout where
    the sizes fit (otherwise left as they are, for :class:`MtcnnWeights` to refuse). Names not in
    the layout are dropped; a missing one is left out (:class:`MtcnnWeights` names it)."""
    params: Params = {}
    for name, shape in layout_of(net).items():
        if name in initializers:
            value = np.asarray(initializers[name], np.float32)
            params[name] = value.reshape(shape) if value.size == int(np.prod(shape)) else value
    return params


class _Graph:
    def __init__(self, params: Params) -> None:
        self.params = params
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def conv(self, x: str, layer: str) -> str:
        weight = self.params[f"{layer}.weight"]
        if weight.ndim == 5:  # LNet's fc4 over the five branches' concatenated maps
            weight = weight.reshape(weight.shape[0], -1, *weight.shape[3:])
        w = self.init(f"{layer}.weight", weight)
        b = self.init(f"{layer}.bias", self.params[f"{layer}.bias"])
        self.nodes.append(helper.make_node("Conv", [x, w, b], [layer], name=layer))
        return layer

    def prelu(self, x: str, layer: str, dense: bool = False) -> str:
        slope = self.init(layer, self.params[layer].reshape((-1,) if dense else (-1, 1, 1)))
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

    def split(self, x: str, outs: list[str]) -> list[str]:
        """Equal parts along axis 1."""
        self.nodes.append(helper.make_node("Split", [x], outs, name=f"{x}.split", axis=1))
        return outs

    def concat(self, xs: list[str], out: str) -> str:
        self.nodes.append(helper.make_node("Concat", xs, [out], name=out, axis=1))
        return out


def _lnet_body(g: _Graph) -> None:
    branches = range(1, LNET_BRANCHES + 1)
    maps = []
    for k, patch in zip(branches, g.split("image", [f"patch{k}" for k in branches]), strict=True):
        x = g.pool(g.prelu(g.conv(patch, f"conv1_{k}"), f"prelu1_{k}"), f"pool1_{k}", 3, 2, True)
        x = g.pool(g.prelu(g.conv(x, f"conv2_{k}"), f"prelu2_{k}"), f"pool2_{k}", 3, 2)
        maps.append(g.prelu(g.conv(x, f"conv3_{k}"), f"prelu3_{k}"))
    joined = g.flatten(g.prelu(g.conv(g.concat(maps, "maps"), "fc4"), "prelu4"))
    xs, ys = [], []
    for k in branches:
        hidden = g.prelu(g.dense(joined, f"fc4_{k}", f"fc4_{k}"), f"prelu4_{k}", dense=True)
        x, y = g.split(g.dense(hidden, f"fc5_{k}", f"fc5_{k}"), [f"x{k}", f"y{k}"])
        xs.append(x)
        ys.append(y)
    g.concat([*xs, *ys], "offsets")


def _body(net: str, g: _Graph) -> None:
    x = "image"
    if net == "lnet":
        _lnet_body(g)
        return
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
    """One network (``pnet``, ``rnet``, ``onet`` or ``lnet``) as a checked ONNX model."""
    g = _Graph(params)
    _body(net, g)
    side = _INPUT_SIDE[net]
    spatial: list[int | str] = ["height", "width"] if side is None else [side, side]
    channels = _INPUT_CHANNELS[net]
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, *spatial])
    ]
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
    """``{"pnet": ..., "rnet": ..., "onet": ...[, "lnet": ...]}`` ONNX models of these weights."""
    return {net: build_network(net, params) for net, params in weights.networks().items()}


def network_bytes(weights: MtcnnWeights) -> dict[str, bytes]:
    """:func:`build_networks` serialized: what bundles store and sessions load."""
    return {net: model.SerializeToString() for net, model in build_networks(weights).items()}


def weights_from_onnx(models: Mapping[str, onnx.ModelProto]) -> MtcnnWeights:
    """Read canonical weights back from networks built by :func:`build_networks`.

    Initializers are matched by name and reshaped to the canonical layout; ``lnet`` is read when
    ``models`` has it. Raises :class:`~facefaas.errors.ModelValidationError` when names or shapes
    do not fit MTCNN.
    """
    nets: dict[str, Params] = {}
    for net in (*NETWORK_LAYOUT, "lnet"):
        if net in models:
            inits = {t.name: numpy_helper.to_array(t) for t in models[net].graph.initializer}
            nets[net] = canonical_params(net, inits)
    return MtcnnWeights(**nets)
