"""Import a facefaas ONNX bundle: ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx`` (+ ``manifest.json``,
+ ``lnet.onnx``, the optional landmark-refinement net).

An ONNX file is a program for the runtime, so each network is checked before anything reads its
tensors: only the standard operator domain, no model-local functions, no external tensor data
(which would make ONNX read other files), no sub-graphs, and only the operators
:mod:`facefaas.models.onnx_build` emits (:data:`ALLOWED_OPERATORS`). Then its inputs, outputs and
initializers must have the names and shapes of the signature, and its graph must be exactly the
one ``onnx_build`` makes from those weights (same opset, nodes, attributes and wiring), so the
imported model computes what the uploaded one did. The manifest is optional; its
``weights_sha256`` is compared with the networks' digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.importers._common import NET_TITLES, NETS, ImporterResult, network_of_conv1
from facefaas.models.manifest import ModelManifest
from facefaas.models.onnx_build import (
    NETWORK_OUTPUTS,
    build_network,
    canonical_params,
    onnx_initializer_shapes,
    weights_from_onnx,
)

__all__ = ["ALLOWED_OPERATORS", "FORMAT", "check_network", "looks_like_onnx", "read_onnx_bundle"]

FORMAT = "onnx-bundle"
ALLOWED_OPERATORS = frozenset(
    {"Conv", "PRelu", "MaxPool", "Softmax", "Gemm", "Flatten", "Identity", "Split", "Concat"}
)
_STANDARD_DOMAINS = ("", "ai.onnx")
_SUBGRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
_TITLES = {**NET_TITLES, "lnet": "LNet"}


def looks_like_onnx(data: bytes) -> bool:
    """Cheap check: does ``data`` parse as an ONNX model with a graph?"""
    try:
        return bool(_parse(data, "file").graph.node)
    except ModelFormatError:
        return False


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    try:
        return onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"{what}: not an ONNX model ({exc})") from None


def _check_safe(model: onnx.ModelProto, what: str) -> None:
    """Refuse what could make ONNX (Runtime) do more than arithmetic on our tensors."""
    for opset in model.opset_import:
        if opset.domain not in _STANDARD_DOMAINS:
            raise ModelValidationError(f"{what}: operator domain {opset.domain!r} is not allowed")
    if len(model.functions):
        raise ModelValidationError(f"{what}: model-local functions are not allowed")
    graph = model.graph
    if len(graph.sparse_initializer):
        raise ModelValidationError(f"{what}: sparse initializers are not allowed")
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise ModelValidationError(
                f"{what}: tensor {tensor.name!r} refers to external data, which is not allowed"
            )
    for node in graph.node:
        if node.domain not in _STANDARD_DOMAINS or node.op_type not in ALLOWED_OPERATORS:
            domain = f"{node.domain}." if node.domain else ""
            raise ModelValidationError(
                f"{what}: operator {domain}{node.op_type} is not allowed; an MTCNN bundle uses "
                f"only {', '.join(sorted(ALLOWED_OPERATORS))}"
            )
        for attribute in node.attribute:
            if attribute.type in _SUBGRAPH_ATTRIBUTES:
                raise ModelValidationError(f"{what}: node {node.name!r} has a sub-graph")


def _check_signature(net: str, model: onnx.ModelProto, what: str) -> None:
    graph = model.graph
    inputs = [value.name for value in graph.input]
    outputs = tuple(value.name for value in graph.output)
    if inputs != ["image"]:
        raise ModelValidationError(f"{what}: inputs {inputs}, expected ['image']")
    if outputs != NETWORK_OUTPUTS[net]:
        raise ModelValidationError(
            f"{what}: outputs {list(outputs)}, expected {list(NETWORK_OUTPUTS[net])}"
        )
    expected = onnx_initializer_shapes(net)
    found = {t.name: (tuple(t.dims), t.data_type) for t in graph.initializer}
    if set(found) != set(expected):
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        raise ModelValidationError(
            f"{what}: initializers do not match {_TITLES[net]}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    for name, shape in expected.items():
        dims, dtype = found[name]
        if dims != shape or dtype != onnx.TensorProto.FLOAT:
            raise ModelValidationError(
                f"{what}: initializer {name} is {_dtype_name(dtype)} {dims}, expected FLOAT {shape}"
            )


def _dtype_name(dtype: int) -> str:
    """``FLOAT``, ``INT64``, ...; a number outside ONNX's enum (the field is a plain int32)."""
    try:
        return str(onnx.TensorProto.DataType.Name(dtype))
    except ValueError:
        return f"data type {dtype}"


