"""What a metric returns: totals and curves per setting, and counts per image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from facefaas.evaluation.metrics.curves import PRCurve, RocCurve

__all__ = ["Evaluation", "ImageCounts", "ImageResult", "SettingResult"]


@dataclass(frozen=True)
class ImageCounts:
    """Counts for one image and setting, with every detection kept (the lowest threshold).

    ``tp`` faces found, ``fp`` detections matching no counted face, ``ignored`` detections
    matched to an ignored face (neither true nor false), ``faces`` faces that count.
    """

    faces: int
    tp: int
    fp: int
    ignored: int


@dataclass(frozen=True)
class ImageResult:
    """One image: its key, how many detections it had, and the counts per setting."""

    key: str
    detections: int
    counts: Mapping[str, ImageCounts]


@dataclass(frozen=True, eq=False)
class SettingResult:
    """Totals and curves of one setting.

    ``ap`` is the VOC average precision of ``pr`` (NaN when the setting has no face; ``None``
    for FDDB, whose figure of merit is the ROC).
    """

    setting: str
    faces: int
    tp: int
    fp: int
    ignored: int
    pr: PRCurve
    roc: RocCurve | None = None
    ap: float | None = None

    @property
    def recall(self) -> float:
        return self.tp / self.faces if self.faces else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The result of one protocol on one set of detections."""

    protocol: str
    settings: Mapping[str, SettingResult]
    images: tuple[ImageResult, ...]
