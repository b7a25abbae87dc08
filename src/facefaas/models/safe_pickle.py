"""A restricted unpickler for the weight files MTCNNs are saved in (torch, joblib, numpy pickles).

A pickle is a program: the standard unpickler calls whatever callable the file names, so loading
an untrusted ``.pt``, ``.lz4`` or ``.npy`` with it runs the uploader's code. :func:`safe_loads`
reads the same files with a pure-Python unpickler that

* resolves only an explicit allowlist of globals (:data:`ALLOWED_GLOBALS`), each mapped to a
  stand-in (:mod:`facefaas.models._pickle_allowlist`) that only builds plain data: ``dict``,
  ``list``, numeric ``numpy`` arrays (never the real numpy/torch/joblib callables); anything
  else is refused with
  :class:`~facefaas.errors.ModelFormatError` before anything is called;
* sets state (``BUILD``) and creates objects (``NEWOBJ``) only on its own stand-in types, and
  refuses ``INST``/``OBJ``/``NEWOBJ_EX``/extension-registry opcodes outright;
* bounds the number of array elements it allocates and the nesting depth of the result.

Torch tensors need their storages, which live outside the pickle: the caller passes
``persistent_load`` (see :mod:`facefaas.models.importers._torchfile`); tensors come back as
:class:`PendingTensor` and are turned into arrays by :func:`resolve_tensors`.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from facefaas.errors import FacefaasError, ModelFormatError, TooLargeError
from facefaas.models._pickle_allowlist import (
    ALLOWED_GLOBALS,
    NDARRAY,
    JoblibArray,
    PendingArray,
    PendingDtype,
    PendingTensor,
    StorageRef,
    TorchStorageType,
    as_shape,
    element_count,
)

__all__ = [
    "ALLOWED_GLOBALS",
    "DEFAULT_MAX_ELEMENTS",
    "MAX_DEPTH",
    "PendingTensor",
    "StorageRef",
    "TorchStorageType",
    "resolve_tensors",
    "safe_loads",
]

DEFAULT_MAX_ELEMENTS = 16 * 1024 * 1024  # array elements per file (64 MiB of float32)
MAX_DEPTH = 16  # MTCNN weight files nest 2-3 levels; deeper is not a weight file


class _SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every code-running path closed (module docstring)."""

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: RUF012 (pickle looks it up on the class)
    # set by pickle._Unpickler.load (undeclared in typeshed)
    stack: list[Any]
    append: Callable[[Any], None]
    read: Callable[[int], bytes]

    def __init__(
        self,
        data: bytes,
        *,
        persistent_load: Callable[[tuple[Any, ...]], Any] | None,
        max_elements: int,
    ) -> None:
        self._stream = io.BytesIO(data)
        super().__init__(self._stream, encoding="latin1")
        self._persistent = persistent_load
        self._elements_left = max_elements
        self._max_elements = max_elements

    def find_class(self, module: str, name: str) -> Any:
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is None:
            raise ModelFormatError(
                f"pickle asks for {module}.{name}, which is not allowed: only plain weights "
                "(arrays, tensors, lists and dicts of them) can be imported"
            )
        return stand_in

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None or not isinstance(pid, tuple):
            raise ModelFormatError("pickle refers to external objects, which is not allowed here")
        return self._persistent(pid)

    def count_elements(self, count: int) -> None:
        self._elements_left -= count
        if self._elements_left < 0:
            raise TooLargeError(
                f"pickle holds more than {self._max_elements} array elements",
                limit=self._max_elements, unit="elements",
            )  # fmt: skip

    # --- opcode handlers ---------------------------------------------------------------------

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, PendingDtype):
            inst.set_state(state)
        elif isinstance(inst, PendingArray):
            inst.array = _array_from_state(state, self)
            self.stack[-1] = inst.array
        elif isinstance(inst, JoblibArray):
            if not isinstance(state, dict):
                raise ModelFormatError("pickle: joblib array wrapper without a state dict")
            inst.state = state
            self.stack[-1] = _read_joblib_array(inst, self)
        elif isinstance(inst, OrderedDict):
            pass  # torch state dicts carry `_metadata` (versions of modules): not needed
        else:
            raise ModelFormatError(
                f"pickle sets the state of a {type(inst).__name__}, which is not allowed"
            )

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not JoblibArray or not (isinstance(args, tuple) and not args):
            raise ModelFormatError("pickle creates an object of a type that is not allowed")
        self.append(JoblibArray())

    def _load_bytearray8(self) -> None:
        # pickle's own handler allocates the declared size first: 20 bytes could ask for 1 TB.
        (size,) = struct.unpack("<Q", self.read(8))
        data = self.read(size)  # at most what the stream holds
        if len(data) != size:
            raise ModelFormatError(f"pickle: a bytearray of {size} bytes is truncated")
        self.append(bytearray(data))

    def _refuse(self) -> None:
        raise ModelFormatError(
            "pickle uses an opcode that can create arbitrary objects, which is not allowed"
        )


