"""What the fuzz targets found, each as the exact input that failed and what it must give now."""

from __future__ import annotations

import struct

import pytest

from facefaas.errors import ModelFormatError
from facefaas.models.safe_pickle import safe_loads

# --- the restricted unpickler -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02J\x01",  # BININT with 1 of its 4 bytes
        b"\x80\x04\x95\x05",  # FRAME with 1 of its 8 length bytes
        b"\x80\x02G\x3f\xf0",  # BINFLOAT cut short
        b"\x80\x05\x96\x01\x00",  # BYTEARRAY8 with a cut length
    ],
    ids=["binint", "frame", "binfloat", "bytearray8-length"],
)
def test_pickle_with_a_truncated_fixed_size_argument_is_a_format_error(data: bytes) -> None:
    # was struct.error, a 500 from the upload route
    with pytest.raises(ModelFormatError, match="truncated"):
        safe_loads(data)


def test_pickle_bytearray_of_a_huge_declared_size_is_refused_without_allocating_it() -> None:
    # 20 bytes that made pickle allocate 1 TiB up front (MemoryError; 8 GiB would be allocated)
    data = b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"."
    with pytest.raises(ModelFormatError, match="truncated"):
        safe_loads(data)
