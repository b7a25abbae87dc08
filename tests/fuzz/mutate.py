"""Hypothesis strategies that mutate real files, and the budget of each fuzz target.

:func:`mutated` starts from one of a few valid seed files and applies a handful of the classic
mutations of byte-level fuzzers: bit flips, "interesting" integers written over 1, 2 or 4 bytes
in either byte order (0, -1, 0x7fffffff, ... where sizes and offsets live), inserted, deleted and
duplicated runs, truncation, and splicing the head of another seed onto the tail of this one.
Positions favour the first 512 bytes, where headers are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import settings
from hypothesis import strategies as st

__all__ = ["EXPLORE_ENV", "budget", "mutated"]

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
