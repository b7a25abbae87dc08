"""Fuzz the restricted unpickler (`facefaas.models.safe_pickle.safe_loads`).

Two generators: mutated real pickles (weights pickled at protocols 0 to 5, a torch legacy file
and a joblib file from ``../shared`` when present), and pickle programs written opcode by opcode
(every opcode of protocols 0-5, arguments that name allowed and forbidden globals).

Properties: the result is plain data (dicts, lists, tuples, scalars, strings, bytes, numeric
arrays, pending tensors) or the error is one of `facefaas.errors`; no other exception; and no code
runs: an audit hook fails the example if the unpickler opens a file, starts a process, imports,
compiles or executes code while it reads.
"""

from __future__ import annotations

import codecs
import pickle
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facefaas.errors import FacefaasError
from facefaas.models.safe_pickle import ALLOWED_GLOBALS, PendingTensor, safe_loads
from fuzz.mutate import budget, mutated

SHARED_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"
_FORBIDDEN_EVENTS = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen", "exec",
    "compile", "open", "import", "socket.", "ctypes.", "os.remove", "os.unlink", "shutil.",
)  # fmt: skip
_events: list[str] | None = None  # armed while safe_loads runs


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _events is not None and event.startswith(_FORBIDDEN_EVENTS):
        _events.append(event)


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while armed
for _codec in ("raw_unicode_escape", "unicode_escape", "latin_1", "ascii", "utf_8"):
    codecs.lookup(_codec)  # pickle's text opcodes import these on first use: not the file's doing


@contextmanager
def no_code_runs() -> Iterator[None]:
    global _events
    _events = []
    try:
        yield
    finally:
        seen, _events = _events, None
        assert not seen, f"the unpickler did {seen}"


@cache
def pickle_seeds() -> tuple[bytes, ...]:
    state: OrderedDict[str, Any] = OrderedDict(
        [
            ("conv1.weight", np.arange(12, dtype=np.float32).reshape(2, 2, 3)),
            ("conv1.bias", np.array([0.5, -1.0], dtype="<f8")),
            ("steps", np.int64(3)),
            ("flags", np.array([True, False])),
        ]
    )
    objects: list[Any] = [
        state,
        {"pnet": [np.ones((2, 2), np.float32), (1, 2.5, "x", b"\x00\xff", None, True)]},
        [np.zeros(3, ">i2"), np.float32(1.5), [[[]]], {}],
    ]
    seeds = [pickle.dumps(o, protocol=p) for o in objects for p in range(6)]
    seeds += _shared_seeds()
    return tuple(seeds)


def _shared_seeds() -> list[bytes]:
    """The pickles inside real weight files (skipped when ``../shared`` is absent)."""
    seeds: list[bytes] = []
    torch = SHARED_MODELS / "facenet-pytorch" / "pnet.pt"
    if torch.is_file():
        seeds.append(torch.read_bytes()[:4096])  # the legacy header pickles and the state dict
    joblib = SHARED_MODELS / "ipazc-mtcnn-1.0" / "pnet.lz4"
    if joblib.is_file():
        import lz4.frame

        seeds.append(lz4.frame.decompress(joblib.read_bytes())[:8192])
    return seeds


# --- pickle programs, opcode by opcode --------------------------------------------------------

_GLOBALS = [*ALLOWED_GLOBALS, ("os", "system"), ("builtins", "eval"), ("numpy", "load")]
_NO_ARG = [
    pickle.MARK, pickle.STOP, pickle.POP, pickle.POP_MARK, pickle.DUP, pickle.NONE,
    pickle.NEWTRUE, pickle.NEWFALSE, pickle.EMPTY_DICT, pickle.EMPTY_LIST, pickle.EMPTY_TUPLE,
    pickle.EMPTY_SET, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.LIST,
    pickle.DICT, pickle.APPEND, pickle.APPENDS, pickle.SETITEM, pickle.SETITEMS, pickle.ADDITEMS,
    pickle.FROZENSET, pickle.REDUCE, pickle.BUILD, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.INST,
    pickle.OBJ, pickle.STACK_GLOBAL, pickle.MEMOIZE, pickle.BINPERSID, pickle.NEXT_BUFFER,
    pickle.READONLY_BUFFER,
]  # fmt: skip


