"""What LNet (the authors' ``det4`` landmark-refinement net) changes in MTCNN's five landmarks.

The Caffe import of the authors' model (``det1``-``det4``) is run twice on dlib's example faces,
with and without LNet (``Detector(..., refine_landmarks=...)``); boxes and scores are the same, so
the same faces are compared. Each face annotated in dlib's ``*_with_face_landmarks.xml`` (68-point
iBUG scheme, produced by dlib's own shape predictor, i.e. model output and not hand-placed) is
matched to the detection of highest IoU (at least ``--min-iou``), and MTCNN's points are compared
with the matching annotated ones:

======================  =====================================================
MTCNN point             annotated point (iBUG-68 index, 0-based)
======================  =====================================================
left eye (image left)   mean of the eye contour 36-41
right eye               mean of the eye contour 42-47
nose                    nose tip 30
left mouth corner       48
right mouth corner      54
======================  =====================================================

Errors are Euclidean distances divided by the annotated inter-ocular distance (between the two
eye centres). Run from the repository root (``../shared`` beside it):

    python benchmarks/lnet_effect.py

It prints the normalised mean error per landmark with and without LNet, how many faces and points
got better, and the shift LNet applies in pixels.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facefaas.detector import Detector
from facefaas.models.importing import import_model

F64 = npt.NDArray[np.float64]
NAMES = ("left eye", "right eye", "nose", "left mouth", "right mouth")
XML_FILES = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")


@dataclass
class Annotated:
    image: Path
    box: F64  # x1, y1, x2, y2
    points: F64  # (5, 2) in MTCNN's order


def five_points(parts: dict[int, tuple[float, float]]) -> F64:
    """MTCNN's five points from iBUG-68 parts (module docstring)."""
    p = {i: np.array(xy, np.float64) for i, xy in parts.items()}
    return np.stack(
        [
            np.mean([p[i] for i in range(36, 42)], axis=0),
            np.mean([p[i] for i in range(42, 48)], axis=0),
            p[30],
            p[48],
            p[54],
        ]
    )


def read_annotations(folder: Path) -> list[Annotated]:
    faces = []
    for name in XML_FILES:
        root = ET.parse(folder / name).getroot()
        for image in root.iter("image"):
            for box in image.iter("box"):
                left, top = float(box.get("left", 0)), float(box.get("top", 0))
                width, height = float(box.get("width", 0)), float(box.get("height", 0))
                parts = {
                    int(part.get("name", -1)): (float(part.get("x", 0)), float(part.get("y", 0)))
                    for part in box.iter("part")
                }
                faces.append(
                    Annotated(
                        folder / image.get("file", ""),
                        np.array([left, top, left + width, top + height]),
                        five_points(parts),
                    )
                )
    return faces


def iou(box: F64, boxes: F64) -> F64:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    result: F64 = inter / ((box[2] - box[0]) * (box[3] - box[1]) + areas - inter)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--min-iou", type=float, default=0.3)
    args = parser.parse_args()
    model = import_model(args.shared / "models" / "caffe-original", validate=False)
    if model.weights.lnet is None:
        print("the Caffe model has no det4", file=sys.stderr)
        return 1
    with_lnet = Detector(model.weights, refine_landmarks=True, threads=1)
    without = Detector(model.weights, refine_landmarks=False, threads=1)
    faces = read_annotations(args.shared / "eval" / "dlib-faces")
    errors = {"without": [], "with": []}  # type: dict[str, list[F64]]
    shifts: list[F64] = []
    cache: dict[Path, tuple[F64, F64, F64]] = {}
    for face in faces:
        if face.image not in cache:
            a, b = without(face.image), with_lnet(face.image)
            if not (np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)):
                print(f"{face.image.name}: boxes differ with LNet", file=sys.stderr)
                return 1
            cache[face.image] = (
                a.boxes.astype(np.float64),
                a.landmarks.astype(np.float64),
                b.landmarks.astype(np.float64),
            )
        boxes, plain, refined = cache[face.image]
        overlaps = iou(face.box, boxes) if len(boxes) else np.zeros(0)
        if not len(overlaps) or overlaps.max() < args.min_iou:
            continue
        best = int(overlaps.argmax())
        ocular = float(np.linalg.norm(face.points[1] - face.points[0]))
        errors["without"].append(np.linalg.norm(plain[best] - face.points, axis=1) / ocular)
        errors["with"].append(np.linalg.norm(refined[best] - face.points, axis=1) / ocular)
        shifts.append(np.linalg.norm(refined[best] - plain[best], axis=1))

    n = len(shifts)
    print(f"annotated faces: {len(faces)}; matched to a detection (IoU >= {args.min_iou}): {n}")
    if not n:
        return 1
    before, after, moved = np.array(errors["without"]), np.array(errors["with"]), np.array(shifts)
    print(f"\n{'landmark':<13}{'NME without':>12}{'NME with':>10}{'better':>8}{'shift px':>10}")
    for k, name in enumerate(NAMES):
        better = int((after[:, k] < before[:, k]).sum())
        print(
            f"{name:<13}{before[:, k].mean():>12.4f}{after[:, k].mean():>10.4f}"
            f"{f'{better}/{n}':>8}{moved[:, k].mean():>10.2f}"
        )
    face_better = int((after.mean(axis=1) < before.mean(axis=1)).sum())
    print(
        f"{'all five':<13}{before.mean():>12.4f}{after.mean():>10.4f}"
        f"{f'{face_better}/{n}':>8}{moved.mean():>10.2f}"
    )
    print(
        f"\nshift LNet applies: mean {moved.mean():.2f} px, median {np.median(moved):.2f} px, "
        f"max {moved.max():.2f} px; points left in place (the 0.35 rule): "
        f"{int((moved == 0).sum())}/{moved.size}"
    )
    print(
        f"NME per face, mean over faces: {before.mean():.4f} -> {after.mean():.4f} "
        f"({(after.mean() - before.mean()) / before.mean():+.1%}); faces with lower error: "
        f"{face_better}/{n}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
