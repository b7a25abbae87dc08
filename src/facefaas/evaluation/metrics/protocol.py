"""Pick the protocol that belongs to a dataset."""

from __future__ import annotations

from collections.abc import Mapping

from facefaas.errors import ParameterError
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.fddb import evaluate_fddb
from facefaas.evaluation.metrics.results import Evaluation
from facefaas.evaluation.metrics.voc import evaluate_voc
from facefaas.evaluation.metrics.wider import evaluate_wider
from facefaas.evaluation.truth import Dataset

__all__ = ["PROTOCOLS", "evaluate_detections"]

PROTOCOLS = {"wider": "wider", "fddb": "fddb", "dlib": "voc"}


def evaluate_detections(
    dataset: Dataset, detections: Mapping[str, ImageDetections], *, iou: float = 0.5
) -> Evaluation:
    """WIDER AP for WIDER, the FDDB ROC for FDDB, VOC precision/recall at ``iou`` otherwise.

    ``iou`` applies to the VOC protocol only (the official WIDER and FDDB protocols fix 0.5).
    """
    if not 0.0 < iou <= 1.0:
        raise ParameterError(f"iou must be in (0, 1], got {iou!r}")
    protocol = PROTOCOLS.get(dataset.name, "voc")
    if protocol == "wider":
        return evaluate_wider(dataset, detections)
    if protocol == "fddb":
        return evaluate_fddb(dataset, detections)
    return evaluate_voc(dataset, detections, iou=iou)
