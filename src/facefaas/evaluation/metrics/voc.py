"""Precision/recall at an IoU threshold, PASCAL VOC style (for dlib and other simple sets).

Detections of the whole set are ranked by score. Each, in turn, is matched to the ground-truth
face of largest IoU in its image (continuous areas, no ``+1``); with IoU >= the threshold it is a
true positive if that face counts and was not found yet, *ignored* if the face does not count,
and a false positive otherwise (also when below the threshold). AP is ``VOCap`` of the curve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.curves import PRCurve, voc_ap
from facefaas.evaluation.metrics.results import Evaluation, ImageCounts, ImageResult, SettingResult
from facefaas.evaluation.truth import Dataset

__all__ = ["box_iou", "evaluate_voc"]

FloatArray = npt.NDArray[np.float64]


def box_iou(boxes: npt.ArrayLike, truth: npt.ArrayLike) -> FloatArray:
    """IoU ``(n_boxes, n_truth)`` of ``x1, y1, x2, y2`` boxes (continuous areas)."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 1, 4)
    g = np.asarray(truth, dtype=np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], g[..., 2]) - np.maximum(a[..., 0], g[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], g[..., 3]) - np.maximum(a[..., 1], g[..., 1]), 0, None)
    inter = w * h
    union = (
        (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
        + (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
        - inter
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _label(
    dets: ImageDetections, truth: FloatArray, counted: npt.NDArray[np.bool_], iou: float
) -> npt.NDArray[np.int8]:
    """Per detection (highest score first): 1 true, 0 false, -1 ignored."""
    labels = np.zeros(len(dets), dtype=np.int8)
    if len(truth) == 0 or len(dets) == 0:
        return labels
    overlap = box_iou(dets.boxes, truth)
    found = np.zeros(len(truth), dtype=np.bool_)
    for k, j in enumerate(overlap.argmax(axis=1)):
        if overlap[k, j] < iou:
            continue
        if not counted[j]:
            labels[k] = -1
        elif not found[j]:
            labels[k] = 1
            found[j] = True
    return labels


def evaluate_voc(
    dataset: Dataset, detections: Mapping[str, ImageDetections], *, iou: float = 0.5
) -> Evaluation:
    """Precision/recall and VOC AP per setting at IoU >= ``iou``."""
    results = {}
    per_image: dict[str, dict[str, ImageCounts]] = {im.key: {} for im in dataset.images}
    for setting in dataset.settings:
        scores, labels = [], []
        for image in dataset.images:
            dets = detections.get(image.key, ImageDetections.empty()).sorted()
            lab = _label(dets, image.boxes, image.counted[setting], iou)
            scores.append(dets.scores)
            labels.append(lab)
            per_image[image.key][setting] = ImageCounts(
                int(image.counted[setting].sum()),
                int(np.count_nonzero(lab == 1)),
                int(np.count_nonzero(lab == 0)),
                int(np.count_nonzero(lab == -1)),
            )
        all_scores = np.concatenate(scores) if scores else np.zeros(0)
        all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int8)
        order = np.argsort(-all_scores, kind="stable")
        all_scores, all_labels = all_scores[order], all_labels[order]
        keep = all_labels >= 0
        tp = np.cumsum(all_labels[keep] == 1).astype(np.float64)
        fp = np.cumsum(all_labels[keep] == 0).astype(np.float64)
        faces = sum(c[setting].faces for c in per_image.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = tp / faces if faces else np.full_like(tp, np.nan)
            precision = tp / (tp + fp)
        curve = PRCurve(all_scores[keep], precision, recall)
        results[setting] = SettingResult(
            setting=setting,
            faces=faces,
            tp=int(tp[-1]) if len(tp) else 0,
            fp=int(fp[-1]) if len(fp) else 0,
            ignored=int(np.count_nonzero(~keep)),
            pr=curve,
            ap=voc_ap(recall, precision) if faces else float("nan"),
        )
    images = tuple(
        ImageResult(im.key, len(detections.get(im.key, ImageDetections.empty())), per_image[im.key])
        for im in dataset.images
    )
    return Evaluation("voc", results, images)
