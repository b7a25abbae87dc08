"""Import ipazc/mtcnn weights: version 1.x (``pnet.lz4`` ...) and 0.1.x (``mtcnn_weights.npy``).

Both hold Keras weight lists (``model.get_weights()``): per layer a kernel (``HWIO`` for a
convolution, ``(in, out)`` for a dense layer), a bias, and the PReLU slopes ``(1, 1, C)`` or
``(C,)`` after it. Conventions (checked against the TensorFlow graph, parameter by parameter):

* **1.x** (``FORMAT_V1``): one joblib pickle per network, lz4-compressed (joblib's lz4 files are a
  plain lz4 frame); kernels in normal image orientation (``HWIO``), RGB; heads in the order
  (reg, prob) and O-Net (reg, landmarks, prob);
* **0.1.x** (``FORMAT_V0``): ``np.save`` of ``{"pnet": [...], "rnet": [...], "onet": [...]}``;
  kernels in the Caffe (transposed-image) orientation, i.e. ``WHIO`` in canonical terms; heads in
  the order (prob, reg[, landmarks]).

In both, the dense layer after the last convolution flattens the feature map in ``(W, H, C)``
order. Heads are recognised by their output size (2, 4, 10), so their order does not matter.
Neither joblib nor ``numpy.load`` is used: :mod:`facefaas.models.safe_pickle` reads the pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lz4.frame

from facefaas.errors import ModelFormatError, ModelValidationError, TooLargeError
from facefaas.models.importers._common import (
    NET_TITLES,
    NETS,
    Convention,
    ImporterResult,
    Layer,
    assemble,
    convert_network,
    float_array,
    layers_by_structure,
    network_of_conv1,
)
from facefaas.models.importers._npy import read_npy
from facefaas.models.safe_pickle import safe_loads
from facefaas.models.weights import Params

__all__ = [
    "FORMAT_V0",
    "FORMAT_V1",
    "LZ4_MAGIC",
    "V0_CONVENTION",
    "V1_CONVENTION",
    "read_ipazc_v0",
    "read_ipazc_v1",
]

FORMAT_V1 = "ipazc-mtcnn-1.0"
FORMAT_V0 = "ipazc-mtcnn-0.1"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
V1_CONVENTION = Convention(kernel_layout="HWIO", dense_out_first=False, flatten="WHC")
V0_CONVENTION = Convention(kernel_layout="WHIO", dense_out_first=False, flatten="WHC")
_MAX_DECOMPRESSED = 64 * 1024 * 1024  # ipazc files are 0.03-1.6 MB decompressed


def _decompress_lz4(data: bytes, what: str, limit: int = _MAX_DECOMPRESSED) -> bytes:
    """One lz4 frame, decompressed to at most ``limit`` bytes (lz4 bombs are refused)."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        out: bytes = decompressor.decompress(data, max_length=limit)
    except RuntimeError as exc:  # lz4 reports corrupt frames as RuntimeError
        raise ModelFormatError(f"{what}: corrupt lz4 data ({exc})") from None
    if not decompressor.eof:
        if len(out) >= limit and not decompressor.needs_input:
            raise TooLargeError(
                f"{what}: decompresses to more than {limit} bytes", limit=limit, unit="bytes"
            )
        raise ModelFormatError(f"{what}: truncated lz4 data")
    if decompressor.unused_data:
        raise ModelFormatError(f"{what}: unexpected bytes after the lz4 frame")
    return out


def _keras_layers(arrays: Any, what: str) -> list[Layer]:
    """Group a Keras weight list into layers: kernel, bias, then PReLU slopes if present."""
    if not isinstance(arrays, Sequence) or isinstance(arrays, str | bytes) or not arrays:
        raise ModelFormatError(f"{what}: expected a list of weight arrays")
    items = [float_array(a, f"{what}[{i}]") for i, a in enumerate(arrays)]
    layers: list[Layer] = []
    i = 0
    while i < len(items):
        kernel = items[i]
        if kernel.ndim not in (2, 4) or i + 1 >= len(items) or items[i + 1].ndim != 1:
            raise ModelValidationError(
                f"{what}[{i}]: expected a kernel followed by a bias, found shape {kernel.shape}"
            )
        bias = items[i + 1]
        i += 2
        prelu = None
        if i < len(items) and items[i].ndim in (1, 3) and items[i].size == bias.size:
            prelu = items[i].reshape(-1)
            i += 1
        layers.append(Layer(f"layer{len(layers)}", kernel, bias, prelu))
    return layers


def _network(arrays: Any, convention: Convention, fmt: str, what: str) -> tuple[str, Params]:
    layers = _keras_layers(arrays, what)
    net = network_of_conv1(layers[0].outputs, f"{fmt}: {what}")
    named, extra = layers_by_structure(net, layers, f"{fmt}: {what}")
    if extra:
        raise ModelValidationError(
            f"{fmt}: {what} ({NET_TITLES[net]}) has heads with "
            f"{', '.join(str(layer.outputs) for layer in extra)} outputs; MTCNN's have "
            "2 (face), 4 (box) and, in O-Net, 10 (landmarks)"
        )
    return net, convert_network(net, named, convention, fmt)


def read_ipazc_v1(files: Mapping[str, bytes]) -> ImporterResult:
    """Canonical weights from ipazc mtcnn 1.x ``pnet.lz4``, ``rnet.lz4``, ``onet.lz4``.

    An uncompressed joblib pickle is accepted too. Which network a file holds is read from its
    first kernel (10, 28 or 32 filters), not its name.
    """
    networks: dict[str, Params] = {}
    for name in sorted(files):
        data = files[name]
        if data.startswith(LZ4_MAGIC):
            data = _decompress_lz4(data, name)
        arrays, _ = safe_loads(data, what=name)
        net, params = _network(arrays, V1_CONVENTION, FORMAT_V1, name)
        if net in networks:
            raise ModelFormatError(f"{FORMAT_V1}: {NET_TITLES[net]} is given twice ({name})")
        networks[net] = params
    return ImporterResult(weights=assemble(networks, FORMAT_V1, "pnet.lz4, rnet.lz4, onet.lz4"))


def read_ipazc_v0(files: Mapping[str, bytes]) -> ImporterResult:
    """Canonical weights from ipazc mtcnn 0.1.x ``mtcnn_weights.npy`` (one file, three nets)."""
    if len(files) != 1:
        raise ModelFormatError(
            f"{FORMAT_V0}: expected one mtcnn_weights.npy, got {len(files)} files"
        )
    ((name, data),) = files.items()
    content = read_npy(data, what=name)
    if not isinstance(content, Mapping) or not set(NETS) <= set(content):
        raise ModelFormatError(
            f"{FORMAT_V0}: {name} must hold a dict with 'pnet', 'rnet' and 'onet' weight lists"
        )
    networks: dict[str, Params] = {}
    for key in NETS:
        net, params = _network(content[key], V0_CONVENTION, FORMAT_V0, f"{name}[{key!r}]")
        if net != key:
            raise ModelValidationError(
                f"{FORMAT_V0}: {name}[{key!r}] holds {NET_TITLES[net]}, not {NET_TITLES[key]}"
            )
        networks[net] = params
    notes = ImporterResult(weights=assemble(networks, FORMAT_V0, name))
    ignored = sorted(str(k) for k in content if k not in NETS)
    if ignored:
        notes.warnings.append(f"{name}: ignored entries {', '.join(ignored)}")
    return notes
