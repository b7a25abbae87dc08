"""The WIDER FACE protocol, as the official MATLAB ``eval_tools`` compute it, vectorised.

Per the official code (``wider_eval.m``, ``norm_score.m``, ``evaluation.m``, ``VOCap``):

1. scores are min-max normalised over *all* detections of all images evaluated;
2. per image, detections are taken highest score first; each is matched to the ground-truth
   face of largest IoU (the first one on ties). If that IoU is >= 0.5 and the face is not
   counted in the setting, the detection is *ignored* (neither true nor false positive); if the
   face counts and was not found yet, it is now found. Matching does not remove faces: a second
   detection of a found face is a false positive;
3. IoU uses ``x2 = x + w`` and areas ``(x2 - x1 + 1) * (y2 - y1 + 1)`` (the ``+1`` pixel
   convention), zero when the overlap's width or height is <= 0;
4. at each of 1000 thresholds ``1 - t / 1000`` (t = 1..1000), per image: proposals = kept
   detections with score >= threshold, found = faces found by them; both are summed over images,
   precision = found / proposals, recall = found / faces counted (over every image, including
   those without detections);
5. AP is ``VOCap`` of that curve. Images without ground truth or without detections add
   faces to the count and nothing else.

One documented difference: when every score is the same, the official normalisation divides by
zero (all detections then fail every threshold); here they all normalise to 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.curves import PRCurve, voc_ap
from facefaas.evaluation.metrics.results import Evaluation, ImageCounts, ImageResult, SettingResult
from facefaas.evaluation.truth import Dataset

__all__ = [
    "IOU_THRESHOLD",
    "THRESHOLD_COUNT",
    "evaluate_wider",
    "normalize_scores",
    "wider_iou",
    "wider_thresholds",
]

IOU_THRESHOLD = 0.5
THRESHOLD_COUNT = 1000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def wider_thresholds(count: int = THRESHOLD_COUNT) -> FloatArray:
    """``1 - t / count`` for ``t = 1..count`` (decreasing, ending at 0)."""
    return np.array([1 - t / count for t in range(1, count + 1)], dtype=np.float64)


def wider_iou(boxes: npt.ArrayLike, truth: npt.ArrayLike) -> FloatArray:
    """IoU ``(n_boxes, n_truth)`` of ``x1, y1, x2, y2`` boxes with the official ``+1`` areas."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 1, 4)
    g = np.asarray(truth, dtype=np.float64).reshape(1, -1, 4)
    w = np.minimum(g[..., 2], a[..., 2]) - np.maximum(g[..., 0], a[..., 0]) + 1
    h = np.minimum(g[..., 3], a[..., 3]) - np.maximum(g[..., 1], a[..., 1]) + 1
    inter = w * h
    g_area = (g[..., 2] - g[..., 0] + 1) * (g[..., 3] - g[..., 1] + 1)
    a_area = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (g_area + a_area - inter)
    return np.where((w > 0) & (h > 0), iou, 0.0)


def normalize_scores(
    detections: Mapping[str, ImageDetections], keys: list[str] | None = None
) -> dict[str, ImageDetections]:
    """Min-max normalise the scores over all images (of ``keys``), sorted highest first."""
    chosen = {
        k: detections[k] for k in (keys if keys is not None else detections) if k in detections
    }
    scores = [d.scores for d in chosen.values() if len(d)]
    if not scores:
        return {k: d.sorted() for k, d in chosen.items()}
    every = np.concatenate(scores)
    low, high = float(every.min()), float(every.max())
    out = {}
    for key, dets in chosen.items():
        normed = (dets.scores - low) / (high - low) if high > low else np.ones_like(dets.scores)
        out[key] = ImageDetections(dets.boxes, normed).sorted()
    return out


def _image_curves(
    dets: ImageDetections,
    truth: FloatArray,
    counted: Mapping[str, BoolArray],
    thresholds: FloatArray,
) -> dict[str, tuple[IntArray, IntArray, ImageCounts]]:
    """Per setting: proposals and found faces at each threshold, and the lowest-threshold counts."""
    overlap = wider_iou(dets.boxes, truth)
    best = overlap.argmax(axis=1)
    matched = overlap[np.arange(len(dets)), best] >= IOU_THRESHOLD
    # number of detections with score >= threshold (scores are sorted, highest first)
    passing = np.searchsorted(-dets.scores, -thresholds, side="right")
    out = {}
    for setting, mask in counted.items():
        proposal = ~(matched & ~mask[best])
        hit = matched & mask[best]
        first_hit = np.zeros(len(dets), dtype=np.int64)
        hit_idx = np.flatnonzero(hit)
        _, first = np.unique(best[hit_idx], return_index=True)
        first_hit[hit_idx[first]] = 1
        found = np.cumsum(first_hit)
        proposals = np.cumsum(proposal.astype(np.int64))
        at = np.maximum(passing - 1, 0)
        t_props = np.where(passing > 0, proposals[at], 0)
        t_found = np.where(passing > 0, found[at], 0)
        n_prop, n_found = int(proposals[-1]), int(found[-1])
        counts = ImageCounts(int(mask.sum()), n_found, n_prop - n_found, len(dets) - n_prop)
        out[setting] = (t_props, t_found, counts)
    return out


def evaluate_wider(
    dataset: Dataset,
    detections: Mapping[str, ImageDetections],
    *,
    threshold_count: int = THRESHOLD_COUNT,
) -> Evaluation:
    """AP per setting by the official WIDER FACE protocol (see the module docstring)."""
    thresholds = wider_thresholds(threshold_count)
    normed = normalize_scores(detections, [im.key for im in dataset.images])
    props = {s: np.zeros(len(thresholds), np.int64) for s in dataset.settings}
    found = {s: np.zeros(len(thresholds), np.int64) for s in dataset.settings}
    images = []
    for image in dataset.images:
        dets = normed.get(image.key, ImageDetections.empty())
        counted = {s: image.counted[s] for s in dataset.settings}
        if len(dets) == 0 or len(image) == 0:
            counts = {s: ImageCounts(int(m.sum()), 0, 0, 0) for s, m in counted.items()}
        else:
            per_setting = _image_curves(dets, image.boxes, counted, thresholds)
            counts = {}
            for s, (t_props, t_found, c) in per_setting.items():
                props[s] += t_props
                found[s] += t_found
                counts[s] = c
        images.append(ImageResult(image.key, len(dets), counts))
    results = {}
    for s in dataset.settings:
        faces = sum(im.counts[s].faces for im in images)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = found[s] / props[s]
            recall = found[s] / np.float64(faces)
        curve = PRCurve(thresholds, precision.astype(np.float64), recall.astype(np.float64))
        results[s] = SettingResult(
            setting=s,
            faces=faces,
            tp=sum(im.counts[s].tp for im in images),
            fp=sum(im.counts[s].fp for im in images),
            ignored=sum(im.counts[s].ignored for im in images),
            pr=curve,
            ap=voc_ap(curve.recall, curve.precision),
        )
    return Evaluation("wider", results, tuple(images))
