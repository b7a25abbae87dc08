"""The restricted unpickler: reads weight pickles, refuses everything that could run code."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest

from facefaas.errors import ModelFormatError, TooLargeError
from facefaas.models.importers._npy import read_npy
from facefaas.models.safe_pickle import ALLOWED_GLOBALS, MAX_DEPTH, safe_loads


class _Reduces:
    """Pickles as ``func(*args)``: how a malicious file makes the unpickler call something."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


class _Plain:
    """An ordinary object: protocols 0-1 pickle it through copyreg._reconstructor."""

    def __init__(self) -> None:
        self.x = 1


def _payloads(marker: Path) -> dict[str, Any]:
    touch = f"touch {marker}"
    return {
        "os.system": _Reduces(os.system, touch),
        "builtins.eval": _Reduces(eval, f"__import__('os').system({touch!r})"),
        "builtins.exec": _Reduces(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Reduces(subprocess.Popen, ["touch", str(marker)]),
        "builtins.getattr": _Reduces(getattr, _Reduces(__import__, "os"), "system"),
        "object.__reduce__ chain": _Reduces(_Reduces, os.system, touch),
        "copyreg._reconstructor": _Plain(),
        "object array with payload": np.array([_Reduces(os.system, touch)], dtype=object),
        "payload inside a state dict": OrderedDict(
            w=np.zeros(2, np.float32), x=_Reduces(os.system, touch)
        ),
    }  # fmt: skip


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize(
    "payload",
    [
        "os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.getattr",
        "object.__reduce__ chain", "copyreg._reconstructor", "object array with payload",
        "payload inside a state dict",
    ],
)  # fmt: skip
def test_malicious_pickle_is_refused_before_it_runs(
    tmp_path: Path, payload: str, protocol: int
) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_payloads(marker)[payload], protocol=protocol)
    with pytest.raises(ModelFormatError, match=r"pickle asks for .*which is not allowed"):
        safe_loads(data)
    assert not marker.exists()


def test_refusal_names_what_the_pickle_asked_for(tmp_path: Path) -> None:
    data = pickle.dumps(_Reduces(subprocess.Popen, ["true"]), protocol=4)
    with pytest.raises(ModelFormatError, match=r"subprocess\.Popen") as info:
        safe_loads(data, what="pnet.pt")
    assert info.value.message.startswith("pnet.pt: ")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("INST opcode", b"(S'touch x'\nios\nsystem\n."),
        ("OBJ opcode", b"\x80\x02(ccollections\nOrderedDict\no."),
        ("NEWOBJ of a stand-in", b"\x80\x02ccollections\nOrderedDict\n)\x81."),
        ("NEWOBJ_EX", b"\x80\x04ccollections\nOrderedDict\n)}\x92."),
        ("EXT1", b"\x80\x02\x82\x01."),
        ("BUILD on a dict", b"\x80\x02}}b."),
        ("persistent id without a loader", b"\x80\x02X\x01\x00\x00\x00xQ."),
        ("calling a number", b"\x80\x02K\x01)R."),
        ("truncated", pickle.dumps({"a": [1, 2, 3]}, protocol=2)[:-4]),
        ("not a pickle", b"\x00\x01garbage"),
        ("empty", b""),
    ],
)
def test_unsafe_or_malformed_opcodes_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(ModelFormatError):
        safe_loads(data)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_weights_round_trip_through_the_safe_unpickler(protocol: int) -> None:
    weights = {
        "conv": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">f4"),
        "ints": [np.int64(3).item(), 1.5, "name", b"raw", None, True],
        "nested": OrderedDict(bias=np.ones(3, np.float16)),
    }
    loaded, used = safe_loads(pickle.dumps(weights, protocol=protocol))
    data = pickle.dumps(weights, protocol=protocol)
    assert used == len(data)
    assert isinstance(loaded["nested"], OrderedDict)
    for key in ("conv", "fortran", "big_endian"):
        np.testing.assert_array_equal(loaded[key], weights[key])
        assert loaded[key].dtype == weights[key].dtype
    assert loaded["ints"] == weights["ints"]
    np.testing.assert_array_equal(loaded["nested"]["bias"], weights["nested"]["bias"])


def test_shared_array_references_resolve_to_the_array() -> None:
    array = np.arange(3, dtype=np.float32)
    loaded, _ = safe_loads(pickle.dumps([array, array], protocol=2))
    assert loaded[0] is loaded[1]
    np.testing.assert_array_equal(loaded[1], array)


def test_numpy_scalars_are_read() -> None:
    loaded, _ = safe_loads(pickle.dumps([np.float32(1.5), np.int32(-2)], protocol=2))
    assert loaded == [1.5, -2]


@pytest.mark.parametrize(
    "value",
    [
        np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]),
        np.array(["text"]),
        np.array([b"bytes"]),
        np.zeros(2, dtype="complex64"),
        np.zeros(2, dtype="datetime64[s]"),
    ],
    ids=["structured", "unicode", "bytes", "complex", "datetime"],
)
def test_non_numeric_arrays_are_refused(value: np.ndarray) -> None:
    with pytest.raises(ModelFormatError, match="dtype"):
        safe_loads(pickle.dumps(value, protocol=2))


def test_array_elements_are_bounded() -> None:
    data = pickle.dumps([np.zeros(600, np.float32), np.zeros(600, np.float32)], protocol=2)
    with pytest.raises(TooLargeError) as info:
        safe_loads(data, max_elements=1000)
    assert info.value.limit == 1000 and info.value.unit == "elements"


class _ForgedArray:
    """Pickles like an ndarray, with a state of our choosing."""

    def __init__(self, state: tuple[Any, ...]) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), self.state


