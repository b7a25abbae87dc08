"""The allowlist of :mod:`facefaas.models.safe_pickle`: safe stand-ins for the globals that
weight pickles name (torch tensors and storages, numpy arrays and dtypes, joblib's array wrapper).

Each stand-in only checks its arguments and builds plain data or a placeholder; none of them is
the real numpy/torch/joblib callable.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from facefaas.errors import ModelFormatError

# Only plain numeric dtypes (bool, signed/unsigned integers, floats) become arrays.
_NUMERIC_KINDS = frozenset("biuf")

__all__ = [
    "ALLOWED_GLOBALS",
    "NDARRAY",
    "JoblibArray",
    "PendingArray",
    "PendingDtype",
    "PendingTensor",
    "StorageRef",
    "TorchStorageType",
    "as_shape",
    "element_count",
]


class _Token:
    """A named placeholder for an allowed class that must never be called (``numpy.ndarray``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


NDARRAY = _Token("numpy.ndarray")
_TENSOR_TYPES = {
    "torch.Tensor": _Token("torch.Tensor"),
    "torch.nn.parameter.Parameter": _Token("torch.nn.parameter.Parameter"),
}


@dataclass(frozen=True)
class TorchStorageType:
    """A ``torch.<Kind>Storage`` named in a torch pickle: only its element dtype matters."""

    name: str
    dtype: str  # numpy dtype string, native order fixed later from the file's byte order

    def __call__(self, *args: Any) -> Any:
        raise ModelFormatError(f"pickle calls torch.{self.name}, which is not allowed")


_TORCH_STORAGES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip


@dataclass(frozen=True)
class StorageRef:
    """What a torch persistent id points at: storage ``key`` of ``numel`` elements."""

    key: str
    storage_type: TorchStorageType
    numel: int


@dataclass(frozen=True)
class PendingTensor:
    """A tensor whose storage is read after the pickle: a strided view into ``storage``.

    ``offset``, ``size`` and ``stride`` are in elements, as in ``torch.as_strided``.
    """

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class PendingDtype:
    """``numpy.dtype(name, align, copy)`` as pickled; ``BUILD`` then sets the byte order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.byteorder = "="

    def set_state(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in "<>|=":
            raise ModelFormatError("pickle holds a numpy dtype with an unreadable state")
        if any(part is not None for part in state[2:5]):
            raise ModelFormatError("pickle holds a structured numpy dtype, which is not allowed")
        self.byteorder = state[1]

    def resolve(self, *, allow_object: bool = False) -> np.dtype[Any]:
        return _checked_dtype(self.name, self.byteorder, allow_object=allow_object)


class PendingArray:
    """``numpy.core.multiarray._reconstruct(ndarray, ...)``: an array awaiting its ``BUILD``."""

    def __init__(self) -> None:
        self.array: np.ndarray[Any, Any] | None = None


class JoblibArray:
    """``joblib.numpy_pickle.NumpyArrayWrapper``: its raw bytes follow the ``BUILD`` opcode."""

    state: dict[str, Any]


def _checked_dtype(name: str, byteorder: str = "=", *, allow_object: bool = False) -> np.dtype[Any]:
    if not isinstance(name, str) or len(name) > 8:
        raise ModelFormatError(f"pickle holds a numpy dtype {name!r}, which is not allowed")
    if allow_object and name in ("O8", "O4", "O"):
        return np.dtype(object)
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise ModelFormatError(f"pickle holds an unknown numpy dtype {name!r}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFormatError(
            f"pickle holds a numpy array of dtype {name!r}; only numeric arrays are allowed"
        )
    return dtype.newbyteorder(">" if byteorder == ">" else "<") if byteorder in "<>" else dtype


def as_shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or len(value) > 8:
        raise ModelFormatError(f"pickle: {what} must be a tuple of at most 8 sizes")
    if not all(type(v) is int and v >= 0 for v in value):
        raise ModelFormatError(f"pickle: {what} must hold non-negative integers, got {value!r}")
    return tuple(value)


# --- stand-ins for the allowed globals ---------------------------------------------------------


def _ordered_dict(*args: Any) -> OrderedDict[Any, Any]:
    if args and not (len(args) == 1 and isinstance(args[0], list | tuple)):
        raise ModelFormatError("pickle calls OrderedDict with arguments that are not allowed")
    return OrderedDict(args[0] if args else ())


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> PendingArray:
    if cls is not NDARRAY:
        raise ModelFormatError("pickle reconstructs an array of a class other than numpy.ndarray")
    return PendingArray()


def _make_dtype(name: Any, align: Any = False, copy: Any = False) -> PendingDtype:
    if not isinstance(name, str):
        raise ModelFormatError("pickle builds a numpy dtype from something other than a name")
    _checked_dtype(name, allow_object=True)  # refuse early; the byte order comes with BUILD
    return PendingDtype(name)


def _empty_bytes(*args: Any) -> bytes:
    # Python 3 pickles b"" for protocol 2 as __builtin__.bytes().
    if args:
        raise ModelFormatError("pickle calls bytes() with arguments, which is not allowed")
    return b""


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # Python 3 pickles bytes for protocol 2 as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelFormatError("pickle calls _codecs.encode with arguments that are not allowed")
    return text.encode("latin1")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> PendingTensor:
    if not isinstance(storage, StorageRef):
        raise ModelFormatError("pickle rebuilds a tensor from something that is not a storage")
    if type(offset) is not int or offset < 0:
        raise ModelFormatError(f"pickle: tensor storage offset {offset!r} is not allowed")
    shape = as_shape(size, "tensor size")
    strides = as_shape(stride, "tensor stride")
    if len(shape) != len(strides):
        raise ModelFormatError("pickle: tensor size and stride differ in length")
    return PendingTensor(storage, offset, shape, strides)


def _rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None, *_: Any) -> Any:
    if not isinstance(data, PendingTensor):
        raise ModelFormatError("pickle rebuilds a parameter from something that is not a tensor")
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter) or new_type not in _TENSOR_TYPES.values():
        raise ModelFormatError("pickle rebuilds a tensor subclass, which is not allowed")
    if not isinstance(args, tuple):
        raise ModelFormatError("pickle: tensor arguments must be a tuple")
    return func(*args)


def _scalar(dtype: Any, data: Any) -> Any:
    if not isinstance(dtype, PendingDtype) or not isinstance(data, bytes):
        raise ModelFormatError("pickle builds a numpy scalar from arguments that are not allowed")
    real = dtype.resolve()
    if len(data) != real.itemsize:
        raise ModelFormatError("pickle: numpy scalar has the wrong number of bytes")
    return np.frombuffer(data, dtype=real)[0].item()


_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")

# (module, name) -> stand-in. Nothing else is resolved, whatever the file asks for.
ALLOWED_GLOBALS: Mapping[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): _make_dtype,
    **{(module, "_reconstruct"): _reconstruct for module in _NUMPY_MODULES},
    **{(module, "scalar"): _scalar for module in _NUMPY_MODULES},
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): JoblibArray,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _TENSOR_TYPES["torch.Tensor"],
    ("torch.nn.parameter", "Parameter"): _TENSOR_TYPES["torch.nn.parameter.Parameter"],
    **{("torch", name): TorchStorageType(name, dt) for name, dt in _TORCH_STORAGES.items()},
}


def element_count(shape: tuple[int, ...]) -> int:
    """Number of elements of an array of ``shape`` (exact: Python integers never overflow)."""
    return math.prod(shape)
