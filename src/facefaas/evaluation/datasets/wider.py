"""WIDER FACE validation ground truth: the official ``.mat`` files, or the ``bbx_gt`` text file.

The ``.mat`` files (``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat``) give the
boxes and, per setting, ``gt_list``: the 1-based indices of the faces that count. The text file
``wider_face_val_bbx_gt.txt`` has the boxes and attributes but no settings; read alone it gives one
setting, ``"all"``, in which the faces flagged *invalid* are ignored.

Keys are ``<event>/<name>`` (``"0--Parade/0_Parade_marchingband_1_20"``); images live at
``<images>/<event>/<name>.jpg``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facefaas.errors import InputError
from facefaas.evaluation.truth import Dataset, ImageTruth
from facefaas.extras import require

__all__ = ["WIDER_SETTINGS", "load_wider", "parse_wider_txt"]

WIDER_SETTINGS = ("easy", "medium", "hard")
FACE_MAT = "wider_face_val.mat"
SETTING_MAT = "wider_{}_val.mat"
GT_TXT = "wider_face_val_bbx_gt.txt"
_INVALID_COLUMN = 7  # x y w h blur expression illumination invalid occlusion pose


def _xywh_to_xyxy(xywh: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def _cell_str(cell: Any) -> str:
    return str(np.asarray(cell).ravel()[0])


def _load_mat(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"missing WIDER ground truth file {path}")
    loadmat = require("scipy.io").loadmat
    mat_read_error = require("scipy.io.matlab").MatReadError
    # scipy reports damaged files in several ways; NotImplementedError is a v7.3 (HDF5) file
    unreadable = (mat_read_error, ValueError, TypeError, OSError, IndexError, NotImplementedError)
    try:
        data: dict[str, Any] = loadmat(str(path))
    except unreadable as exc:
        raise InputError(f"{path}: not a readable MATLAB v5 file ({exc!r})") from None
    return data


def _read_mats(
    gt_dir: Path,
) -> list[tuple[str, np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]]:
    """``(key, boxes xyxy, {setting: counted mask})`` for every image of the ``.mat`` files."""
    face = _load_mat(gt_dir / FACE_MAT)
    settings = {s: _load_mat(gt_dir / SETTING_MAT.format(s)) for s in WIDER_SETTINGS}
    try:
        events = [_cell_str(e) for e in face["event_list"].ravel()]
        rows = []
        for i, event in enumerate(events):
            files = face["file_list"][i, 0].ravel()
            boxes = face["face_bbx_list"][i, 0].ravel()
            keeps = {s: settings[s]["gt_list"][i, 0].ravel() for s in WIDER_SETTINGS}
            for j, name_cell in enumerate(files):
                xyxy = _xywh_to_xyxy(boxes[j])
                masks = {}
                for s, keep in keeps.items():
                    index = np.asarray(keep[j], dtype=np.int64).ravel()
                    if index.size and (index.min() < 1 or index.max() > len(xyxy)):
                        raise InputError(f"{event}: {s} gt_list index out of range")
                    mask = np.zeros(len(xyxy), dtype=np.bool_)
                    mask[index - 1] = True
                    masks[s] = mask
                rows.append((f"{event}/{_cell_str(name_cell)}", xyxy, masks))
    except (KeyError, IndexError) as exc:
        raise InputError(f"{gt_dir}: unexpected WIDER .mat layout ({exc!r})") from None
    return rows


def parse_wider_txt(text: str) -> list[tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Parse ``wider_face_val_bbx_gt.txt``: ``(key, boxes xyxy (n, 4), invalid (n,) bool)``.

    An image with 0 faces is followed by one dummy line of zeros, which is skipped.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = []
    i = 0
    while i < len(lines):
        name = lines[i]
        if not name.lower().endswith(".jpg") or i + 1 >= len(lines):
            raise InputError(f"bbx_gt line {i + 1}: expected '<event>/<file>.jpg', got {name!r}")
        try:
            count = int(lines[i + 1])
            rows = np.array(
                [
                    [float(v) for v in line.split()[:10]]
                    for line in lines[i + 2 : i + 2 + max(count, 1)]
                ],
                dtype=np.float64,
            ).reshape(-1, 10)
        except ValueError:
            raise InputError(f"bbx_gt: malformed entry for {name!r}") from None
        if count < 0 or len(rows) < max(count, 1):
            raise InputError(f"bbx_gt: {name!r} says {count} boxes but has fewer lines")
        rows = rows[:count]
        out.append((name[: -len(".jpg")], _xywh_to_xyxy(rows[:, :4]), rows[:, _INVALID_COLUMN] > 0))
        i += 2 + max(count, 1)
    return out


def _entries(gt: Path) -> tuple[tuple[str, ...], list[tuple[str, Any, dict[str, Any]]], str]:
    if gt.is_dir() and (gt / FACE_MAT).is_file():
        return WIDER_SETTINGS, _read_mats(gt), str(gt)
    txt = gt if gt.is_file() else gt / GT_TXT
    if not txt.is_file():
        raise InputError(f"no WIDER ground truth in {gt} (want {FACE_MAT} + settings, or {GT_TXT})")
    parsed = parse_wider_txt(txt.read_text(encoding="utf-8"))
    return ("all",), [(key, boxes, {"all": ~invalid}) for key, boxes, invalid in parsed], str(txt)


def load_wider(
    root: str | os.PathLike[str] | None = None,
    *,
    ground_truth: str | os.PathLike[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    present_only: bool = True,
    keys: Sequence[str] | None = None,
) -> Dataset:
    """Load WIDER FACE val ground truth.

    Args:
        root: a folder holding ``ground_truth/`` and ``images/`` (the layout of
            ``../shared/eval/wider-val``); ``ground_truth``/``images`` override either part.
        ground_truth: the folder with the ``.mat`` files (settings easy/medium/hard) or the
            ``bbx_gt`` text file (setting ``all``), or that text file itself.
        images: the folder with ``<event>/<name>.jpg``; ``None`` when only detections are
            evaluated.
        present_only: keep only the images whose file exists under ``images`` (the usual case
            for a subset); ignored when there is no images folder.
        keys: keep only these image keys (in the ground truth's order).
    """
    base = Path(root) if root is not None else None
    gt = (
        Path(ground_truth)
        if ground_truth is not None
        else (base / "ground_truth" if base else None)
    )
    if gt is None:
        raise InputError("give the WIDER root folder or the ground-truth folder")
    image_dir = Path(images) if images is not None else (base / "images" if base else None)
    if image_dir is not None and not image_dir.is_dir():
        image_dir = None if images is None else image_dir
        if image_dir is not None:
            raise InputError(f"no images folder at {image_dir}")
    settings, entries, source = _entries(gt)
    wanted = set(keys) if keys is not None else None
    records = []
    for key, boxes, masks in entries:
        if wanted is not None and key not in wanted:
            continue
        path = image_dir / f"{key}.jpg" if image_dir is not None else None
        if path is not None and present_only and not path.is_file():
            continue
        records.append(ImageTruth(key=key, path=path, boxes=boxes, counted=masks))
    notes = []
    if len(records) < len(entries):
        notes.append(
            f"restricted to {len(records)} of the {len(entries)} images of the ground truth"
        )
    return Dataset("wider", settings, tuple(records), source, tuple(notes))
