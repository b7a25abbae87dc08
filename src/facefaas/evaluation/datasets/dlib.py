"""dlib's imglab XML (``<image file=...><box top left width height [ignore]/>``).

Boxes are ``left, top, width, height`` integer pixels, stored as ``x2 = left + width``. A box
with ``ignore='1'`` does not count (setting ``"all"``). The key is the image path relative to the
XML file's folder, without extension. dlib's boxes are tighter (eyebrows to chin) than MTCNN's,
so consider a lower IoU threshold for this set.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from facefaas.errors import InputError
from facefaas.evaluation.truth import Dataset, ImageTruth

__all__ = ["load_dlib", "parse_imglab_xml"]

MAX_XML_BYTES = 64 * 1024 * 1024
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _int_attr(element: ET.Element, name: str, where: str) -> int:
    value = element.get(name)
    try:
        return int(float(value)) if value is not None else 0
    except ValueError:
        raise InputError(f"{where}: attribute {name}={value!r} is not a number") from None


def parse_imglab_xml(
    data: bytes, where: str = "imglab xml"
) -> list[tuple[str, FloatArray, BoolArray, tuple[int, int] | None]]:
    """``(file, boxes xyxy (n, 4), ignore (n,), (width, height) or None)`` per ``<image>``.

    Documents declaring entities are refused (no entity expansion, no external references).
    """
    if len(data) > MAX_XML_BYTES:
        raise InputError(f"{where}: larger than {MAX_XML_BYTES} bytes")
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise InputError(f"{where}: XML with a DOCTYPE or entities is not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{where}: not well-formed XML ({exc})") from None
    out = []
    for image in root.iter("image"):
        file = image.get("file")
        if not file:
            raise InputError(f"{where}: <image> without a file attribute")
        rows, ignore = [], []
        for box in image.iter("box"):
            left, top = _int_attr(box, "left", where), _int_attr(box, "top", where)
            width, height = _int_attr(box, "width", where), _int_attr(box, "height", where)
            rows.append([left, top, left + width, top + height])
            ignore.append(box.get("ignore", "0").strip() not in ("0", "", "false"))
        w, h = _int_attr(image, "width", where), _int_attr(image, "height", where)
        out.append(
            (
                file,
                np.array(rows, dtype=np.float64).reshape(-1, 4),
                np.array(ignore, dtype=np.bool_),
                (w, h) if w > 0 and h > 0 else None,
            )
        )
    return out


def load_dlib(xml: str | os.PathLike[str], *, present_only: bool = True) -> Dataset:
    """Load an imglab XML; image paths resolve against the XML's folder."""
    path = Path(xml)
    if not path.is_file():
        raise InputError(f"no imglab XML at {path}")
    entries = parse_imglab_xml(path.read_bytes(), str(path))
    records = []
    for file, boxes, ignore, size in entries:
        relative = PurePosixPath(file.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"{path}: image path {file!r} leaves the XML's folder")
        image_path = path.parent.joinpath(*relative.parts)
        if present_only and not image_path.is_file():
            continue
        records.append(
            ImageTruth(
                key=relative.with_suffix("").as_posix(),
                path=image_path,
                boxes=boxes,
                counted={"all": ~ignore},
                size=size,
            )
        )
    notes = []
    if len(records) < len(entries):
        notes.append(
            f"restricted to {len(records)} of {len(entries)} images (the others are missing)"
        )
    return Dataset("dlib", ("all",), tuple(records), str(path), tuple(notes))
