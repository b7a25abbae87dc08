"""Faces cut off by the image border: what zero-padded crops (the seed graph's behaviour) find,
compared with stretching the in-image part of a border crop (what some ports do).

MTCNN squares its candidate boxes, so a face at the border gives R-Net/O-Net crops that reach
outside the image. The seed's graph (TensorFlow ``CropAndResize``, extrapolation 0) fills that
part with 0 in normalised pixels, i.e. grey 127.5, and keeps the face's geometry; clipping the
box to the image and resizing it stretches the face instead.

Run from the repository root (``../shared`` beside it):

    python benchmarks/eval_border_faces.py --out /tmp/border-faces --wider ../shared/eval/wider-val

It prints, per photo and per mode, the faces found and those touching the border, and writes
annotated copies into ``--out`` (green: padded, red: stretched). The photos are third-party:
keep the rendered files out of the repository. With ``--wider``, it also scores the hard faces
of the WIDER subset that touch the image border (AP with the other faces ignored), both ways.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from facefaas.decode import load_image
from facefaas.detector import Detector
from facefaas.evaluation.datasets import load_wider
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.wider import evaluate_wider
from facefaas.evaluation.presets import PRESETS
from facefaas.evaluation.truth import Dataset, ImageTruth
from facefaas.faces import Faces
from facefaas.mtcnn.pipeline import normalize, run_cascade
from facefaas.params import DetectionParams
from facefaas.render import annotate

PHOTOS = ("deepface__selfie-many-people.jpg", "face_recognition__32bit.png")


class StretchedCrops:
    """The detector's cascade operations, with R-Net/O-Net boxes clipped to the image first.

    Everything else (P-Net, NMS, ...) is delegated unchanged.
    """

    def __init__(self, ops: Any, height: int, width: int) -> None:
        self._ops = ops
        self._low = np.zeros(4, np.float32)
        self._high = np.array([width - 1, height - 1, width - 1, height - 1], np.float32)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)

    def _clip(self, boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes, self._low, self._high).astype(np.float32)

    def rnet(self, source: Any, boxes: np.ndarray) -> Any:
        return self._ops.rnet(source, self._clip(boxes))

    def onet(self, source: Any, boxes: np.ndarray) -> Any:
        return self._ops.onet(source, self._clip(boxes))


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


def wider_border(root: Path, detector: Detector, preset: str, margin: float) -> None:
    """AP on the WIDER subset for the hard faces, and for the hard faces that touch the border
    (within ``margin`` pixels; the others are ignored there), padded and stretched."""
    dataset = load_wider(root)
    params = PRESETS[preset].params
    padded: dict[str, ImageDetections] = {}
    stretched: dict[str, ImageDetections] = {}
    images = []
    for image in dataset.images:
        decoded = load_image(image.path)
        padded[image.key] = ImageDetections.from_faces(detector(decoded, **params.to_dict()))
        stretched[image.key] = ImageDetections.from_faces(
            _stretched(detector, decoded.pixels, params)
        )
        b = image.boxes
        touches = (
            (b[:, 0] <= margin)
            | (b[:, 1] <= margin)
            | (b[:, 2] >= decoded.width - margin)
            | (b[:, 3] >= decoded.height - margin)
        )
        hard = image.counted["hard"]
        counted = {"hard": hard, "border": hard & touches}
        images.append(ImageTruth(image.key, image.path, image.boxes, counted))
    border_set = Dataset("wider", ("hard", "border"), tuple(images))
    print(
        f"WIDER subset, preset {preset}: {border_set.face_counts()} faces (border: within {margin} px)"
    )
    for mode, dets in (("padded", padded), ("stretched", stretched)):
        result = evaluate_wider(border_set, dets).settings
        parts = [f"{s} AP {r.ap:.3f} recall {r.recall:.3f}" for s, r in result.items()]
        print(f"  {mode:9}: " + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/eval/photos"))
    parser.add_argument("--out", type=Path, default=None, help="write annotated copies here")
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS), help="repeatable")
    parser.add_argument("--wider", type=Path, default=None, help="also score WIDER border faces")
    parser.add_argument("--margin", type=float, default=2.0, help="border width in pixels")
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
    if args.wider is not None:
        for preset in args.preset or ["default", "high-recall"]:
            wider_border(args.wider, detector, preset, args.margin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
