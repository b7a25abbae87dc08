"""Hypothesis strategies that mutate real files, and the budget of each fuzz target.

:func:`mutated` starts from one of a few valid seed files and applies a handful of the classic
mutations of byte-level fuzzers: bit flips, "interesting" integers written over 1, 2 or 4 bytes
in either byte order (0, -1, 0x7fffffff, ... where sizes and offsets live), inserted, deleted and
duplicated runs, truncation, and splicing the head of another seed onto the tail of this one.
Positions favour the first 512 bytes, where headers are. :func:`proto_mutated` does the same
one level up for protobuf files (ONNX, TensorFlow, Caffe): it changes fields, not bytes, so the
result still parses and the importer's own checks are what is tested.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import settings
from hypothesis import strategies as st

__all__ = ["EXPLORE_ENV", "budget", "json_objects", "json_values", "mutated", "proto_mutated"]

EXPLORE_ENV = "FACEFAAS_FUZZ_EXAMPLES"

_HEAD = 512
_INTERESTING = (
    0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
    0xFFFFFFFF,
)  # fmt: skip


def budget(examples: int) -> settings:
    """``examples`` in CI (sized so the target takes 30-60 s on 2 cores), or
    ``$FACEFAAS_FUZZ_EXAMPLES`` when set."""
    return settings(max_examples=int(os.environ.get(EXPLORE_ENV) or examples))


def _position(draw: st.DrawFn, size: int) -> int:
    if size <= 1:
        return 0
    return draw(st.one_of(st.integers(0, min(size, _HEAD) - 1), st.integers(0, size - 1)))


def _flip(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        data[_position(draw, len(data))] ^= 1 << draw(st.integers(0, 7))


def _integer(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    width = draw(st.sampled_from((1, 2, 4)))
    if len(data) < width:
        return
    value = draw(st.sampled_from(_INTERESTING)) % (1 << (8 * width))
    if draw(st.booleans()):  # a nearby value too: off-by-one sizes
        value = (value + draw(st.sampled_from((-1, 1)))) % (1 << (8 * width))
    at = min(_position(draw, len(data)), len(data) - width)
    data[at : at + width] = value.to_bytes(width, draw(st.sampled_from(("big", "little"))))


def _insert(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    at = _position(draw, len(data) + 1)
    data[at:at] = draw(st.binary(min_size=1, max_size=16))


def _delete(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        at = _position(draw, len(data))
        del data[at : at + draw(st.integers(1, 64))]


def _duplicate(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        at = _position(draw, len(data))
        run = bytes(data[at : at + draw(st.integers(1, 64))])
        to = _position(draw, len(data) + 1)
        data[to:to] = run


def _truncate(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    del data[_position(draw, len(data) + 1) :]


def _splice(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> None:
    other = draw(st.sampled_from(seeds))
    cut = _position(draw, min(len(other), len(data)) + 1)
    data[:cut] = other[:cut]


_MUTATIONS = (_flip, _integer, _integer, _insert, _delete, _duplicate, _truncate, _splice)


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 6) -> bytes:
    """A seed with 1 to ``max_mutations`` mutations (module docstring)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_mutations))):
        draw(st.sampled_from(_MUTATIONS))(draw, data, seeds)
    return bytes(data)


# --- protobuf messages, field by field ----------------------------------------------------------

_F = FieldDescriptor
_INT_LIMITS = {
    _F.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    _F.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    _F.CPPTYPE_UINT32: (0, 2**32 - 1),
    _F.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (0.0, -1.0, 1e30, float("inf"), float("nan"))
_TEXTS = ("", "x", "conv1", "pnet/conv1/weights", "Conv", "Loop", "com.evil", "../x", "\x00", "é")


def _fields(message: Message, out: list[tuple[Message, FieldDescriptor]]) -> None:
    """Every set field of ``message`` and of the messages inside it, depth first."""
    for field, value in message.ListFields():
        out.append((message, field))
        if field.cpp_type != _F.CPPTYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            values = field.message_type.fields_by_name["value"]
            if values.cpp_type == _F.CPPTYPE_MESSAGE:
                for key in list(value):
                    _fields(value[key], out)
        elif field.is_repeated:
            for item in value:
                _fields(item, out)
        else:
            _fields(value, out)


def _scalar(draw: st.DrawFn, field: FieldDescriptor, old: Any) -> Any:
    kind = field.cpp_type
    if kind in _INT_LIMITS:
        low, high = _INT_LIMITS[kind]
        small = st.integers(-3, 3).map(lambda d: (old if isinstance(old, int) else 0) + d)
        value = draw(st.one_of(st.sampled_from((*_INTERESTING, -1, low, high)), small))
        return min(max(value, low), high)
    if kind in (_F.CPPTYPE_FLOAT, _F.CPPTYPE_DOUBLE):
        return draw(st.sampled_from(_FLOATS))
    if kind == _F.CPPTYPE_BOOL:
        return not old
    if kind == _F.CPPTYPE_ENUM:
        return draw(st.sampled_from([v.number for v in field.enum_type.values]))
    if kind == _F.CPPTYPE_STRING and field.type == _F.TYPE_BYTES:
        cut = draw(st.integers(0, len(old)))
        return old[:cut] if draw(st.booleans()) else old + draw(st.binary(max_size=8))
    return draw(st.sampled_from(_TEXTS))


def _mutate_field(draw: st.DrawFn, message: Message, field: FieldDescriptor) -> None:
    value = getattr(message, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        message.ClearField(field.name)
    elif field.is_repeated and len(value):
        index = draw(st.integers(0, len(value) - 1))
        action = draw(st.sampled_from(("delete", "copy", "clear", "set")))
        if action == "delete":
            del value[index]
        elif action == "clear":
            message.ClearField(field.name)
        elif field.cpp_type == _F.CPPTYPE_MESSAGE:
            value.add().CopyFrom(value[index])
        elif action == "copy":
            value.append(value[index])
        else:
            value[index] = _scalar(draw, field, value[index])
    elif field.cpp_type == _F.CPPTYPE_MESSAGE or draw(st.integers(0, 5)) == 0:
        message.ClearField(field.name)
    else:
        setattr(message, field.name, _scalar(draw, field, value))


@st.composite
def proto_mutated(draw: st.DrawFn, seeds: Sequence[Message], max_mutations: int = 4) -> bytes:
    """A seed message with 1 to ``max_mutations`` of its fields changed, set to interesting
    values, deleted, cleared or duplicated; serialized."""
    message = draw(st.sampled_from(seeds)).__deepcopy__()
    for _ in range(draw(st.integers(1, max_mutations))):
        found: list[tuple[Message, FieldDescriptor]] = []
        _fields(message, found)
        if not found:
            break
        _mutate_field(draw, *draw(st.sampled_from(found)))
    data: bytes = message.SerializeToString()
    return data


# --- JSON ---------------------------------------------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0, -1, 6, 0.5, 0.95, 1, 1e308, "", "0.6,0.7,0.7", "#00ff00", "NaN", "x" * 300]
    ),
    st.text(max_size=20),
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars (boundary numbers, huge integers, odd strings), lists, objects."""
    return st.recursive(
        _JSON_SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=12), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def json_objects(draw: st.DrawFn, base: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``base`` with some of ``keys`` (and maybe an unknown key) set to any JSON values, or
    removed."""
    data = dict(base)
    for key in draw(st.lists(st.sampled_from([*keys, "unknown"]), max_size=4)):
        if draw(st.integers(0, 4)) == 0:
            data.pop(key, None)
        else:
            data[key] = draw(json_values())
    return data
