"""`estimate_cost`: what detecting faces in an image will cost, known before running it.

The cost of MTCNN is set by the image's size (read from its header) and the parameters: the
pyramid (``min_size`` sets the first level's scale, ``factor`` how many levels follow) fixes the
P-Net work and most of the memory, and the cascade's NMS keeps at most
:data:`~facefaas.mtcnn.constants.NMS_MAX_OUTPUT` candidates per stage, which bounds R-Net and
O-Net. The service admits requests by this estimate (a batch costs the sum of its images),
refuses one over the per-request limit with the estimate in the answer, or, when asked, scales
the image down until it fits (:func:`fit_scale`).

Memory, per pixel of the image and of the pyramid (measured peaks are compared with these in
``tests/test_cost.py``; ``benchmarks/cost_calibration.py`` measures them):

* the decoded image and its normalised float32 copy: :data:`IMAGE_BYTES_PER_PIXEL`;
* every large pyramid level, resized at once before P-Net runs in bands over it:
  :data:`LEVEL_BYTES_PER_PIXEL` (float32, three channels);
* P-Net's outputs of every level, kept until candidates are taken from them:
  :data:`OUTPUT_BYTES_PER_PIXEL` of level pixels;
* the largest level's candidate arrays at a low threshold, one level at a time:
  :data:`CANDIDATE_BYTES_PER_PIXEL`;
* a fixed part for crops, R-Net/O-Net chunks and the answer: :data:`FIXED_BYTES`.

Work is counted in multiply-adds (GMAC): P-Net's per level pixel from its layers' shapes, and
R-Net/O-Net per candidate at their bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facefaas.errors import ParameterError
from facefaas.mtcnn.constants import NMS_MAX_OUTPUT
from facefaas.params import DetectionParams

__all__ = [
    "CANDIDATE_BYTES_PER_PIXEL",
    "FIXED_BYTES",
    "IMAGE_BYTES_PER_PIXEL",
    "LEVEL_BYTES_PER_PIXEL",
    "OUTPUT_BYTES_PER_PIXEL",
    "Cost",
    "estimate_cost",
    "fit_scale",
]

MiB = 1024 * 1024

IMAGE_BYTES_PER_PIXEL = 18  # RGB decode (with Pillow's 4-byte pixels) + float32 planar copy
LEVEL_BYTES_PER_PIXEL = 12  # a resized level: 3 channels of float32
OUTPUT_BYTES_PER_PIXEL = 13  # per level pixel: one cell per 4 pixels, 6 floats + the probability
CANDIDATE_BYTES_PER_PIXEL = 24  # boxes, scores and offsets of every cell of one level, transient
FIXED_BYTES = 56 * MiB

_BAND_LEVEL_PIXELS = 60_000  # as runtime.sessions: larger levels are resized whole, then banded

# Multiply-adds per level pixel (P-Net: conv1 3x3x3x10 at full resolution, then conv2 3x3x10x16,
# conv3 3x3x16x32 and the 1x1 heads 32->6 at a quarter of it) and per candidate (R-Net, O-Net).
PNET_MAC_PER_PIXEL = 270 + (1440 + 4608 + 192) / 4
RNET_MAC_PER_CROP = 1.53e6
ONET_MAC_PER_CROP = 12.9e6


@dataclass(frozen=True)
class Cost:
    """The estimated cost of one detection.

    Attributes:
        width, height: the image, pixels.
        levels: pyramid levels.
        pyramid_pixels: pixels of all levels together.
        gmac: multiply-adds, billions (P-Net exact; R-Net and O-Net at their candidate bound).
        peak_bytes: peak memory the detection adds to the process.
    """

    width: int
    height: int
    levels: int
    pyramid_pixels: int
    gmac: float
    peak_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "levels": self.levels,
            "pyramid_pixels": self.pyramid_pixels,
            "gmac": round(self.gmac, 2),
            "peak_bytes": self.peak_bytes,
            "peak_mib": round(self.peak_bytes / MiB, 1),
        }


def _level_sizes(width: int, height: int, params: DetectionParams) -> list[int]:
    sizes = []
    for scale in params.scales(height, width):
        # As mtcnn.pipeline.pyramid_sizes, in float64 (the difference is under a pixel a side).
        sizes.append(int(height * scale) * int(width * scale))
    return sizes


def estimate_cost(width: int, height: int, params: DetectionParams) -> Cost:
    """The cost of detecting faces in a ``width`` x ``height`` image with ``params``.

    Raises:
        ParameterError: a non-positive size, or parameters that give over 200 levels.
    """
    if width < 1 or height < 1:
        raise ParameterError(f"an image is at least 1x1 pixels, got {width}x{height}")
    pixels = width * height
    levels = _level_sizes(width, height, params)
    pyramid = sum(levels)
    large = sum(size for size in levels if size > _BAND_LEVEL_PIXELS)
    largest = max(levels, default=0)
    peak = (
        FIXED_BYTES
        + IMAGE_BYTES_PER_PIXEL * pixels
        + LEVEL_BYTES_PER_PIXEL * large
        + OUTPUT_BYTES_PER_PIXEL * pyramid
        + CANDIDATE_BYTES_PER_PIXEL * largest // 4
    )
    candidates = NMS_MAX_OUTPUT if levels else 0
    gmac = (
        PNET_MAC_PER_PIXEL * pyramid + (RNET_MAC_PER_CROP + ONET_MAC_PER_CROP) * candidates
    ) / 1e9
    return Cost(width, height, len(levels), pyramid, gmac, int(peak))


def fit_scale(
    width: int,
    height: int,
    params: Any,
    limit_bytes: int,
    estimate: Callable[[int, int, Any], Cost] = estimate_cost,
) -> float:
    """The largest scale in ``(0, 1]`` at which the image's estimated peak fits ``limit_bytes``
    (``params`` and ``estimate``: the model family's parameters and cost function, MTCNN's by
    default).

    The detection then runs on the image resized by that scale (its faces mapped back to the
    original's coordinates); faces smaller than ``min_size / scale`` original pixels are missed.

    Raises:
        ParameterError: not even a 12-pixel version of the image fits the limit.
    """
    if estimate(width, height, params).peak_bytes <= limit_bytes:
        return 1.0
    low, high = 0.0, 1.0  # fits at low (or nothing fits), not at high
    smallest = min(1.0, 12.0 / min(width, height))

    def peak(scale: float) -> int:
        w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
        return estimate(w, h, params).peak_bytes

    if peak(smallest) > limit_bytes:
        raise ParameterError(
            f"even scaled down to {max(1, round(width * smallest))}x"
            f"{max(1, round(height * smallest))} the image does not fit the cost limit of "
            f"{limit_bytes} bytes"
        )
    low = smallest
    for _ in range(30):  # to a 1e-9 relative step
        middle = (low + high) / 2
        if peak(middle) <= limit_bytes:
            low = middle
        else:
            high = middle
    return low
