"""What every importer shares: its result type, MTCNN's layer names, and layout conversions.

Layouts are strings naming the axes of an array in storage order, e.g. ``"OIWH"`` (Caffe: the
image is transposed, so its "height" axis runs along the canonical width) or ``"HWIO"`` (Keras).
:func:`to_oihw` reorders any of them to the canonical ``OIHW``. Fully connected layers over the
last feature map are given as matrices whose input axis is a flattened ``(C, H, W)`` in some
order; :func:`fc_to_conv` turns them into the canonical 3x3 convolution kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import NETWORK_LAYOUT, MtcnnWeights, Params

__all__ = [
    "BODY",
    "FC_OVER_MAP",
    "HEADS",
    "NETS",
    "NET_TITLES",
    "Convention",
    "ImporterResult",
    "Layer",
    "assemble",
    "convert_network",
    "fc_to_conv",
    "float_array",
    "layers_by_structure",
    "network_of_conv1",
    "to_oihw",
]

NETS = ("pnet", "rnet", "onet")
NET_TITLES = {"pnet": "P-Net", "rnet": "R-Net", "onet": "O-Net"}
# Layers followed by a PReLU, in order (prelu{i} follows the i-th), and heads by output size.
BODY: Mapping[str, tuple[str, ...]] = {
    "pnet": ("conv1", "conv2", "conv3"),
    "rnet": ("conv1", "conv2", "conv3", "fc4"),
    "onet": ("conv1", "conv2", "conv3", "conv4", "fc5"),
}
HEADS: Mapping[str, Mapping[int, str]] = {
    "pnet": {2: "conv4_1", 4: "conv4_2"},
    "rnet": {2: "fc5_1", 4: "fc5_2"},
    "onet": {2: "fc6_1", 4: "fc6_2", 10: "fc6_3"},
}
FC_OVER_MAP = {"rnet": "fc4", "onet": "fc5"}  # fully connected over the final 3x3 feature map
_MAP_SIDE = 3
_CONV1_FILTERS = {10: "pnet", 28: "rnet", 32: "onet"}


@dataclass
class ImporterResult:
    """What an importer read: canonical weights, notes for the user, extra networks the file
    holds beyond P/R/O-Net (e.g. Caffe's ``det4``), and the file's own manifest if it has one."""

    weights: MtcnnWeights | None = None  # None only while an importer fills it in
    warnings: list[str] = field(default_factory=list)
    extra_networks: dict[str, Params] = field(default_factory=dict)
    manifest: ModelManifest | None = None


def float_array(value: Any, what: str) -> npt.NDArray[np.float32]:
    """``value`` as a float32 array; refuses non-arrays and non-floating dtypes."""
    if not isinstance(value, np.ndarray):
        raise ModelFormatError(f"{what}: expected an array, found a {type(value).__name__}")
    if value.dtype.kind != "f":
        raise ModelFormatError(f"{what}: dtype {value.dtype} is not a floating-point type")
    return np.ascontiguousarray(value, dtype=np.float32)


def to_oihw(array: npt.NDArray[np.float32], layout: str, what: str) -> npt.NDArray[np.float32]:
    """Reorder a 4-D kernel stored in ``layout`` (a permutation of ``"OIHW"``) to ``OIHW``."""
    if array.ndim != 4:
        raise ModelValidationError(f"{what}: expected a 4-D kernel, got shape {array.shape}")
    return np.ascontiguousarray(array.transpose([layout.index(axis) for axis in "OIHW"]))


def fc_to_conv(
    matrix: npt.NDArray[np.float32], *, out_first: bool, flatten: str, what: str
) -> npt.NDArray[np.float32]:
    """A fully connected layer over the last ``3x3`` feature map as an ``OIHW`` kernel.

    ``matrix`` is ``(out, in)`` when ``out_first`` else ``(in, out)``; its input axis is the
    feature map flattened in ``flatten`` order (a permutation of ``"CHW"``, e.g. ``"WHC"``).
    """
    if matrix.ndim != 2:
        raise ModelValidationError(f"{what}: expected a matrix, got shape {matrix.shape}")
    weight = matrix if out_first else matrix.T
    outputs, inputs = weight.shape
    if inputs % (_MAP_SIDE * _MAP_SIDE):
        raise ModelValidationError(f"{what}: {inputs} inputs is not a 3x3 feature map")
    sizes = {"C": inputs // (_MAP_SIDE * _MAP_SIDE), "H": _MAP_SIDE, "W": _MAP_SIDE}
    shaped = weight.reshape(outputs, *(sizes[axis] for axis in flatten))
    return to_oihw(shaped, "O" + flatten.replace("C", "I"), what)


def network_of_conv1(filters: int, what: str) -> str:
    """Which network a file is, from its first convolution's filter count (10, 28 or 32)."""
    net = _CONV1_FILTERS.get(filters)
    if net is None:
        raise ModelValidationError(
            f"{what}: the first convolution has {filters} filters; MTCNN's P-, R- and O-Net "
            "have 10, 28 and 32"
        )
    return net


def assemble(networks: Mapping[str, Params], fmt: str, hint: str) -> MtcnnWeights:
    """:class:`MtcnnWeights` from the three networks, naming any that is missing.

    ``hint`` says which files hold the networks in this format, for the error message.
    """
    missing = [NET_TITLES[net] for net in NETS if net not in networks]
    if missing:
        raise ModelFormatError(
            f"{fmt}: missing {', '.join(missing)}; this format needs {hint} together "
            "(as a folder, a zip, or several files)"
        )
    for net in NETS:
        expected, got = set(NETWORK_LAYOUT[net]), set(networks[net])
        if expected != got:
            raise ModelValidationError(
                f"{fmt}: {NET_TITLES[net]} is not MTCNN's architecture"
                + (f"; missing {', '.join(sorted(expected - got))}" if expected - got else "")
                + (f"; unexpected {', '.join(sorted(got - expected))}" if got - expected else "")
            )
    return MtcnnWeights(**{net: dict(networks[net]) for net in NETS})


@dataclass(frozen=True)
class Layer:
    """One convolution or fully connected layer as stored, with the PReLU slopes after it."""

    name: str
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    prelu: npt.NDArray[np.float32] | None = None

    @property
    def outputs(self) -> int:
        return int(self.bias.size)


@dataclass(frozen=True)
class Convention:
    """How a format stores layers: the 4-D kernel layout (e.g. ``"HWIO"``), whether matrices are
    ``(out, in)``, and the order in which the last feature map is flattened (e.g. ``"WHC"``)."""

    kernel_layout: str
    dense_out_first: bool
    flatten: str


def layers_by_structure(
    net: str, layers: list[Layer], fmt: str
) -> tuple[dict[str, Layer], list[Layer]]:
    """Name a network's layers by structure: the ones followed by a PReLU are the body, in order;
    the others are heads, told apart by output size (2 face logits, 4 box offsets, 10 landmark
    coordinates). Returns the named layers and the extra heads MTCNN does not use."""
    body = [layer for layer in layers if layer.prelu is not None]
    if len(body) != len(BODY[net]):
        raise ModelValidationError(
            f"{fmt}: {NET_TITLES[net]} has {len(body)} layers followed by a PReLU; "
            f"MTCNN's has {len(BODY[net])}"
        )
    named = dict(zip(BODY[net], body, strict=True))
    extra: list[Layer] = []
    for layer in layers:
        if layer.prelu is not None:
            continue
        head = HEADS[net].get(layer.outputs)
        if head is None:
            extra.append(layer)
        elif head in named:
            raise ModelValidationError(
                f"{fmt}: {NET_TITLES[net]} has two heads with {layer.outputs} outputs"
            )
        else:
            named[head] = layer
    return named, extra


def convert_network(
    net: str, layers: Mapping[str, Layer], convention: Convention, fmt: str
) -> Params:
    """Canonical parameters of one network from its named layers stored in ``convention``."""
    params: Params = {}
    for index, name in enumerate(BODY[net], start=1):
        layer = layers.get(name)
        if layer is not None and layer.prelu is not None:
            params[f"prelu{index}"] = layer.prelu.reshape(-1)
    for name, layer in layers.items():
        what = f"{fmt}: {NET_TITLES[net]} {layer.name}"
        if layer.weight.ndim == 4:
            weight = to_oihw(layer.weight, convention.kernel_layout, what)
        elif name == FC_OVER_MAP.get(net):
            weight = fc_to_conv(
                layer.weight,
                out_first=convention.dense_out_first,
                flatten=convention.flatten,
                what=what,
            )
        elif layer.weight.ndim == 2:
            weight = layer.weight if convention.dense_out_first else layer.weight.T
        else:
            raise ModelValidationError(f"{what}: weight of shape {layer.weight.shape}")
        params[f"{name}.weight"] = np.ascontiguousarray(weight)
        params[f"{name}.bias"] = layer.bias.reshape(-1)
    return params
