"""Import the MTCNN authors' Caffe models (``det1``-``det3`` ``.caffemodel`` + ``.prototxt``).

Conventions of the Caffe files (checked against the TensorFlow graph, parameter by parameter):

* the networks were trained on **transposed** images (MATLAB is column-major): a kernel stored
  ``OIHW`` has its spatial axes swapped (layout ``OIWH`` in canonical terms), and the
  ``InnerProduct`` after the last convolution flattens the feature map in ``(C, W, H)`` order;
* input channels are **RGB** (the TF graph flipped conv1 for its BGR input), normalised like ours;
* heads are already ``(not face, face)``, ``(dx1, dy1, dx2, dy2)`` and ``(x1..x5, y1..y5)``.

Which file is which network comes from its structure (conv1's filters: 10, 28, 32), not its name.
The optional ``det4`` landmark-refinement net (LNet; told apart by its 21 PReLU layers) becomes
:attr:`MtcnnWeights.lnet`, which the detector runs after O-Net; its layers are matched by their
names in the authors' file (``conv1_1`` ... ``fc5_5``). R-Net's extra landmark head (``conv5-3``)
is read and returned in ``extra_networks``; the detection pipeline does not use it.
A ``.prototxt`` is optional; when present its layers must agree with the ``.caffemodel``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.importers._caffeproto import V1_LAYER_TYPES, net_parameter_class
from facefaas.models.importers._common import (
    NET_TITLES,
    Convention,
    ImporterResult,
    Layer,
    assemble,
    convert_network,
    layers_by_structure,
    network_of_conv1,
    to_oihw,
)
from facefaas.models.weights import LNET_LAYOUT, MtcnnWeights, Params

__all__ = ["CAFFE_CONVENTION", "FORMAT", "looks_like_caffemodel", "read_caffe"]

FORMAT = "caffe"
CAFFE_CONVENTION = Convention(kernel_layout="OIWH", dense_out_first=True, flatten="CWH")
_WEIGHTED = ("Convolution", "InnerProduct")
_LNET_MIN_BODY = 6  # LNet has 5 branches of 3 convolutions; O-Net, the deepest, has 5 layers


@dataclass(frozen=True)
class _CaffeLayer:
    name: str
    type: str
    blobs: list[npt.NDArray[np.float32]]


def looks_like_caffemodel(data: bytes) -> bool:
    """Cheap check: does ``data`` parse as a Caffe ``NetParameter`` with weighted layers?"""
    try:
        return any(layer.blobs for layer in _parse(data, "file"))
    except ModelFormatError:
        return False


def _blob(blob: Any, what: str) -> npt.NDArray[np.float32]:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:  # legacy 4-D shape; InnerProduct weights are (1, 1, out, in)
        shape = tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))
    values = blob.data if len(blob.data) else blob.double_data
    if any(d < 0 for d in shape) or math.prod(shape) != len(values):  # exact, unlike np.prod
        raise ModelFormatError(f"{what}: {len(values)} values for a blob of shape {shape}")
    return np.asarray(values, dtype=np.float32).reshape(shape)


def _parse(data: bytes, what: str) -> list[_CaffeLayer]:
    net = net_parameter_class()()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"{what}: not a Caffe model (protobuf: {exc})") from None
    layers = [
        _CaffeLayer(
            layer.name, layer.type, [_blob(b, f"{what}: {layer.name}") for b in layer.blobs]
        )
        for layer in net.layer
    ]
    layers += [
        _CaffeLayer(
            layer.name,
            V1_LAYER_TYPES.get(layer.type, f"V1 type {layer.type}"),
            [_blob(b, f"{what}: {layer.name}") for b in layer.blobs],
        )
        for layer in net.layers
    ]
    return layers


def _matrix(blob: npt.NDArray[np.float32], what: str) -> npt.NDArray[np.float32]:
    """An InnerProduct weight as a matrix: the legacy 4-D shape is ``(1, 1, out, in)``."""
    if blob.ndim != 4:
        return blob
    if blob.shape[0] * blob.shape[1] != 1:
        raise ModelValidationError(f"{what}: a weight of shape {blob.shape} is not a matrix")
    return blob.reshape(blob.shape[-2:])


def _layers(parsed: list[_CaffeLayer], what: str) -> list[Layer]:
    """Weighted layers, each with the PReLU that follows it."""
    layers: list[Layer] = []
    for layer in parsed:
        if layer.type in _WEIGHTED:
            if len(layer.blobs) != 2:
                raise ModelValidationError(f"{what}: {layer.name} needs a weight and a bias")
            weight, bias = layer.blobs
            if layer.type == "InnerProduct":
                weight = _matrix(weight, f"{what}: {layer.name}")
            layers.append(Layer(layer.name, weight, bias.reshape(-1)))
        elif layer.type == "PReLU":
            if not layers or layers[-1].prelu is not None or len(layer.blobs) != 1:
                raise ModelValidationError(f"{what}: PReLU {layer.name} follows no layer")
            last = layers[-1]
            slopes = layer.blobs[0].reshape(-1)
            if slopes.size != last.outputs:
                raise ModelValidationError(
                    f"{what}: PReLU {layer.name} has {slopes.size} slopes for "
                    f"{last.outputs} channels"
                )
            layers[-1] = Layer(last.name, last.weight, last.bias, slopes)
        elif layer.blobs:
            raise ModelValidationError(
                f"{what}: layer {layer.name} of type {layer.type} has weights; MTCNN has none there"
            )
    if not layers:
        raise ModelFormatError(f"{what}: a Caffe model without any weighted layer")
    return layers


def _check_prototxt(text: bytes, parsed: list[_CaffeLayer], name: str) -> list[str]:
    """Check a prototxt against its caffemodel's layers (``name`` is the caffemodel's)."""
    what = f"{PurePosixPath(name).stem}.prototxt"
    net = net_parameter_class()()
    try:
        text_format.Parse(text.decode("utf-8"), net, allow_unknown_field=True)
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{what}: not a Caffe prototxt ({exc})") from None
    declared = {layer.name: layer.type for layer in net.layer}
    for layer in parsed:
        if layer.blobs and declared.get(layer.name, layer.type) != layer.type:
            raise ModelValidationError(
                f"{what}: layer {layer.name} is a {declared[layer.name]} in the prototxt but a "
                f"{layer.type} in the caffemodel"
            )
    missing = [layer.name for layer in parsed if layer.blobs and layer.name not in declared]
    if missing:
        return [f"{what} does not declare {name}'s layers {', '.join(missing)} (unused there)"]
    return []


def _lnet_params(layers: list[Layer], what: str) -> Params:
    """det4's parameters in the canonical LNet layout (:data:`LNET_LAYOUT`): kernels un-transposed
    to OIHW; ``fc4`` (over the five branches' maps, flattened in Caffe's transposed order) as a
    ``(256, 5, 64, 3, 3)`` kernel; PReLU slopes named ``prelu<i>_<k>`` after ``conv<i>_<k>``."""
    params: Params = {}
    for layer in layers:
        shape = LNET_LAYOUT.get(f"{layer.name}.weight")
        if shape is None or layer.weight.size != int(np.prod(shape)):
            raise ModelValidationError(
                f"{what}: layer {layer.name} {tuple(layer.weight.shape)} is not part of the "
                "authors' LNet (det4) architecture"
            )
        if layer.weight.ndim == 4:
            weight = to_oihw(layer.weight, CAFFE_CONVENTION.kernel_layout, what)
        elif len(shape) == 5:  # (out, branch * channel * W * H) in Caffe's transposed order
            weight = layer.weight.reshape(shape).transpose(0, 1, 2, 4, 3)
        else:
            weight = layer.weight
        params[f"{layer.name}.weight"] = np.ascontiguousarray(weight)
        params[f"{layer.name}.bias"] = layer.bias.reshape(-1)
        if layer.prelu is not None:
            params["prelu" + layer.name.removeprefix("conv").removeprefix("fc")] = layer.prelu
    missing = sorted(set(LNET_LAYOUT) - set(params))
    if missing:
        raise ModelValidationError(
            f"{what}: not the authors' LNet (det4) architecture; missing {', '.join(missing)}"
        )
    return params


def _read_one(
    name: str, data: bytes, prototxt: bytes | None, notes: ImporterResult
) -> tuple[str, Params]:
    """One caffemodel: ``(network, canonical params)``; det4 gives ``("lnet", params)``.
    Warnings and extra heads go to ``notes``."""
    parsed = _parse(data, name)
    if prototxt is not None:
        notes.warnings += _check_prototxt(prototxt, parsed, name)
    layers = _layers(parsed, name)
    if sum(layer.prelu is not None for layer in layers) >= _LNET_MIN_BODY:
        notes.warnings.append(
            f"{name} is the landmark-refinement net (LNet, det4): the model includes it and the "
            "detector uses it to refine the five landmarks after O-Net (five more 24x24 patches "
            "per face; boxes and scores do not change). Leave det4 out for a model without it"
        )
        return "lnet", _lnet_params(layers, name)
    net = network_of_conv1(layers[0].outputs, f"{FORMAT}: {name}")
    named, extra = layers_by_structure(net, layers, f"{FORMAT}: {name}")
    for layer in extra:
        key = f"{net}.{layer.name}"
        weight = _matrix(layer.weight, f"{name}: {key}")
        notes.extra_networks[key] = {"weight": weight, "bias": layer.bias}
        notes.warnings.append(
            f"{name}: {NET_TITLES[net]} head {layer.name} ({layer.outputs} outputs) is not part "
            f"of the MTCNN pipeline; kept in extra_networks[{key!r}], not used"
        )
    return net, convert_network(net, named, CAFFE_CONVENTION, FORMAT)


def read_caffe(files: Mapping[str, bytes]) -> ImporterResult:
    """Canonical weights from ``.caffemodel`` files (and optional ``.prototxt``, matched by stem).

    A ``det4`` among them becomes the weights' LNet.

    Raises:
        ModelFormatError: a file that is not a Caffe model, or a network missing.
        ModelValidationError: layers that do not make MTCNN's P-, R- and O-Net (or LNet).
    """
    prototxts = {
        PurePosixPath(name).stem: data for name, data in files.items() if name.endswith(".prototxt")
    }
    notes = ImporterResult()
    networks: dict[str, Params] = {}
    for name in sorted(files):
        if name.endswith(".prototxt"):
            continue
        net, params = _read_one(name, files[name], prototxts.get(PurePosixPath(name).stem), notes)
        if net in networks:
            title = NET_TITLES.get(net, "LNet")
            raise ModelFormatError(f"{FORMAT}: two files hold {title} ({name} is one)")
        networks[net] = params
    lnet = networks.pop("lnet", None)
    weights = assemble(networks, FORMAT, "det1/det2/det3.caffemodel")
    notes.weights = (
        weights if lnet is None else MtcnnWeights(weights.pnet, weights.rnet, weights.onet, lnet)
    )
    return notes