_SafeUnpickler.dispatch[pickle.BUILD[0]] = _SafeUnpickler._load_build  # type: ignore[assignment]
_SafeUnpickler.dispatch[pickle.NEWOBJ[0]] = _SafeUnpickler._load_newobj  # type: ignore[assignment]
_SafeUnpickler.dispatch[pickle.BYTEARRAY8[0]] = _SafeUnpickler._load_bytearray8  # type: ignore[assignment]
for _opcode in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX, pickle.EXT1, pickle.EXT2, pickle.EXT4):
    _SafeUnpickler.dispatch[_opcode[0]] = _SafeUnpickler._refuse  # type: ignore[assignment]


def _array_from_state(state: Any, unpickler: _SafeUnpickler) -> np.ndarray[Any, Any]:
    """``ndarray.__setstate__((version, shape, dtype, is_fortran, data))`` done safely."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise ModelFormatError("pickle: numpy array state is not (version, shape, dtype, ...)")
    shape, dtype, fortran, data = state[-4:]
    shape = as_shape(shape, "array shape")
    if not isinstance(dtype, PendingDtype):
        raise ModelFormatError("pickle: numpy array state without a numpy dtype")
    real = dtype.resolve(allow_object=True)
    count = element_count(shape)
    unpickler.count_elements(count)
    if real.hasobject:
        if not isinstance(data, list) or len(data) != count:
            raise ModelFormatError("pickle: object array state does not hold its items")
        array = np.empty(count, dtype=object)
        for i, item in enumerate(data):
            array[i] = item
    else:
        if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
            data = data.encode("latin1")
        if not isinstance(data, bytes | bytearray) or len(data) != count * real.itemsize:
            raise ModelFormatError(f"pickle: numpy array of shape {shape} has the wrong byte count")
        array = np.frombuffer(bytes(data), dtype=real).copy()
    return array.reshape(shape, order="F" if fortran else "C")


def _read_joblib_array(wrapper: JoblibArray, unpickler: _SafeUnpickler) -> np.ndarray[Any, Any]:
    """Read the raw array bytes joblib writes right after a ``NumpyArrayWrapper``'s state."""
    state = wrapper.state
    if state.get("subclass") is not NDARRAY:
        raise ModelFormatError("joblib pickle holds an array subclass, which is not allowed")
    dtype = state.get("dtype")
    if not isinstance(dtype, PendingDtype):
        raise ModelFormatError("joblib pickle: array wrapper without a numpy dtype")
    real = dtype.resolve()  # object arrays would nest a second, unrestricted pickle: refused
    shape = as_shape(state.get("shape"), "array shape")
    order = state.get("order", "C")
    if order not in ("C", "F"):
        raise ModelFormatError(f"joblib pickle: array order {order!r} is not C or F")
    count = element_count(shape)
    unpickler.count_elements(count)
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = unpickler.read(1)
        if len(padding) != 1 or padding[0] > 64:
            raise ModelFormatError("joblib pickle: bad array alignment padding")
        unpickler.read(padding[0])
    nbytes = count * real.itemsize
    raw = unpickler.read(nbytes)
    if len(raw) != nbytes:
        raise ModelFormatError(f"joblib pickle: array of shape {shape} is truncated")
    array = np.frombuffer(raw, dtype=real).copy()
    if order == "F":
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def safe_loads(
    data: bytes,
    *,
    persistent_load: Callable[[tuple[Any, ...]], Any] | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    what: str = "file",
) -> tuple[Any, int]:
    """Unpickle ``data`` with the restricted unpickler.

    Returns the object (dicts, lists, tuples, numbers, strings, bytes, numpy arrays, and
    :class:`PendingTensor` where torch tensors were) and the number of bytes the pickle used
    (files such as torch's legacy format put more pickles after it).

    Raises:
        ModelFormatError: not a pickle, a truncated one, one that asks for anything outside the
            allowlist (the message names what was asked for), or one whose result is cyclic or
            nests deeper than :data:`MAX_DEPTH`. ``what`` prefixes every message.
        TooLargeError: the arrays hold more than ``max_elements`` elements.
    """
    unpickler = _SafeUnpickler(data, persistent_load=persistent_load, max_elements=max_elements)
    try:
        obj = unpickler.load()
        return _Finalizer().run(obj), unpickler._stream.tell()
    except FacefaasError as exc:
        exc.message = f"{what}: {exc.message}"
        exc.args = (exc.message,)
        raise
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ModelFormatError(f"{what}: not a readable pickle ({exc or 'truncated'})") from None
    except struct.error:  # a fixed-size argument (BININT, BINFLOAT, FRAME, ...) cut short
        raise ModelFormatError(f"{what}: not a readable pickle (truncated)") from None
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError) as exc:
        # The stand-ins validate their arguments; these come from malformed opcode sequences
        # (e.g. calling a number, popping an empty stack, an unhashable dict key).
        raise ModelFormatError(f"{what}: malformed pickle ({type(exc).__name__}: {exc})") from None


