"""Read a ``.npy`` file without ``numpy.load``: the header is parsed here, and an object array
(what ``np.save`` writes for a dict) goes through the restricted unpickler.

Format (numpy's ``format.py``): ``\\x93NUMPY``, major and minor version bytes, the header length
(``<u2`` in version 1, ``<u4`` in 2 and 3), a Python-literal dict ``{'descr', 'fortran_order',
'shape'}``, then the raw data or, for ``descr == '|O'``, a pickle of the whole array.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from facefaas.errors import ModelFormatError, TooLargeError
from facefaas.models.safe_pickle import DEFAULT_MAX_ELEMENTS, safe_loads

__all__ = ["NPY_MAGIC", "read_npy"]

NPY_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 64 * 1024


def _header(data: bytes, what: str) -> tuple[dict[str, Any], int]:
    if not data.startswith(NPY_MAGIC) or len(data) < 10:
        raise ModelFormatError(f"{what}: not a .npy file")
    major = data[6]
    if major == 1:
        length, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        length, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise ModelFormatError(f"{what}: .npy format version {major} is not supported")
    if length > _MAX_HEADER or start + length > len(data):
        raise ModelFormatError(f"{what}: the .npy header is truncated or too long")
    text = data[start : start + length].decode("utf-8" if major == 3 else "latin1")
    try:
        header = ast.literal_eval(text)  # literals only: no names, calls or attributes
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ModelFormatError(f"{what}: the .npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ModelFormatError(f"{what}: the .npy header lacks descr, fortran_order or shape")
    return header, start + length


def read_npy(
    data: bytes, *, what: str = "npy file", max_elements: int = DEFAULT_MAX_ELEMENTS
) -> Any:
    """The array a ``.npy`` file holds; for an object array of shape ``()`` (``np.save`` of a
    dict), the object itself, read with :func:`~facefaas.models.safe_pickle.safe_loads`."""
    header, offset = _header(data, what)
    descr, shape, fortran = header["descr"], header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise ModelFormatError(f"{what}: the .npy shape {shape!r} is not a tuple of sizes")
    count = math.prod(shape)
    if count > max_elements:
        raise TooLargeError(
            f"{what}: {count} elements, more than {max_elements}", limit=max_elements,
            unit="elements",
        )  # fmt: skip
    if descr == "|O":
        array, _ = safe_loads(data[offset:], what=what, max_elements=max_elements)
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise ModelFormatError(f"{what}: the pickled array does not match the .npy header")
        return array.item() if shape == () else array
    if not isinstance(descr, str) or descr[1:] not in ("f2", "f4", "f8") or descr[0] not in "<>|=":
        raise ModelFormatError(f"{what}: .npy dtype {descr!r} is not a float type")
    dtype = np.dtype(descr)
    raw = data[offset:]
    if len(raw) != count * dtype.itemsize:
        raise ModelFormatError(f"{what}: {len(raw)} data bytes for shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()
