"""ONNX graphs that fuse MTCNN's sampling steps into the networks, for ONNX Runtime.

The bundle's networks are pure (they take ready-made NCHW tensors). At session creation they are
wrapped so that one ``run`` does the sampling in C++ as well:

* :func:`pnet_with_resize`: ``Resize`` (linear, ``asymmetric``: TensorFlow's legacy
  ``ResizeBilinear``) of the whole normalised image to one pyramid level, then P-Net.
* :func:`net_with_crops`: ``RoiAlign`` with one sample per output pixel placed exactly where
  TensorFlow's ``CropAndResize`` samples, times a 0/1 mask that zeroes samples outside the image
  (CropAndResize's extrapolation), then R-Net or O-Net.
* :func:`lnet_with_patches`: the same crops for LNet's five patches per face, reshaped from
  ``(5 n, 3, 24, 24)`` to ``(n, 15, 24, 24)``, then LNet.
* :func:`nms_model`: ``NonMaxSuppression``, whose order and strict ``>`` rule equal
  TensorFlow's ``NonMaxSuppressionV2``.

The results equal :mod:`facefaas.mtcnn.sampling`'s reference up to float rounding (about 1e-4 in
normalised pixel values), checked by the tests.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

__all__ = ["OPSET", "lnet_with_patches", "net_with_crops", "nms_model", "pnet_with_resize"]

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


def net_with_crops(net: onnx.ModelProto, side: int) -> onnx.ModelProto:
    """Inputs ``source (1, 3, H, W)``, ``rois (n, 4)`` (RoiAlign x1, y1, x2, y2),
    ``batch (n,) int64`` and ``inside (n, 1, side, side)`` -> the network's outputs on the crops."""
    inputs = [
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "H", "W"]),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["n", 4]),
        helper.make_tensor_value_info("batch", TensorProto.INT64, ["n"]),
        helper.make_tensor_value_info("inside", TensorProto.FLOAT, ["n", 1, side, side]),
    ]
    nodes = [
        helper.make_node(
            "RoiAlign", ["source", "rois", "batch"], ["sampled"], name="crops",
            mode="avg", output_height=side, output_width=side, sampling_ratio=1,
            spatial_scale=1.0, coordinate_transformation_mode="output_half_pixel",
        ),
        helper.make_node("Mul", ["sampled", "inside"], ["image"], name="extrapolate_zero"),
    ]  # fmt: skip
    return _prepend(net, inputs, nodes)


def lnet_with_patches(lnet: onnx.ModelProto, side: int, patches: int) -> onnx.ModelProto:
    """Inputs as :func:`net_with_crops`'s for ``patches * n`` crops (face-major: face ``i``'s
    patch ``k`` is crop ``patches * i + k``) -> LNet's output on the ``n`` stacked patch sets."""
    crops = net_with_crops(lnet, side)
    graph = crops.graph
    for node in graph.node:
        if node.name == "extrapolate_zero":
            node.output[0] = "patches"
    shape = helper.make_tensor(
        "stacked_shape", TensorProto.INT64, [4], [-1, 3 * patches, side, side]
    )
    graph.initializer.append(shape)
    stack = helper.make_node("Reshape", ["patches", "stacked_shape"], ["image"], name="stack")
    body = list(graph.node)
    at = next(i for i, node in enumerate(body) if node.name == "extrapolate_zero") + 1
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
