"""Fuzz the zip reader (`facefaas.models.archive.read_zip`) and the sources built on it.

Zips are written entry by entry from generated names (path traversal, absolute and drive paths,
NUL, backslashes, duplicates, hidden files, nested zips), compression methods, Unix file types
(symbolic links, devices), the encryption flag and zip bombs (megabytes of zeros deflated to a few
kilobytes), then sometimes mutated byte by byte (sizes, offsets and flags in the headers).

Property: `read_zip` gives only regular files under safe relative names, within its entry and
byte limits, or one of `facefaas.errors`; `gather_files` (what `import_model` reads) likewise.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facefaas.errors import FacefaasError
from facefaas.models.archive import read_zip
from facefaas.models.sources import gather_files
from fuzz.mutate import budget, mutated

MAX_ENTRIES = 16
MAX_TOTAL = 4 * 1024 * 1024

_NAMES = st.one_of(
    st.sampled_from([
        "pnet.onnx", "rnet.onnx", "onet.onnx", "manifest.json", "model/pnet.onnx", "a/b/c.pt",
        "../pnet.onnx", "a/../../etc/passwd", "/etc/passwd", "C:pnet.onnx", "c:\\x.onnx",
        "..\\..\\x", "a\\b.onnx", "nul\x00.onnx", ".hidden", "__MACOSX/._pnet.onnx", "dir/",
        "./pnet.onnx", "inner.zip", "data.pkl", "archive/data.pkl", "", "é.onnx",
    ]),
    st.text(min_size=1, max_size=12),
)  # fmt: skip
_METHODS = st.sampled_from(
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
_KINDS = st.sampled_from([0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFIFO])


@st.composite
def _content(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "zeros", "zip"]))
    if kind == "zeros":  # a bomb when deflated: over the reader's 1 MiB ratio floor
        return bytes(draw(st.sampled_from([1024, (1 << 20) + 1, 3 << 20])))
    if kind == "zip":
        return _write([("inner.onnx", b"x" * 10, zipfile.ZIP_STORED, 0, False)])
    return draw(st.binary(max_size=200))


def _write(entries: list[tuple[str, bytes, int, int, bool]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data, method, kind, encrypted in entries:
            info = zipfile.ZipInfo(name or "x")
            info.filename = name  # the raw name, whatever ZipInfo would normalise
            info.compress_type = method
            if kind:
                info.create_system = 3
                info.external_attr = (kind | 0o644) << 16
            archive.writestr(info, data)
            if encrypted:
                info.flag_bits |= 0x1  # written into the central directory
    return out.getvalue()


@st.composite
def zips(draw: st.DrawFn) -> bytes:
    entry = st.tuples(_NAMES, _content(), _METHODS, _KINDS, st.integers(0, 9).map(lambda n: n == 0))
    data = _write(draw(st.lists(entry, max_size=6)))
    if draw(st.booleans()):
        data = draw(mutated([data]))
    return data


def check_reads_safely_or_refuses(data: bytes) -> None:
    """The fuzz property, also used by the regression tests."""
    try:
        files = read_zip(data, max_entries=MAX_ENTRIES, max_total_bytes=MAX_TOTAL)
    except FacefaasError:
        files = None
    if files is not None:
        assert len(files) <= MAX_ENTRIES
        assert sum(map(len, files.values())) <= MAX_TOTAL
        for name in files:
            path = PurePosixPath(name)
            assert name and "\x00" not in name and "\\" not in name, name
            assert not path.is_absolute() and ".." not in path.parts and ":" not in path.parts[0]
    try:
        gathered, _ = gather_files(data, max_bytes=MAX_TOTAL)
    except FacefaasError:
        return
    assert all("/" not in name and name != ".." for name in gathered)


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@budget(600)
@given(zips())
def test_zips_read_safely_or_raise_our_errors(data: bytes) -> None:
    check_reads_safely_or_refuses(data)
