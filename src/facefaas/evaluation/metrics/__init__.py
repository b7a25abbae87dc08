"""Detection metrics: WIDER FACE AP, FDDB discrete ROC, VOC precision/recall."""

from facefaas.evaluation.metrics.curves import PRCurve, RocCurve, voc_ap
from facefaas.evaluation.metrics.fddb import ellipse_rect_iou, evaluate_fddb
from facefaas.evaluation.metrics.protocol import PROTOCOLS, evaluate_detections
from facefaas.evaluation.metrics.results import Evaluation, ImageCounts, ImageResult, SettingResult
from facefaas.evaluation.metrics.voc import box_iou, evaluate_voc
from facefaas.evaluation.metrics.wider import evaluate_wider, normalize_scores, wider_iou

__all__ = [
    "PROTOCOLS",
    "Evaluation",
    "ImageCounts",
    "ImageResult",
    "PRCurve",
    "RocCurve",
    "SettingResult",
    "box_iou",
    "ellipse_rect_iou",
    "evaluate_detections",
    "evaluate_fddb",
    "evaluate_voc",
    "evaluate_wider",
    "normalize_scores",
    "voc_ap",
    "wider_iou",
]