def _structure(model: onnx.ModelProto) -> list[Any]:
    graph = model.graph
    return [
        sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import),
        [(n.op_type, list(n.input), list(n.output), list(n.attribute)) for n in graph.node],
        [v.SerializeToString(deterministic=True) for v in (*graph.input, *graph.output)],
    ]


def check_network(net: str, model: onnx.ModelProto, what: str) -> None:
    """Check one network of a bundle (module docstring); raises ModelValidationError."""
    _check_safe(model, what)
    _check_signature(net, model, what)
    try:
        params = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{what}: unreadable initializer data ({exc})") from None
    params = canonical_params(net, params)
    if not all(np.all(np.isfinite(v)) for v in params.values()):
        raise ModelValidationError(f"{what}: initializers contain NaN or infinite values")
    if _structure(build_network(net, params)) != _structure(model):
        raise ModelValidationError(
            f"{what}: the graph is not the {_TITLES[net]} graph facefaas builds (nodes, "
            "attributes or wiring differ); export bundles with `facefaas models export`"
        )


def _network_name(name: str, model: onnx.ModelProto, what: str) -> str:
    stem = PurePosixPath(name).stem
    if stem in (*NETS, "lnet"):
        return stem
    names = {t.name for t in model.graph.initializer}
    if "conv1_1.weight" in names and "conv1.weight" not in names:
        return "lnet"
    conv1 = [t for t in model.graph.initializer if t.name == "conv1.weight"]
    return network_of_conv1(conv1[0].dims[0] if conv1 and conv1[0].dims else 0, what)


def read_onnx_bundle(files: Mapping[str, bytes]) -> ImporterResult:
    """Canonical weights from a bundle's ``.onnx`` files (``lnet.onnx`` optional) and optional
    ``manifest.json``.

    Raises:
        ModelFormatError: a file that is not ONNX, or a network missing.
        ModelValidationError: a network that fails :func:`check_network`, or a bad manifest.
    """
    models: dict[str, onnx.ModelProto] = {}
    for name in sorted(files):
        if PurePosixPath(name).name == "manifest.json":
            continue
        model = _parse(files[name], name)
        net = _network_name(name, model, f"{FORMAT}: {name}")
        if net in models:
            raise ModelFormatError(f"{FORMAT}: {_TITLES[net]} is given twice ({name})")
        check_network(net, model, f"{FORMAT}: {name}")
        models[net] = model
    missing = [f"{net}.onnx" for net in NETS if net not in models]
    if missing:
        raise ModelFormatError(
            f"{FORMAT}: missing {', '.join(missing)}; a bundle is pnet.onnx, rnet.onnx and "
            "onet.onnx together (as a folder, a zip, or several files)"
        )
    weights = weights_from_onnx(models)
    notes = ImporterResult(weights=weights)
    manifest_files = [name for name in files if PurePosixPath(name).name == "manifest.json"]
    if manifest_files:
        notes.manifest = ModelManifest.from_json(files[manifest_files[0]])
        digest = weights.digest()
        if notes.manifest.weights_sha256 and notes.manifest.weights_sha256 != digest:
            notes.warnings.append(
                "manifest.json's weights_sha256 does not match the networks (was the bundle "
                "edited?); the model's id is computed from the networks"
            )
    return notes
