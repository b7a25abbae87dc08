"""Read ``torch.save`` files without torch, through the restricted unpickler.

Two layouts exist:

* **legacy** (torch < 1.6, and ``_use_new_zipfile_serialization=False``): five things one after
  another: the pickled magic number ``0x1950a86a20f9469cfc6c``, the protocol version ``1001``, a
  ``sys_info`` dict (byte order, C type sizes), the pickled object whose tensors name their
  storages by persistent id ``("storage", type, key, location, numel, view)``, the pickled list of
  storage keys; then, per key in that order, an ``int64`` element count and the raw elements;
* **zip** (torch >= 1.6): ``<archive>/data.pkl`` (the object, persistent ids
  ``("storage", type, key, location, numel)``), ``<archive>/data/<key>`` (raw elements) and
  ``<archive>/byteorder`` (``little`` or ``big``, absent in old files = little).

Tensors become C-contiguous numpy arrays.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelFormatError, TooLargeError
from facefaas.models._pickle_allowlist import element_count
from facefaas.models.archive import is_zip, read_zip
from facefaas.models.safe_pickle import (
    DEFAULT_MAX_ELEMENTS,
    PendingTensor,
    StorageRef,
    TorchStorageType,
    resolve_tensors,
    safe_loads,
)

__all__ = ["LEGACY_MAGIC", "is_torch_file", "read_torch_file"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_ZIP_ENTRIES = 4096
_LEGACY_PROTOCOL = 1001
# A protocol-2 pickle of LEGACY_MAGIC: PROTO 2, LONG1 of 10 bytes, then the number little-endian.
_LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")


def is_torch_file(data: bytes) -> bool:
    """Cheap check: a legacy torch pickle, or a zip with a ``data.pkl``."""
    if data.startswith(_LEGACY_PREFIX):
        return True
    return is_zip(data) and b"data.pkl" in data[:4096]


def _persistent_id(pid: tuple[Any, ...]) -> StorageRef:
    if len(pid) < 5 or pid[0] != "storage":
        raise ModelFormatError(f"unknown persistent id kind {pid[:1]!r}")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, TorchStorageType):
        raise ModelFormatError("a tensor storage of an unknown type")
    if not isinstance(key, str) or type(numel) is not int or numel < 0:
        raise ModelFormatError("a malformed tensor storage reference")
    if len(pid) > 5 and pid[5] is not None:
        raise ModelFormatError("storage views (torch < 0.4 files) are not supported")
    return StorageRef(key, storage_type, numel)


def _itemsize(ref: StorageRef) -> int:
    code = ref.storage_type.dtype
    return 2 if code == "bf16" else np.dtype(code).itemsize


def _storage_array(raw: bytes, ref: StorageRef, little: bool, what: str) -> npt.NDArray[Any]:
    code = ref.storage_type.dtype
    itemsize = _itemsize(ref)
    if len(raw) != ref.numel * itemsize:
        raise ModelFormatError(
            f"{what}: storage {ref.key} has {len(raw)} bytes, expected {ref.numel * itemsize}"
        )
    order: Literal["<", ">"] = "<" if little else ">"
    if code == "bf16":  # bfloat16 is the top half of a float32
        halves = np.frombuffer(raw, dtype=f"{order}u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(code).newbyteorder(order))


class _Tensors:
    """Turns :class:`PendingTensor` views into arrays, within an element budget."""

    def __init__(self, storages: Mapping[str, npt.NDArray[Any]], max_elements: int) -> None:
        self.storages = storages
        self.left = max_elements
        self.limit = max_elements

    def __call__(self, t: PendingTensor) -> npt.NDArray[Any]:
        storage = self.storages.get(t.storage.key)
        if storage is None:
            raise ModelFormatError(f"a tensor refers to storage {t.storage.key!r}, not in the file")
        count = element_count(t.size)
        self.left -= count
        if self.left < 0:
            raise TooLargeError(
                f"the tensors hold more than {self.limit} elements", limit=self.limit,
                unit="elements",
            )  # fmt: skip
        if count == 0:
            return np.zeros(t.size, dtype=storage.dtype.newbyteorder("="))
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
        if last >= storage.size:
            raise ModelFormatError(
                f"a tensor of size {t.size} reads past the end of storage {t.storage.key!r}"
            )
        view = np.lib.stride_tricks.as_strided(
            storage[t.offset :],
            shape=t.size,
            strides=[s * storage.itemsize for s in t.stride],
            writeable=False,
        )
        return np.ascontiguousarray(view, dtype=storage.dtype.newbyteorder("="))


def _read_legacy(data: bytes, what: str, max_elements: int) -> Any:
    pos = 0

    def next_pickle(**kwargs: Any) -> Any:
        nonlocal pos
        obj, used = safe_loads(data[pos:], what=what, max_elements=max_elements, **kwargs)
        pos += used
        return obj

    if next_pickle() != LEGACY_MAGIC or next_pickle() != _LEGACY_PROTOCOL:
        raise ModelFormatError(f"{what}: not a torch file of the legacy (protocol 1001) format")
    sys_info = next_pickle()
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    refs: dict[str, StorageRef] = {}

    def persistent_load(pid: tuple[Any, ...]) -> StorageRef:
        ref = _persistent_id(pid)
        refs[ref.key] = ref
        return ref

    obj = next_pickle(persistent_load=persistent_load)
    keys = next_pickle()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelFormatError(f"{what}: the storage key list is malformed")
    storages: dict[str, npt.NDArray[Any]] = {}
    for key in keys:
        ref = refs.get(key)
        if ref is None or key in storages:
            raise ModelFormatError(f"{what}: storage {key!r} is not used by any tensor")
        if len(data) < pos + 8:
            raise ModelFormatError(f"{what}: truncated before storage {key!r}")
        (numel,) = struct.unpack_from("<q" if little else ">q", data, pos)
        if numel != ref.numel:
            raise ModelFormatError(f"{what}: storage {key!r} has {numel} elements, not {ref.numel}")
        end = pos + 8 + numel * _itemsize(ref)
        storages[key] = _storage_array(data[pos + 8 : end], ref, little, what)
        pos = end
    if pos != len(data):
        raise ModelFormatError(f"{what}: {len(data) - pos} unexpected bytes after the storages")
    return resolve_tensors(obj, _Tensors(storages, max_elements))


def _read_zip(data: bytes, what: str, max_elements: int) -> Any:
    # One entry per storage (a checkpoint with optimizer state has hundreds); torch stores them
    # uncompressed, so twice the file is room enough and bounds a bomb.
    files = read_zip(
        data, what=what, max_entries=_MAX_ZIP_ENTRIES, max_total_bytes=2 * len(data) + (1 << 20)
    )
    pickles = [name for name in files if name.rsplit("/", 1)[-1] == "data.pkl"]
    if len(pickles) != 1:
        raise ModelFormatError(f"{what}: a torch zip file holds exactly one data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    little = files.get(f"{prefix}byteorder", b"little").strip() != b"big"
    refs: dict[str, StorageRef] = {}

    def persistent_load(pid: tuple[Any, ...]) -> StorageRef:
        ref = _persistent_id(pid)
        refs[ref.key] = ref
        return ref

    obj, _ = safe_loads(
        files[pickles[0]], what=what, max_elements=max_elements, persistent_load=persistent_load
    )
    storages: dict[str, npt.NDArray[Any]] = {}
    for key, ref in refs.items():
        raw = files.get(f"{prefix}data/{key}")
        if raw is None:
            raise ModelFormatError(f"{what}: storage data/{key} is missing")
        storages[key] = _storage_array(raw, ref, little, what)
    return resolve_tensors(obj, _Tensors(storages, max_elements))


def read_torch_file(
    data: bytes, *, what: str = "torch file", max_elements: int = DEFAULT_MAX_ELEMENTS
) -> Any:
    """The object a ``torch.save`` file holds, tensors as numpy arrays (module docstring).

    Raises:
        ModelFormatError: not a torch file, malformed, or a pickle asking for anything outside
            :data:`facefaas.models.safe_pickle.ALLOWED_GLOBALS` (e.g. a whole ``nn.Module``).
        TooLargeError: more than ``max_elements`` tensor elements.
    """
    if is_zip(data):
        return _read_zip(data, what, max_elements)
    if data.startswith(_LEGACY_PREFIX):
        return _read_legacy(data, what, max_elements)
    raise ModelFormatError(f"{what}: not a torch file (neither the zip nor the legacy format)")
