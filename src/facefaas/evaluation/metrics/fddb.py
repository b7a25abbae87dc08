"""The FDDB protocol (Jain & Learned-Miller's ``evaluate``), discrete ROC.

As the official tool computes it:

1. the overlap of a face (ellipse) and a detection (rectangle) is the IoU of their pixel sets,
   drawn on the image grid (clipped to the image when its size is known);
2. for each distinct detection score ``s`` of an image, the detections with score >= ``s`` are
   matched one-to-one to the faces by the Hungarian algorithm maximising the sum of overlaps;
   a matched pair with overlap > 0.5 is a true positive, every other kept detection a false
   positive;
3. over the dataset, at each distinct score threshold, true positives and false positives are
   summed over images; the discrete ROC is (false positives, true positives / faces).

Pixel sets: pixel ``(x, y)`` (integer centres) is inside a rectangle when
``x1 <= x <= x2 and y1 <= y <= y2``, inside an ellipse when its normalised radius is <= 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from facefaas.errors import InputError
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.curves import PRCurve, RocCurve, voc_ap
from facefaas.evaluation.metrics.results import Evaluation, ImageCounts, ImageResult, SettingResult
from facefaas.evaluation.truth import Dataset, ImageTruth
from facefaas.extras import require

__all__ = ["MATCH_THRESHOLD", "ellipse_rect_iou", "evaluate_fddb"]

MATCH_THRESHOLD = 0.5
FloatArray = npt.NDArray[np.float64]


def ellipse_rect_iou(
    ellipse: npt.ArrayLike, box: npt.ArrayLike, size: tuple[int, int] | None = None
) -> float:
    """Pixel IoU of one FDDB ellipse ``(a, b, angle, cx, cy)`` and one box ``x1, y1, x2, y2``."""
    a, b, angle, cx, cy = (float(v) for v in np.asarray(ellipse, dtype=np.float64).ravel()[:5])
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).ravel()[:4])
    reach = max(a, b)
    lo_x, hi_x = np.floor(min(x1, cx - reach)), np.ceil(max(x2, cx + reach))
    lo_y, hi_y = np.floor(min(y1, cy - reach)), np.ceil(max(y2, cy + reach))
    if size is not None:
        lo_x, lo_y = max(lo_x, 0.0), max(lo_y, 0.0)
        hi_x, hi_y = min(hi_x, size[0] - 1.0), min(hi_y, size[1] - 1.0)
    if hi_x < lo_x or hi_y < lo_y:
        return 0.0
    xs = np.arange(lo_x, hi_x + 1)[None, :]
    ys = np.arange(lo_y, hi_y + 1)[:, None]
    dx, dy = xs - cx, ys - cy
    cos, sin = np.cos(angle), np.sin(angle)
    inside_e = ((dx * cos + dy * sin) / a) ** 2 + ((-dx * sin + dy * cos) / b) ** 2 <= 1.0
    inside_r = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
    union = int(np.count_nonzero(inside_e | inside_r))
    return int(np.count_nonzero(inside_e & inside_r)) / union if union else 0.0


def _overlaps(image: ImageTruth, ellipses: FloatArray, dets: ImageDetections) -> FloatArray:
    out = np.zeros((len(ellipses), len(dets)))
    bounds = image.boxes
    for i, ellipse in enumerate(ellipses):
        for j, box in enumerate(dets.boxes):
            disjoint = (
                box[0] > bounds[i, 2] + 1
                or box[2] < bounds[i, 0] - 1
                or box[1] > bounds[i, 3] + 1
                or box[3] < bounds[i, 1] - 1
            )
            if not disjoint:
                out[i, j] = ellipse_rect_iou(ellipse, box, image.size)
    return out


def _true_positives(overlap: FloatArray) -> int:
    if overlap.size == 0 or not overlap.any():
        return 0
    linear_sum_assignment = require("scipy.optimize").linear_sum_assignment
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return int(np.count_nonzero(overlap[rows, cols] > MATCH_THRESHOLD))


def _image_steps(
    image: ImageTruth, ellipses: FloatArray, dets: ImageDetections
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Distinct scores (ascending) and the image's true/false positives at each of them."""
    if len(dets) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    overlap = _overlaps(image, ellipses, dets)
    scores = np.unique(dets.scores)
    tps = np.zeros(len(scores))
    fps = np.zeros(len(scores))
    for k, s in enumerate(scores):
        kept = dets.scores >= s
        tps[k] = _true_positives(overlap[:, kept])
        fps[k] = np.count_nonzero(kept) - tps[k]
    return scores, tps, fps


def evaluate_fddb(dataset: Dataset, detections: Mapping[str, ImageDetections]) -> Evaluation:
    """Discrete ROC (and the precision/recall it implies) by the FDDB protocol."""
    steps = []
    images = []
    for image in dataset.images:
        if image.ellipses is None:
            raise InputError(f"{image.key}: FDDB evaluation needs ellipse annotations")
        dets = detections.get(image.key, ImageDetections.empty())
        scores, tps, fps = _image_steps(image, image.ellipses, dets)
        steps.append((scores, tps, fps))
        tp0, fp0 = (int(tps[0]), int(fps[0])) if len(scores) else (0, 0)
        images.append(
            ImageResult(image.key, len(dets), {"all": ImageCounts(len(image), tp0, fp0, 0)})
        )
    faces = sum(len(im) for im in dataset.images)
    every = [s for s, _, _ in steps if len(s)]
    grid = np.unique(np.concatenate(every)) if every else np.zeros(0)  # ascending
    tp_diff = np.zeros(len(grid) + 1)
    fp_diff = np.zeros(len(grid) + 1)
    for scores, tps, fps in steps:
        # the image's result at its score u_k holds for thresholds in (u_{k-1}, u_k]
        ends = np.searchsorted(grid, scores, side="right")
        starts = np.concatenate([[0], ends[:-1]])
        np.add.at(tp_diff, starts, tps)
        np.add.at(tp_diff, ends, -tps)
        np.add.at(fp_diff, starts, fps)
        np.add.at(fp_diff, ends, -fps)
    tp = np.cumsum(tp_diff)[: len(grid)][::-1]
    fp = np.cumsum(fp_diff)[: len(grid)][::-1]
    thresholds = np.concatenate([[np.inf], grid[::-1]])
    tp = np.concatenate([[0.0], tp])
    fp = np.concatenate([[0.0], fp])
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / faces if faces else np.full_like(tp, np.nan)
        precision = tp / (tp + fp)
    roc = RocCurve(thresholds, fp, tpr)
    pr = PRCurve(thresholds, precision, tpr)
    result = SettingResult(
        setting="all",
        faces=faces,
        tp=int(tp[-1]),
        fp=int(fp[-1]),
        ignored=0,
        pr=pr,
        roc=roc,
        ap=voc_ap(pr.recall, pr.precision),
    )
    return Evaluation("fddb", {"all": result}, tuple(images))
