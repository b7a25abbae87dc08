"""ONNX graphs that fuse MTCNN's sampling steps into the networks, for ONNX Runtime.

The bundle's networks are pure (they take ready-made NCHW tensors). At session creation they are
wrapped so that one ``run`` does the sampling in C++ as well:

* :func:`pnet_with_resize`: ``Resize`` (linear, ``asymmetric``: TensorFlow's legacy
  ``ResizeBilinear``) of the whole normalised image to one pyramid level, then P-Net up to its
  logits (:func:`pnet_logits`; :func:`face_probability` finishes the softmax).
* :func:`net_with_crops`: a ``Loop`` of ``Resize`` in ``tf_crop_and_resize`` mode, which is
  TensorFlow's ``CropAndResize`` (sample positions and the 0 outside the image), one crop per
  box, then R-Net or O-Net.
* :func:`lnet_with_patches`: the same crops for LNet's five patches per face, reshaped from
  ``(5 n, 3, 24, 24)`` to ``(n, 15, 24, 24)``, then LNet.
* :func:`nms_model`: ``NonMaxSuppression``, whose order and strict ``>`` rule equal
  TensorFlow's ``NonMaxSuppressionV2``.

The results equal :mod:`facefaas.mtcnn.sampling`'s reference up to float rounding (about 1e-4 in
normalised pixel values), checked by the tests.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from facefaas.mtcnn.sampling import normalized_boxes

__all__ = [
    "OPSET",
    "crop_rois",
    "face_probability",
    "lnet_with_patches",
    "net_with_crops",
    "nms_model",
    "pnet_logits",
    "pnet_with_resize",
]

OPSET = 17
_IR_VERSION = 8


def _prepend(
    net: onnx.ModelProto, inputs: list[onnx.ValueInfoProto], nodes: list[onnx.NodeProto]
) -> onnx.ModelProto:
    """A copy of ``net`` whose input ``image`` is computed by ``nodes`` from ``inputs``."""
    model = onnx.ModelProto()
    model.CopyFrom(net)
    graph = model.graph
    kept = [i for i in graph.input if i.name != "image"]
    del graph.input[:]
    graph.input.extend([*inputs, *kept])
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *body])
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", OPSET)])
    model.ir_version = _IR_VERSION
    return model


def pnet_logits(pnet: onnx.ModelProto) -> onnx.ModelProto:
    """P-Net with outputs ``logits (1, 2, h, w)`` (before the softmax) and ``reg``, its two
    1x1 heads run as one convolution.

    ONNX Runtime runs a softmax over axis 1 of an NCHW tensor as a separate pass with two
    transposes and a loop over rows of two values, about 10% of P-Net's time; the face
    probability is computed from the logits by the caller instead. One six-channel head instead
    of a two- and a four-channel one saves a pass over the last feature map (each runs padded to
    ONNX Runtime's 16-channel blocks).
    """
    model = onnx.ModelProto()
    model.CopyFrom(pnet)
    graph = model.graph
    softmax = next(node for node in graph.node if node.op_type == "Softmax")
    identity = next(node for node in graph.node if node.op_type == "Identity")
    face = next(node for node in graph.node if softmax.input[0] in node.output)
    box = next(node for node in graph.node if identity.input[0] in node.output)
    inits = {init.name: init for init in graph.initializer}
    weight = np.concatenate([numpy_helper.to_array(inits[n.input[1]]) for n in (face, box)])
    bias = np.concatenate([numpy_helper.to_array(inits[n.input[2]]) for n in (face, box)])
    for name in {*face.input[1:3], *box.input[1:3]}:
        graph.initializer.remove(inits[name])
    graph.initializer.extend(
        [
            numpy_helper.from_array(weight, "heads.weight"),
            numpy_helper.from_array(bias, "heads.bias"),
            helper.make_tensor("heads.split", TensorProto.INT64, [2], [2, 4]),
        ]
    )
    heads = helper.make_node(
        "Conv", [face.input[0], "heads.weight", "heads.bias"], ["heads"], name="heads"
    )
    split = helper.make_node(
        "Split", ["heads", "heads.split"], ["logits", identity.output[0]], name="split", axis=1
    )
    kept = [node for node in graph.node if node not in (softmax, identity, face, box)]
    del graph.node[:]
    graph.node.extend([*kept, heads, split])
    output = next(out for out in graph.output if out.name == softmax.output[0])
    output.name = "logits"
    return model


def face_probability(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``softmax(logits, axis=0)[1]`` of P-Net's ``(2, h, w)`` logits, as ``1 / (1 + e^(z0 -
    z1))`` (the same value; one exponential per pixel)."""
    # e^+-80 are normal float32 numbers: no overflow, underflow or warning at any logit.
    difference = np.clip(logits[0] - logits[1], np.float32(-80), np.float32(80))
    np.exp(difference, out=difference)
    difference += np.float32(1)
    probability: npt.NDArray[np.float32] = np.reciprocal(difference, out=difference)
    return probability


def pnet_with_resize(pnet: onnx.ModelProto) -> onnx.ModelProto:
    """Inputs ``source (1, 3, H, W)`` and ``sizes (4,) int64`` -> P-Net outputs at that size."""
    inputs = [
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "H", "W"]),
        helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]),
    ]
    resize = helper.make_node(
        "Resize", ["source", "", "", "sizes"], ["image"], name="pyramid_level",
        mode="linear", coordinate_transformation_mode="asymmetric",
    )  # fmt: skip
    return _prepend(pnet, inputs, [resize])