_LEAVES = (type(None), bool, int, float, str, bytes, PendingTensor)


class _Finalizer:
    """Check and clean a loaded object in one memoised pass (linear in its size).

    Replaces arrays that were referenced before their ``BUILD`` by the built array; refuses
    cycles, nesting deeper than :data:`MAX_DEPTH`, and any object that is not plain data.
    """

    def __init__(self) -> None:
        self.done: dict[int, tuple[Any, int]] = {}  # id -> (result, height)
        self.active: set[int] = set()
        self.keep: list[Any] = []  # keeps ids stable while the pass runs

    def run(self, obj: Any) -> Any:
        return self.visit(obj, 0)[0]

    def visit(self, obj: Any, depth: int) -> tuple[Any, int]:
        if isinstance(obj, PendingArray):
            if obj.array is None:
                raise ModelFormatError("pickle refers to a numpy array that was never filled")
            obj = obj.array
        if isinstance(obj, _LEAVES) or (isinstance(obj, np.ndarray) and not obj.dtype.hasobject):
            return obj, 0
        if not isinstance(obj, dict | list | tuple | np.ndarray):
            raise ModelFormatError(f"pickle holds a {type(obj).__name__}, which is not plain data")
        key = id(obj)
        if key in self.done:
            result, height = self.done[key]
        else:
            if key in self.active:
                raise ModelFormatError("pickle holds a container that contains itself")
            if depth > MAX_DEPTH:
                raise ModelFormatError(f"pickle nests deeper than {MAX_DEPTH} levels")
            self.active.add(key)
            result, height = self.rebuild(obj, depth)
            self.active.discard(key)
            self.done[key] = (result, height)
            self.keep.append(obj)
        if depth + height > MAX_DEPTH:
            raise ModelFormatError(f"pickle nests deeper than {MAX_DEPTH} levels")
        return result, height

    def rebuild(self, obj: Any, depth: int) -> tuple[Any, int]:
        height = 0

        def child(value: Any) -> Any:
            nonlocal height
            result, h = self.visit(value, depth + 1)
            height = max(height, h + 1)
            return result

        if isinstance(obj, dict):
            out: Any = OrderedDict() if isinstance(obj, OrderedDict) else {}
            for k, v in obj.items():
                out[child(k)] = child(v)
        elif isinstance(obj, np.ndarray):  # an object array (np.save of a dict, ...)
            out = np.empty(obj.size, dtype=object)
            for i, v in enumerate(obj.ravel()):
                out[i] = child(v)
            out = out.reshape(obj.shape)
        else:
            items = [child(v) for v in obj]
            out = items if isinstance(obj, list) else tuple(items)
        return out, max(height, 1)


def resolve_tensors(obj: Any, load: Callable[[PendingTensor], npt.NDArray[Any]]) -> Any:
    """``obj`` (from :func:`safe_loads`: acyclic, depth-bounded) with every
    :class:`PendingTensor` in its dicts, lists and tuples replaced by ``load(tensor)``.

    Shared sub-objects are converted once (memoised), so the pass is linear in ``obj``'s size.
    """
    memo: dict[int, Any] = {}

    def visit(item: Any) -> Any:
        if isinstance(item, PendingTensor):
            return load(item)
        if not isinstance(item, dict | list | tuple):
            return item
        if id(item) in memo:
            return memo[id(item)]
        out: Any
        if isinstance(item, dict):
            out = OrderedDict() if isinstance(item, OrderedDict) else {}
            for key, value in item.items():
                out[key] = visit(value)
        else:
            items = [visit(value) for value in item]
            out = items if isinstance(item, list) else tuple(items)
        memo[id(item)] = out
        return out

    return visit(obj)
