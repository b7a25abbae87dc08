"""Faces cut off by the image border: what zero-padded crops (the seed graph's behaviour) find,
compared with stretching the in-image part of a border crop (what some ports do).

MTCNN squares its candidate boxes, so a face at the border gives R-Net/O-Net crops that reach
outside the image. The seed's graph (TensorFlow ``CropAndResize``, extrapolation 0) fills that
part with 0 in normalised pixels, i.e. grey 127.5, and keeps the face's geometry; clipping the
box to the image and resizing it stretches the face instead.

Run from the repository root (``../shared`` beside it):

    python benchmarks/eval_border_faces.py --out /tmp/border-faces

It prints, per photo and per mode, the faces found and those touching the border, and writes
annotated copies into ``--out`` (green: padded, red: stretched). The photos are third-party:
keep the rendered files out of the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facefaas.decode import load_image
from facefaas.detector import Detector
from facefaas.evaluation.presets import PRESETS
from facefaas.faces import Faces
from facefaas.mtcnn.pipeline import normalize, run_cascade
from facefaas.params import DetectionParams
from facefaas.render import annotate

PHOTOS = ("deepface__selfie-many-people.jpg", "face_recognition__32bit.png")


class StretchedCrops:
    """The detector's cascade operations, with R-Net/O-Net boxes clipped to the image first."""

    def __init__(self, ops: Any, height: int, width: int) -> None:
        self._ops = ops
        self._limit = np.array([0, 0, width - 1, height - 1], np.float32)

    def _clip(self, boxes: np.ndarray) -> np.ndarray:
        clipped = np.clip(boxes, self._limit[[0, 1, 0, 1]], self._limit[[2, 3, 2, 3]])
        return clipped.astype(np.float32)

    def pnet(self, source: Any, height: int, width: int) -> Any:
        return self._ops.pnet(source, height, width)

    def rnet(self, source: Any, boxes: np.ndarray) -> Any:
        return self._ops.rnet(source, self._clip(boxes))

    def onet(self, source: Any, boxes: np.ndarray) -> Any:
        return self._ops.onet(source, self._clip(boxes))

    def nms(self, boxes: Any, scores: Any, threshold: float, max_output: int) -> Any:
        return self._ops.nms(boxes, scores, threshold, max_output)


def _cascade_ops(detector: Detector) -> Any:
    """The detector's cascade operations object (the one with ``pnet``/``rnet``/``onet``)."""
    for value in vars(detector).values():
        if all(hasattr(value, name) for name in ("pnet", "rnet", "onet", "nms")):
            return value
    raise SystemExit("this Detector does not expose its cascade operations")


def _stretched(detector: Detector, rgb: np.ndarray, params: DetectionParams) -> Faces:
    height, width = rgb.shape[:2]
    ops = StretchedCrops(_cascade_ops(detector), height, width)
    found = run_cascade(normalize(rgb), ops, params)
    return Faces(found.boxes, found.scores, found.landmarks, width=width, height=height)


def _at_border(faces: Faces, margin: float = 1.0) -> np.ndarray:
    b = faces.boxes
    return (
        (b[:, 0] < margin)
        | (b[:, 1] < margin)
        | (b[:, 2] > faces.width - margin)
        | (b[:, 3] > faces.height - margin)
    )


def _describe(faces: Faces) -> str:
    rows = []
    for face, border in zip(faces, _at_border(faces), strict=True):
        x1, y1, x2, y2 = face.box
        where = "border" if border else "inside"
        box = f"({x1:.0f},{y1:.0f})-({x2:.0f},{y2:.0f})"
        rows.append(f"    {where} box {box} score {face.score:.3f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/eval/photos"))
    parser.add_argument("--out", type=Path, default=None, help="write annotated copies here")
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS), help="repeatable")
    args = parser.parse_args(argv)
    detector = Detector()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        path = args.photos / name
        if not path.is_file():
            print(f"{path}: missing, skipped", file=sys.stderr)
            continue
        image = load_image(path)
        print(f"{name} ({image.width}x{image.height})")
        for preset in args.preset or ["default", "high-recall"]:
            params = PRESETS[preset].params
            padded = detector(image, **params.to_dict())
            stretched = _stretched(detector, image.pixels, params)
            for mode, faces in (("padded", padded), ("stretched", stretched)):
                found = f"{len(faces)} faces, {int(_at_border(faces).sum())} at the border"
                print(f"  {preset}, {mode}: {found}")
                print(_describe(faces))
            if args.out:
                picture = annotate(image, padded, color=(0, 255, 0), thickness=2)
                picture = annotate(picture, stretched, color=(255, 0, 0), thickness=1)
                target = args.out / f"{Path(name).stem}.{preset}.png"
                picture.save(target)
                print(f"  wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
