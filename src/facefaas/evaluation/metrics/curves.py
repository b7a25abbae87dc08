"""Curve types and the VOC average precision.

:func:`voc_ap` is PASCAL VOC's ``VOCap`` (the one the WIDER FACE tools call): the area under the
precision *envelope* (precision made non-increasing from the right), summed where recall changes.
MATLAB's ``max`` skips NaN, so a NaN precision (no detection above a threshold) counts as absent;
``np.fmax`` does the same here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PRCurve", "RocCurve", "voc_ap"]

FloatArray = npt.NDArray[np.float64]


def voc_ap(recall: npt.ArrayLike, precision: npt.ArrayLike) -> float:
    """Average precision of a curve given in order of increasing recall (``VOCap``)."""
    rec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64).ravel(), [1.0]])
    pre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64).ravel(), [0.0]])
    if len(rec) != len(pre):
        raise ValueError("recall and precision differ in length")
    envelope = np.fmax.accumulate(pre[::-1])[::-1]
    changed = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.sum((rec[changed] - rec[changed - 1]) * envelope[changed]))


@dataclass(frozen=True, eq=False)
class PRCurve:
    """Precision and recall at decreasing score thresholds (all ``(k,)`` float64).

    ``precision`` may hold NaN where no detection passes the threshold.
    """

    thresholds: FloatArray
    precision: FloatArray
    recall: FloatArray

    @property
    def ap(self) -> float:
        return voc_ap(self.recall, self.precision)


@dataclass(frozen=True, eq=False)
class RocCurve:
    """Discrete ROC: true-positive rate against the number of false positives, per threshold."""

    thresholds: FloatArray
    false_positives: FloatArray
    true_positive_rate: FloatArray

    def tpr_at(self, false_positives: float) -> float:
        """The highest true-positive rate reached with at most ``false_positives`` of them."""
        ok = self.false_positives <= false_positives
        return float(self.true_positive_rate[ok].max()) if ok.any() else 0.0