def resize_model() -> onnx.ModelProto:
    """Inputs ``source (1, 3, H, W)``, ``sizes (4,) int64`` -> ``level``: the pyramid level alone
    (the same ``Resize`` as :func:`pnet_with_resize`), for levels too large to run in one piece."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "Resize", ["source", "", "", "sizes"], ["level"], name="pyramid_level",
                mode="linear", coordinate_transformation_mode="asymmetric",
            )
        ],
        "resize",
        [
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "H", "W"]),
            helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]),
        ],
        [helper.make_tensor_value_info("level", TensorProto.FLOAT, [1, 3, "h", "w"])],
    )  # fmt: skip
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=_IR_VERSION
    )


def _crop_loop(side: int) -> onnx.NodeProto:
    """``Loop`` over the rows of ``rois (n, 8)``: crop ``i`` of ``source`` is a ``Resize`` in
    ``tf_crop_and_resize`` mode (TensorFlow's ``CropAndResize``: sample ``k`` at
    ``y1 (H - 1) + k (y2 - y1) (H - 1) / (side - 1)``, 0 outside the image) -> ``image``."""
    body = helper.make_graph(
        [
            helper.make_node("Gather", ["rois", "i"], ["roi"], axis=0),
            helper.make_node(
                "Resize", ["source", "roi", "", "crop_shape"], ["crop4"], name="crop",
                mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
                extrapolation_value=0.0,
            ),
            helper.make_node("Squeeze", ["crop4", "batch_axis"], ["crop"]),
            helper.make_node("Identity", ["go_on"], ["go_on_next"]),
        ],
        "crop_one",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("go_on", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("go_on_next", TensorProto.BOOL, []),
            helper.make_tensor_value_info("crop", TensorProto.FLOAT, [3, side, side]),
        ],
    )  # fmt: skip
    return helper.make_node("Loop", ["count", "always"], ["image"], name="crops", body=body)


def net_with_crops(net: onnx.ModelProto, side: int) -> onnx.ModelProto:
    """Inputs ``source (1, 3, H, W)`` and ``rois (n, 8)`` (``Resize`` rois
    ``0, 0, y1, x1, 1, 1, y2, x2``: boxes normalised as the seed graph normalises them, see
    :func:`crop_rois`) -> the network's outputs on the ``n`` crops."""
    inputs = [
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "H", "W"]),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["n", 8]),
    ]
    nodes = [
        helper.make_node("Shape", ["rois"], ["rois_shape"], end=1),
        helper.make_node("Squeeze", ["rois_shape", "batch_axis"], ["count"]),
        _crop_loop(side),
    ]
    model = _prepend(net, inputs, nodes)
    model.graph.initializer.extend(
        [
            helper.make_tensor("crop_shape", TensorProto.INT64, [4], [1, 3, side, side]),
            helper.make_tensor("batch_axis", TensorProto.INT64, [1], [0]),
            helper.make_tensor("always", TensorProto.BOOL, [], [True]),
        ]
    )
    return model


def crop_rois(boxes: npt.NDArray[np.float32], height: int, width: int) -> npt.NDArray[np.float32]:
    """The ``rois`` input of :func:`net_with_crops` for ``boxes (n, 4)`` (x1, y1, x2, y2 pixels)
    of a ``height x width`` image."""
    rois = np.zeros((len(boxes), 8), np.float32)
    rois[:, 4:6] = 1
    normalized = normalized_boxes(boxes, height, width)
    rois[:, 2:4] = normalized[:, :2]
    rois[:, 6:8] = normalized[:, 2:]
    return rois


def lnet_with_patches(lnet: onnx.ModelProto, side: int, patches: int) -> onnx.ModelProto:
    """Inputs as :func:`net_with_crops`'s for ``patches * n`` crops (face-major: face ``i``'s
    patch ``k`` is crop ``patches * i + k``) -> LNet's output on the ``n`` stacked patch sets."""
    crops = net_with_crops(lnet, side)
    graph = crops.graph
    for node in graph.node:
        if node.name == "crops":
            node.output[0] = "patches"
    shape = helper.make_tensor(
        "stacked_shape", TensorProto.INT64, [4], [-1, 3 * patches, side, side]
    )
    graph.initializer.append(shape)
    stack = helper.make_node("Reshape", ["patches", "stacked_shape"], ["image"], name="stack")
    body = list(graph.node)
    at = next(i for i, node in enumerate(body) if node.name == "crops") + 1
    del graph.node[:]
    graph.node.extend([*body[:at], stack, *body[at:]])
    return crops


def nms_model() -> onnx.ModelProto:
    """Inputs ``boxes (1, n, 4)``, ``scores (1, 1, n)``, ``max_output (1,) int64``,
    ``threshold (1,)`` -> ``selected (k, 3) int64`` (column 2: box index, in selection order)."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "NonMaxSuppression", ["boxes", "scores", "max_output", "threshold"], ["selected"]
            )
        ],
        "nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "n", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, "n"]),
            helper.make_tensor_value_info("max_output", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("threshold", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["k", 3])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=_IR_VERSION
    )
