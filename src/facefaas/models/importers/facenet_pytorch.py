"""Import facenet-pytorch MTCNN state dicts (``pnet.pt``, ``rnet.pt``, ``onet.pt``) without torch.

Files are read by :mod:`._torchfile` (legacy and zip ``torch.save`` formats) through the restricted
unpickler, so a file holding anything but tensors in dicts is refused. Accepted contents:

* a state dict of one network (``conv1.weight``, ``prelu1.weight``, ..., ``dense5_1.weight``);
* the state dict of a whole ``facenet_pytorch.MTCNN`` (keys prefixed ``pnet.``/``rnet.``/``onet.``);
* a training checkpoint with such a dict under ``state_dict`` or ``model_state_dict``.

Conventions (checked against the TensorFlow graph, parameter by parameter): kernels ``OIHW`` in
normal image orientation (the Caffe kernels with H and W swapped), RGB; ``dense4``/``dense5``
flatten the feature map in ``(W, H, C)`` order (the model permutes before flattening); heads are
already in canonical order. The networks' forward passes return (reg, prob) and O-Net
(reg, landmarks, prob), but the state dict names each head, so that order does not matter here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.importers._common import (
    BODY,
    HEADS,
    NET_TITLES,
    Convention,
    ImporterResult,
    Layer,
    assemble,
    convert_network,
    float_array,
    network_of_conv1,
)
from facefaas.models.importers._torchfile import read_torch_file
from facefaas.models.weights import Params

__all__ = ["FACENET_CONVENTION", "FORMAT", "read_facenet_pytorch"]

FORMAT = "facenet-pytorch"
FACENET_CONVENTION = Convention(kernel_layout="OIHW", dense_out_first=True, flatten="WHC")
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict")
_PREFIXED = re.compile(r"^(pnet|rnet|onet)\.(.+)$")


def _source_name(canonical: str) -> str:
    """facenet-pytorch's module name of a canonical layer (``fc4`` -> ``dense4``)."""
    return canonical.replace("fc", "dense") if canonical.startswith("fc") else canonical


def _state_dicts(obj: Any, name: str, notes: ImporterResult) -> list[dict[str, Any]]:
    """The per-network state dicts in one file's object."""
    if not isinstance(obj, Mapping):
        raise ModelFormatError(f"{name}: holds a {type(obj).__name__}, not a state dict")
    for key in _CHECKPOINT_KEYS:
        if isinstance(obj.get(key), Mapping):
            notes.warnings.append(f"{name}: a training checkpoint; read its {key!r}")
            obj = obj[key]
            break
    if not all(isinstance(key, str) for key in obj):
        raise ModelFormatError(f"{name}: a state dict's keys must be strings")
    prefixed: dict[str, dict[str, Any]] = {}
    for key, value in obj.items():
        match = _PREFIXED.match(key)
        if match:
            prefixed.setdefault(match.group(1), {})[match.group(2)] = value
    if prefixed and sum(len(d) for d in prefixed.values()) == len(obj):
        return list(prefixed.values())
    return [dict(obj)]


def _network(state: dict[str, Any], name: str) -> tuple[str, Params]:
    if "conv1.weight" not in state:
        raise ModelValidationError(f"{FORMAT}: {name} has no conv1.weight: not an MTCNN network")
    conv1 = float_array(state["conv1.weight"], f"{name}: conv1.weight")
    net = network_of_conv1(conv1.shape[0] if conv1.ndim else 0, f"{FORMAT}: {name}")
    used: set[str] = set()

    def take(key: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        if key not in state:
            raise ModelValidationError(f"{FORMAT}: {name} ({NET_TITLES[net]}) has no {key}")
        used.add(key)
        return float_array(state[key], f"{name}: {key}")

    layers: dict[str, Layer] = {}
    for index, canonical in enumerate(BODY[net], start=1):
        src = _source_name(canonical)
        layers[canonical] = Layer(
            src, take(f"{src}.weight"), take(f"{src}.bias"), take(f"prelu{index}.weight")
        )
    for head in HEADS[net].values():
        src = _source_name(head)
        layers[head] = Layer(src, take(f"{src}.weight"), take(f"{src}.bias"))
    unexpected = sorted(set(state) - used)
    if unexpected:
        raise ModelValidationError(
            f"{FORMAT}: {name} ({NET_TITLES[net]}) has parameters MTCNN does not: "
            + ", ".join(unexpected[:8])
        )
    return net, convert_network(net, layers, FACENET_CONVENTION, FORMAT)


def read_facenet_pytorch(files: Mapping[str, bytes]) -> ImporterResult:
    """Canonical weights from facenet-pytorch ``.pt`` state dicts (module docstring).

    Raises:
        ModelFormatError: not a torch file, a pickle asking for code, or a network missing.
        ModelValidationError: parameters that do not make MTCNN's networks.
        TooLargeError: a file with more tensor elements than allowed.
    """
    notes = ImporterResult()
    networks: dict[str, Params] = {}
    for name in sorted(files):
        obj = read_torch_file(files[name], what=name)
        for state in _state_dicts(obj, name, notes):
            net, params = _network(state, name)
            if net in networks:
                raise ModelFormatError(f"{FORMAT}: {NET_TITLES[net]} is given twice ({name})")
            networks[net] = params
    notes.weights = assemble(networks, FORMAT, "pnet.pt, rnet.pt, onet.pt")
    return notes
