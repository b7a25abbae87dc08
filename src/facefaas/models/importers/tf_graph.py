"""Import a frozen TensorFlow MTCNN graph (the seed's ``mtcnn.pb`` layout) without TensorFlow.

The graph (blaueck/tf-mtcnn, converted from the authors' Caffe models) keeps every weight as a
``Const`` node named ``{pnet,rnet,onet}/<layer>/{weights,biases}``. Its conventions, undone here to
reach :class:`~facefaas.models.weights.MtcnnWeights`'s canonical one:

* kernels are ``HWIO`` and already in normal image orientation;
* the first convolution of each network expects **BGR** input;
* box offsets are ``(y1, x1, y2, x2)`` and O-Net landmarks ``(y1..y5, x1..x5)``;
* R-Net's and O-Net's fully connected layers are convolutions over the last feature map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from facefaas.errors import ModelFormatError, TooLargeError
from facefaas.models.importers._tfproto import graph_def_class
from facefaas.models.weights import MtcnnWeights, Params

__all__ = ["looks_like_tf_graph", "read_tf_graph"]

_DT_FLOAT = 1
_MAX_ELEMENTS = 1 << 24  # per tensor; MTCNN's largest (O-Net's conv5) has 294,912
_YX_TO_XY_BOX = [1, 0, 3, 2]
_YX_TO_XY_LANDMARKS = [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]

# canonical name -> TensorFlow scope, per network
_LAYERS: dict[str, dict[str, str]] = {
    "pnet": {
        "conv1": "conv1", "prelu1": "PReLU1", "conv2": "conv2", "prelu2": "PReLU2",
        "conv3": "conv3", "prelu3": "PReLU3", "conv4_1": "conv4-1", "conv4_2": "conv4-2",
    },
    "rnet": {
        "conv1": "conv1", "prelu1": "prelu1", "conv2": "conv2", "prelu2": "prelu2",
        "conv3": "conv3", "prelu3": "prelu3", "fc4": "conv4", "prelu4": "prelu4",
        "fc5_1": "conv5-1", "fc5_2": "conv5-2",
    },
    "onet": {
        "conv1": "conv1", "prelu1": "prelu1", "conv2": "conv2", "prelu2": "prelu2",
        "conv3": "conv3", "prelu3": "prelu3", "conv4": "conv4", "prelu4": "prelu4",
        "fc5": "conv5", "prelu5": "prelu5",
        "fc6_1": "conv6-1", "fc6_2": "conv6-2", "fc6_3": "conv6-3",
    },
}  # fmt: skip

_DENSE_HEADS = {"fc5_1", "fc5_2", "fc6_1", "fc6_2", "fc6_3"}
_BOX_HEADS = {"conv4_2", "fc5_2", "fc6_2"}
_LANDMARK_HEADS = {"fc6_3"}


def looks_like_tf_graph(data: bytes) -> bool:
    """Cheap check: does the file parse as a GraphDef with MTCNN's weight nodes?"""
    try:
        return "pnet/conv1/weights" in _constants(data)
    except ModelFormatError:
        return False


def _tensor_value(tensor: Any, name: str) -> npt.NDArray[np.float32]:
    if tensor.dtype != _DT_FLOAT:
        raise ModelFormatError(f"{name}: dtype {tensor.dtype} is not float32")
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise ModelFormatError(f"{name}: negative size in shape {shape}")
    count = math.prod(shape)  # exact: numpy's product of int64 wraps around
    if count > _MAX_ELEMENTS:  # a single float_val would be broadcast to all of them
        raise TooLargeError(
            f"{name}: shape {shape} has {count} elements; at most {_MAX_ELEMENTS} are accepted",
            limit=_MAX_ELEMENTS, unit="elements",
        )  # fmt: skip
    if tensor.tensor_content:
        if len(tensor.tensor_content) != 4 * count:
            raise ModelFormatError(f"{name}: {len(tensor.tensor_content)} bytes for shape {shape}")
        values = np.frombuffer(tensor.tensor_content, dtype="<f4").astype(np.float32)
    elif len(tensor.float_val) in (1, count):
        values = np.broadcast_to(np.asarray(tensor.float_val, np.float32), (count,)).copy()
    else:
        raise ModelFormatError(f"{name}: {len(tensor.float_val)} values for shape {shape}")
    return values.reshape(shape)


def _constants(data: bytes) -> dict[str, Any]:
    graph = graph_def_class()()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"not a TensorFlow GraphDef protobuf: {exc}") from None
    if not graph.node:
        raise ModelFormatError("not a TensorFlow GraphDef: the graph has no nodes")
    return {node.name: node for node in graph.node if node.op == "Const"}


def _get(consts: dict[str, Any], name: str) -> npt.NDArray[np.float32]:
    node = consts.get(name)
    if node is None:
        raise ModelFormatError(
            f"not an MTCNN frozen graph of the supported layout: no constant {name!r}"
        )
    return _tensor_value(node.attr["value"].tensor, name)


def _network(consts: dict[str, Any], net: str) -> Params:
    params: Params = {}
    for canonical, scope in _LAYERS[net].items():
        prefix = f"{net}/{scope}"
        if canonical.startswith("prelu"):
            params[canonical] = _get(consts, f"{prefix}/weights").reshape(-1)
            continue
        kernel = _get(consts, f"{prefix}/weights")  # HWIO
        bias = _get(consts, f"{prefix}/biases")
        if kernel.ndim != 4:
            raise ModelFormatError(f"{prefix}/weights: expected a 4-D kernel, got {kernel.shape}")
        weight = kernel.transpose(3, 2, 0, 1)  # OIHW
        if canonical == "conv1":
            weight = weight[:, ::-1]  # the graph takes BGR; canonical is RGB
        if canonical in _BOX_HEADS:
            weight, bias = weight[_YX_TO_XY_BOX], bias[_YX_TO_XY_BOX]
        elif canonical in _LANDMARK_HEADS:
            weight, bias = weight[_YX_TO_XY_LANDMARKS], bias[_YX_TO_XY_LANDMARKS]
        if canonical in _DENSE_HEADS:
            weight = weight.reshape(weight.shape[0], -1)
        params[f"{canonical}.weight"] = np.ascontiguousarray(weight)
        params[f"{canonical}.bias"] = np.ascontiguousarray(bias)
    return params


def read_tf_graph(data: bytes) -> MtcnnWeights:
    """Weights of a frozen TF MTCNN graph (bytes of a ``.pb`` file), in canonical convention.

    Raises:
        ModelFormatError: not a GraphDef, or not one with MTCNN's weight nodes.
        ModelValidationError: the weights have shapes MTCNN does not have.
        TooLargeError: a tensor declares more than 2**24 elements.
    """
    consts = _constants(data)
    return MtcnnWeights(**{net: _network(consts, net) for net in _LAYERS})
