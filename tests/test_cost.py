"""The cost model: estimates that follow the pyramid, scale-to-fit, and measured peaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facefaas.cost import FIXED_BYTES, estimate_cost, fit_scale
from facefaas.errors import ParameterError
from facefaas.params import DetectionParams

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


def test_cost_grows_with_the_image_and_the_pyramid() -> None:
    seed = DetectionParams()
    small = estimate_cost(640, 480, seed)
    large = estimate_cost(1280, 960, seed)
    assert large.peak_bytes - FIXED_BYTES > 3.9 * (small.peak_bytes - FIXED_BYTES)
    assert large.pyramid_pixels > 3.9 * small.pyramid_pixels
    finer = estimate_cost(640, 480, DetectionParams(min_size=6, factor=0.95))
    assert finer.levels > 3 * small.levels
    assert finer.peak_bytes - FIXED_BYTES > 10 * (small.peak_bytes - FIXED_BYTES)
    assert finer.gmac > 2 * small.gmac  # P-Net's part; R-Net and O-Net are at their bound


def test_the_pyramid_matches_the_cascade() -> None:
    from facefaas.mtcnn.pipeline import pyramid_sizes

    params = DetectionParams(min_size=15, factor=0.8)
    cost = estimate_cost(960, 661, params)
    levels = pyramid_sizes(661, 960, params)
    assert cost.levels == len(levels)
    assert cost.pyramid_pixels == pytest.approx(sum(h * w for _, h, w in levels), rel=0.01)


def test_the_reported_deep_request_is_estimated_far_over_a_gigabyte() -> None:
    # The request: a 14-Mpx photo with min_size=6 and factor=0.95 took 141 s and 13.5 GB.
    cost = estimate_cost(3061, 4600, DetectionParams(min_size=6, factor=0.95))
    assert cost.levels == 122
    assert cost.peak_bytes > 10 * 1024 * MiB
    assert cost.to_dict()["peak_mib"] == round(cost.peak_bytes / MiB, 1)


def test_fit_scale_finds_the_largest_scale_that_fits() -> None:
    params = DetectionParams(min_size=6, factor=0.95)
    limit = 1024 * MiB
    scale = fit_scale(3061, 4600, params, limit)
    assert 0.05 < scale < 0.5
    fits = estimate_cost(int(3061 * scale), int(4600 * scale), params)
    assert fits.peak_bytes <= limit
    bigger = estimate_cost(int(3061 * scale * 1.05), int(4600 * scale * 1.05), params)
    assert bigger.peak_bytes > limit
    assert fit_scale(640, 480, DetectionParams(), limit) == 1.0
    with pytest.raises(ParameterError, match="does not fit"):
        fit_scale(3061, 4600, params, 10 * MiB)


_CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
from facefaas.detector import Detector
from facefaas.params import DetectionParams

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

width, height, params = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
rng = np.random.default_rng(0)
detector = Detector(threads=2)
detector(np.zeros((64, 64, 3), np.uint8))
noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # made before the baseline
base = status("VmRSS")
detector.detect(noise, DetectionParams(**params))
print(json.dumps({"added": status("VmHWM") - base}))
"""


@pytest.mark.parametrize(
    ("width", "height", "params"),
    [
        (1600, 1200, {}),
        (1600, 1200, {"min_size": 12, "factor": 0.85}),
        (800, 600, {"min_size": 6, "factor": 0.95, "thresholds": [0.0, 0.0, 0.0]}),
    ],
)
def test_the_estimate_bounds_the_measured_peak_within_a_factor_of_two(
    width: int, height: int, params: dict[str, object]
) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read peak memory")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(width), str(height), json.dumps(params)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    added = json.loads(out.stdout.strip().splitlines()[-1])["added"]
    estimate = estimate_cost(width, height, DetectionParams(**params)).peak_bytes  # type: ignore[arg-type]
    # The image itself was allocated before the baseline: it is part of the estimate only.
    image = 3 * width * height
    assert added <= estimate, f"measured {added / MiB:.0f} MiB > estimate {estimate / MiB:.0f}"
    assert estimate - image <= 2 * added + 64 * MiB, (
        f"estimate {estimate / MiB:.0f} MiB is over twice the measured {added / MiB:.0f} MiB"
    )