def _opcode() -> st.SearchStrategy[bytes]:
    small = st.integers(0, 255)
    text = st.sampled_from(["", "storage", "cpu", "0", "<f4", "f4", "O8", "latin1", "x" * 300])
    glob = st.sampled_from(_GLOBALS)
    return st.one_of(
        st.sampled_from(_NO_ARG),
        small.map(lambda n: pickle.BININT1 + bytes([n])),
        st.integers(-(2**31), 2**31 - 1).map(lambda n: pickle.BININT + struct.pack("<i", n)),
        st.integers(0, 2**64).map(_long1),
        st.floats(allow_nan=True).map(lambda f: pickle.BINFLOAT + struct.pack(">d", f)),
        text.map(lambda s: _counted(pickle.SHORT_BINUNICODE, s.encode()[:255], 1)),
        text.map(lambda s: _counted(pickle.BINUNICODE, s.encode(), 4)),
        st.binary(max_size=40).map(lambda b: _counted(pickle.SHORT_BINBYTES, b, 1)),
        st.binary(max_size=40).map(lambda b: _counted(pickle.BYTEARRAY8, b, 8)),
        glob.map(lambda g: pickle.GLOBAL + f"{g[0]}\n{g[1]}\n".encode()),
        glob.map(lambda g: _counted(pickle.SHORT_BINUNICODE, g[0].encode(), 1)
                 + _counted(pickle.SHORT_BINUNICODE, g[1].encode(), 1) + pickle.STACK_GLOBAL),
        small.map(lambda n: pickle.BINGET + bytes([n % 8])),
        small.map(lambda n: pickle.BINPUT + bytes([n % 8])),
        st.sampled_from([b"I1\n", b"I99999999999999999999\n", b"L5L\n", b"F1.5\n", b"S'ab'\n",
                         b"Vx\n", b"P0\n", b"\x8a\x09" + b"\xff" * 9, pickle.FRAME + b"\x00" * 8,
                         b"\x82\x01", b"\x83\x01\x00", b"\x84\x01\x00\x00\x00"]),
    )  # fmt: skip


def _long1(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def _counted(opcode: bytes, payload: bytes, width: int) -> bytes:
    return opcode + len(payload).to_bytes(width, "little") + payload


@st.composite
def pickle_programs(draw: st.DrawFn) -> bytes:
    protocol = draw(st.integers(0, 5))
    body = b"".join(draw(st.lists(_opcode(), max_size=40)))
    return (pickle.PROTO + bytes([protocol]) if protocol >= 2 else b"") + body + pickle.STOP


def _plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, type(None) | bool | int | float | str | bytes | PendingTensor):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf" or all(_plain(v, depth + 1) for v in value.ravel())
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v, depth + 1) for v in value)
    return False


def check_loads_plain_data_or_refuses(data: bytes) -> None:
    """The fuzz property, also used by the regression tests."""
    try:
        with no_code_runs():
            value, used = safe_loads(data, max_elements=1 << 16)
    except FacefaasError:
        return
    assert 0 < used <= len(data)
    assert _plain(value), f"not plain data: {type(value).__name__}"


def test_seeds_load() -> None:
    for seed in pickle_seeds()[:18]:  # the synthetic ones; protocol 5 arrays are refused
        check_loads_plain_data_or_refuses(seed)
    assert safe_loads(pickle_seeds()[0])[0]["steps"] == 3


@pytest.mark.timeout(300)
@budget(3000)
@given(mutated(pickle_seeds()))
def test_mutated_pickles_load_plain_data_or_raise_our_errors(data: bytes) -> None:
    check_loads_plain_data_or_refuses(data)


@pytest.mark.timeout(300)
@budget(3000)
@given(pickle_programs())
def test_pickle_programs_load_plain_data_or_raise_our_errors(data: bytes) -> None:
    check_loads_plain_data_or_refuses(data)