def test_array_state_with_too_few_bytes_is_refused() -> None:
    forged = _ForgedArray((1, (4,), np.dtype("<f4"), False, bytes(12)))
    with pytest.raises(ModelFormatError, match="byte count"):
        safe_loads(pickle.dumps(forged, protocol=2))


def test_array_state_with_a_huge_shape_is_refused_before_allocating() -> None:
    forged = _ForgedArray((1, (10**6, 10**6), np.dtype("<f4"), False, b""))
    with pytest.raises(TooLargeError):
        safe_loads(pickle.dumps(forged, protocol=2))


def test_deep_nesting_is_refused() -> None:
    value: Any = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(ModelFormatError, match="deeper"):
        safe_loads(pickle.dumps(value, protocol=2))


def test_a_container_holding_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ModelFormatError, match="contains itself"):
        safe_loads(pickle.dumps(loop, protocol=2))


def test_shared_sublists_are_checked_in_linear_time() -> None:
    # 16 levels of a list holding the level below 200 times: 200**16 paths, 16 distinct lists.
    level: Any = [np.zeros(1, np.float32)]
    for _ in range(MAX_DEPTH - 1):
        level = [level] * 200
    loaded, _ = safe_loads(pickle.dumps(level, protocol=4))
    assert len(loaded) == 200


def test_allowlist_maps_to_stand_ins_never_to_the_real_callables() -> None:
    import collections

    for (module, name), stand_in in ALLOWED_GLOBALS.items():
        owner = getattr(stand_in, "__module__", type(stand_in).__module__)
        assert owner.startswith("facefaas."), f"{module}.{name} resolves to {stand_in!r}"
    assert collections.OrderedDict not in ALLOWED_GLOBALS.values()


# --- joblib (ipazc 1.0) and .npy (ipazc 0.1) containers --------------------------------------


class NumpyArrayWrapper:
    """Stands for joblib's class when writing test files (joblib is not installed)."""


@pytest.fixture
def joblib_pickle(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a joblib-style pickle: a NumpyArrayWrapper whose raw bytes follow its BUILD."""
    module = types.ModuleType("joblib.numpy_pickle")
    module.NumpyArrayWrapper = NumpyArrayWrapper  # type: ignore[attr-defined]
    monkeypatch.setattr(NumpyArrayWrapper, "__module__", "joblib.numpy_pickle")
    monkeypatch.setitem(sys.modules, "joblib", types.ModuleType("joblib"))
    monkeypatch.setitem(sys.modules, "joblib.numpy_pickle", module)

    def write(shape: tuple[int, ...], raw: bytes, dtype: str = "<f4", order: str = "C") -> bytes:
        wrapper = NumpyArrayWrapper()
        wrapper.__dict__.update(
            subclass=np.ndarray, shape=shape, order=order, dtype=np.dtype(dtype),
            allow_mmap=True, numpy_array_alignment_bytes=16,
        )  # fmt: skip
        data = pickle.dumps(wrapper, protocol=2)
        assert data.endswith(b"b.")
        return data[:-1] + b"\x03" + bytes(3) + raw + b"."  # 3 bytes of alignment padding

    return write


def test_joblib_array_wrapper_reads_the_bytes_after_it(joblib_pickle: Any) -> None:
    values = np.arange(6, dtype="<f4")
    loaded, _ = safe_loads(joblib_pickle((2, 3), values.tobytes()))
    np.testing.assert_array_equal(loaded, values.reshape(2, 3))
    loaded, _ = safe_loads(joblib_pickle((2, 3), values.tobytes(), order="F"))
    np.testing.assert_array_equal(loaded, values.reshape(3, 2).T)


def test_joblib_array_larger_than_its_bytes_is_refused(joblib_pickle: Any) -> None:
    with pytest.raises(TooLargeError):
        safe_loads(joblib_pickle((10**6, 10**6), bytes(8)))
    with pytest.raises(ModelFormatError, match="truncated"):
        safe_loads(joblib_pickle((100,), bytes(8)))


def test_joblib_object_array_is_refused(joblib_pickle: Any) -> None:
    with pytest.raises(ModelFormatError, match="dtype"):
        safe_loads(joblib_pickle((1,), bytes(8), dtype="O"))


def test_malicious_lz4_pickle_is_refused(tmp_path: Path) -> None:
    from facefaas.models.importers.ipazc import read_ipazc_v1

    marker = tmp_path / "pwned"
    data = lz4.frame.compress(pickle.dumps(_Reduces(os.system, f"touch {marker}"), protocol=4))
    with pytest.raises(ModelFormatError, match=r"(posix|nt)\.system"):
        read_ipazc_v1({"pnet.lz4": data})
    assert not marker.exists()


def test_npy_object_array_with_a_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array({"pnet": _Reduces(os.system, f"touch {marker}")}), allow_pickle=True)
    with pytest.raises(ModelFormatError, match="not allowed"):
        read_npy(buffer.getvalue())
    assert not marker.exists()


def test_npy_numeric_array_is_read_without_pickle() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    np.testing.assert_array_equal(read_npy(buffer.getvalue()), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '__import__': 1}",
        b"__import__('os').system('true')",
        b"{'descr': '<U4', 'fortran_order': False, 'shape': (1,)}",
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",  # 2 floats follow, not 3
    ],
    ids=["extra key", "code", "unicode dtype", "short data"],
)
def test_bad_npy_headers_are_refused(header: bytes) -> None:
    header = header.ljust(118) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(8)
    with pytest.raises(ModelFormatError):
        read_npy(data)
