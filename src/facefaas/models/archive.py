"""Read zip archives (model bundles, modern torch files) from untrusted bytes, safely.

Entries are read into memory, never extracted to disk, and the archive is refused
(:class:`~facefaas.errors.ModelFormatError`, or :class:`~facefaas.errors.TooLargeError` for
limits) when it has:

* a path that could escape a folder if it were extracted: absolute, ``..``, a drive letter, NUL;
* a symbolic link or another special file, an encrypted entry, duplicate names;
* more than ``max_entries`` entries, more than ``max_total_bytes`` uncompressed (counted as
  read, not as declared), or an entry compressed more than ``max_ratio`` times (zip bombs);
* a zip inside the zip, unless ``allow_nested`` accepts its name (a torch ``.pt`` is a zip).
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import zipfile
import zlib
from collections.abc import Callable

from facefaas.errors import ModelFormatError, TooLargeError

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "is_zip",
    "read_zip",
]

DEFAULT_MAX_ENTRIES = 64
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_RATIO = 100.0  # float weights compress about 1.1x; 100x is a bomb, not a model
_RATIO_FLOOR = 1024 * 1024  # smaller entries may compress as well as they like
_CD_SLACK = 16
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_zip(data: bytes) -> bool:
    """Does ``data`` start like a zip archive (a local file header or an empty archive)?"""
    return data[:4] in _ZIP_MAGICS


def _safe_name(raw: str) -> str:
    name = raw.replace("\\", "/")
    if "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        raise ModelFormatError(f"zip entry {raw!r} has an absolute path, which is not allowed")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelFormatError(f"zip entry {raw!r} points outside the archive ('..')")
    return "/".join(parts)


def _check_entry_type(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise ModelFormatError(f"zip entry {info.filename!r} is encrypted")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if info.create_system == 3 and kind:  # Unix attributes with a file type are recorded
        if kind == stat.S_IFLNK:
            raise ModelFormatError(f"zip entry {info.filename!r} is a symbolic link")
        if kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ModelFormatError(f"zip entry {info.filename!r} is not a regular file")


def read_zip(
    data: bytes,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    allow_nested: Callable[[str], bool] | None = None,
    what: str = "zip archive",
) -> dict[str, bytes]:
    """The regular files of a zip archive: normalised relative POSIX path -> bytes.

    Folders are skipped. See the module docstring for what is refused; ``what`` names the
    archive in messages.
    """
    # zipfile builds an object per central-directory record, each starting with this signature:
    # counting them bounds its work before it starts (content may add a few false matches).
    if data.count(b"PK\x01\x02") > _CD_SLACK * max_entries:
        raise TooLargeError(
            f"{what} has far more than {max_entries} entries", limit=max_entries, unit="entries"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ModelFormatError(f"{what}: not a readable zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_entries:
            raise TooLargeError(
                f"{what} has {len(infos)} entries; at most {max_entries} are accepted",
                limit=max_entries, unit="entries",
            )  # fmt: skip
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            name = _safe_name(info.filename)
            _check_entry_type(info)
            if not name or info.is_dir():  # is_dir() fails on an empty name
                continue
            if name in files:
                raise ModelFormatError(f"{what} holds {name!r} twice")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR and ratio > max_ratio:
                raise ModelFormatError(
                    f"{what}: entry {name!r} expands {ratio:.0f} times (at most "
                    f"{max_ratio:.0f}): refused as a possible zip bomb"
                )
            budget = max_total_bytes - total
            content = _read_entry(archive, info, budget, what)
            if len(content) > budget:
                raise TooLargeError(
                    f"{what} expands to more than {max_total_bytes} bytes",
                    limit=max_total_bytes, unit="bytes",
                )  # fmt: skip
            total += len(content)
            if (is_zip(content) or name.lower().endswith(".zip")) and not (
                allow_nested and allow_nested(name)
            ):
                raise ModelFormatError(f"{what}: {name!r} is a zip inside the zip, not accepted")
            files[name] = content
    return files


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, what: str) -> bytes:
    """Read at most ``budget + 1`` bytes of an entry, whatever its header declares."""
    try:
        with archive.open(info) as entry:
            return entry.read(max(budget, 0) + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise ModelFormatError(f"{what}: entry {info.filename!r} is unreadable ({exc})") from None
    except (OSError, lzma.LZMAError) as exc:  # corrupt bzip2 ("Invalid data stream") or LZMA
        raise ModelFormatError(f"{what}: entry {info.filename!r} is unreadable ({exc})") from None
    except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
        raise ModelFormatError(f"{what}: entry {info.filename!r}: {exc}") from None
