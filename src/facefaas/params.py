"""`DetectionParams`: the knobs of one MTCNN run, validated once.

Defaults are the seed's: ``min_size=20``, ``thresholds=(0.6, 0.7, 0.7)``, ``factor=0.709``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from facefaas.errors import ParameterError

__all__ = ["SEED_PARAMS", "DetectionParams"]

_MAX_SCALES = 200  # a pyramid deeper than this is a mistake, not a request


@dataclass(frozen=True)
class DetectionParams:
    """Parameters of one detection.

    Attributes:
        min_size: smallest face side to look for, in pixels (>= 6; the pyramid starts at
            ``12 / min_size``).
        thresholds: face-probability thresholds of P-Net, R-Net and O-Net, each in ``[0, 1)``;
            a candidate is kept when its probability is strictly greater.
        factor: scale step between pyramid levels, in ``(0.1, 0.95]``.
    """

    min_size: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709

    def __post_init__(self) -> None:
        try:
            min_size = float(self.min_size)
            thresholds = tuple(float(t) for t in self.thresholds)
            factor = float(self.factor)
        except (TypeError, ValueError):
            raise ParameterError(
                "min_size and factor must be numbers and thresholds three numbers"
            ) from None
        if not math.isfinite(min_size) or min_size < 6:
            raise ParameterError(f"min_size must be a number >= 6 (pixels), got {self.min_size!r}")
        if len(thresholds) != 3:
            raise ParameterError(f"thresholds must be three numbers, got {len(thresholds)}")
        for t in thresholds:
            if not (0.0 <= t < 1.0):
                raise ParameterError(f"each threshold must be in [0, 1), got {t!r}")
        if not (0.1 < factor <= 0.95):
            raise ParameterError(f"factor must be in (0.1, 0.95], got {self.factor!r}")
        object.__setattr__(self, "min_size", min_size)
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "factor", factor)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: DetectionParams | None = None
    ) -> DetectionParams:
        """Parameters from a mapping (JSON, query string); missing keys come from ``base``.

        ``thresholds`` may be a sequence or a comma-separated string. Unknown keys are an error.
        """
        base = base or cls()
        unknown = sorted(set(values) - {"min_size", "thresholds", "factor"})
        if unknown:
            raise ParameterError(f"unknown detection parameter(s): {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        if values.get("min_size") is not None:
            changes["min_size"] = values["min_size"]
        if values.get("factor") is not None:
            changes["factor"] = values["factor"]
        thresholds = values.get("thresholds")
        if thresholds is not None:
            if isinstance(thresholds, str):
                thresholds = [p for p in thresholds.replace(" ", "").split(",") if p]
            if not isinstance(thresholds, Sequence):
                raise ParameterError("thresholds must be three numbers")
            changes["thresholds"] = tuple(thresholds)
        return replace(base, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["thresholds"] = list(self.thresholds)
        return data

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales for an image, as the seed's graph computes them (float32 steps)."""
        import numpy as np

        from facefaas.mtcnn.constants import PNET_CELL, PNET_MIN_SIDE

        min_side = np.float32(min(height, width))
        scale = np.float32(PNET_CELL) / np.float32(self.min_size)
        factor = np.float32(self.factor)
        scales: list[float] = []
        while min_side * scale > PNET_MIN_SIDE:
            scales.append(float(scale))
            scale = np.float32(scale * factor)
            if len(scales) > _MAX_SCALES:
                raise ParameterError("min_size and factor give a pyramid of over 200 levels")
        return scales


SEED_PARAMS = DetectionParams()
