"""FDDB: ellipse annotations, ellipse/rectangle overlap, one-to-one matching, discrete ROC."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facefaas.errors import InputError
from facefaas.evaluation.datasets import ellipse_bounds, load_fddb, parse_ellipse_list
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.fddb import _true_positives, ellipse_rect_iou, evaluate_fddb
from facefaas.evaluation.truth import Dataset, ImageTruth

ELLIPSES = """\
2002/08/11/big/img_591
1
40.0 30.0 1.5707963 100.0 100.0  1
2002/08/26/big/img_265
2
20.0 20.0 0.0 50.0 50.0  1
20.0 20.0 0.0 150.0 50.0  1
"""


def test_ellipse_list_parses_keys_and_five_numbers() -> None:
    parsed = parse_ellipse_list(ELLIPSES)
    assert [k for k, _ in parsed] == ["2002/08/11/big/img_591", "2002/08/26/big/img_265"]
    np.testing.assert_allclose(parsed[1][1][1], [20, 20, 0, 150, 50])


def test_ellipse_list_with_missing_lines_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_ellipse_list("img\n2\n1 2 3 4 5 1\n")


def test_vertical_ellipse_bounds_swap_the_axes() -> None:
    # major radius 40 along angle pi/2 points down: 60 wide, 80 high
    np.testing.assert_allclose(
        ellipse_bounds([[40, 30, math.pi / 2, 100, 100]]), [[70, 60, 130, 140]], atol=1e-6
    )


def test_load_fddb_reads_the_chosen_folds(tmp_path: Path) -> None:
    (tmp_path / "FDDB-fold-03-ellipseList.txt").write_text(ELLIPSES)
    dataset = load_fddb(tmp_path, folds=["03"])
    assert dataset.settings == ("all",)
    assert dataset.face_counts() == {"all": 3}
    assert dataset.images[0].path is None
    with pytest.raises(InputError, match="unknown FDDB fold"):
        load_fddb(tmp_path, folds=["11"])


def test_load_fddb_with_images_keeps_present_ones_and_their_sizes(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "FDDB-fold-01-ellipseList.txt").write_text(ELLIPSES)
    image = tmp_path / "pics" / "2002/08/26/big/img_265.jpg"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (200, 120)).save(image)
    dataset = load_fddb(tmp_path, images=tmp_path / "pics", folds=["01"])
    assert [im.key for im in dataset.images] == ["2002/08/26/big/img_265"]
    assert dataset.images[0].size == (200, 120)


def test_shared_fddb_annotations_have_the_official_totals(shared: Path) -> None:
    dataset = load_fddb(shared / "eval" / "fddb-annotations" / "FDDB-folds")
    assert len(dataset) == 2845
    assert dataset.face_counts() == {"all": 5171}


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([80, 80, 120, 120], math.pi * 400 / 41**2),  # the bounding square: 41 x 41 pixels
        ([90, 90, 110, 110], (21 * 21) / (math.pi * 400)),  # a square inside the circle
        ([300, 300, 320, 320], 0.0),
    ],
    ids=["bounding-square", "inner-square", "disjoint"],
)
def test_ellipse_rect_iou_counts_pixels(box: list[float], expected: float) -> None:
    circle = [20, 20, 0.0, 100, 100]
    assert ellipse_rect_iou(circle, box) == pytest.approx(expected, abs=0.03)


def test_overlap_is_clipped_to_the_image() -> None:
    circle = [20, 20, 0.0, 0, 0]  # centred on the corner: only a quarter is inside
    quarter = ellipse_rect_iou(circle, [0, 0, 20, 20], size=(100, 100))
    assert quarter == pytest.approx(math.pi * 100 / 21**2, abs=0.05)


def test_hungarian_matching_beats_greedy() -> None:
    # greedy would give detection 0 to face 0 (0.9) and leave face 1 unmatched (0.6 > 0.5 lost)
    overlap = np.array([[0.9, 0.8], [0.6, 0.0]])
    assert _true_positives(overlap) == 2


def test_one_detection_matches_one_face_only() -> None:
    assert _true_positives(np.array([[0.9], [0.8]])) == 1


def _circles() -> Dataset:
    ellipses = np.array([[20, 20, 0.0, 50, 50], [20, 20, 0.0, 150, 50]], float)
    image = ImageTruth(
        "img", None, ellipse_bounds(ellipses), {"all": np.ones(2, bool)}, ellipses, (200, 100)
    )
    return Dataset("fddb", ("all",), (image,))


def test_discrete_roc_steps_through_each_score() -> None:
    dets = {
        "img": ImageDetections(
            [[32, 32, 68, 68], [0, 80, 10, 99], [132, 32, 168, 68]], [0.9, 0.8, 0.7]
        )
    }
    setting = evaluate_fddb(_circles(), dets).settings["all"]
    assert setting.roc is not None
    np.testing.assert_array_equal(setting.roc.thresholds, [np.inf, 0.9, 0.8, 0.7])
    np.testing.assert_array_equal(setting.roc.false_positives, [0, 0, 1, 1])
    np.testing.assert_array_equal(setting.roc.true_positive_rate, [0, 0.5, 0.5, 1.0])
    assert setting.roc.tpr_at(0) == 0.5 and setting.roc.tpr_at(1) == 1.0
    assert (setting.tp, setting.fp, setting.faces) == (2, 1, 2)


def test_roc_sums_images_at_shared_thresholds() -> None:
    first = _circles().images[0]
    second = ImageTruth("img2", None, first.boxes, first.counted, first.ellipses, first.size)
    dataset = Dataset("fddb", ("all",), (first, second))
    dets = {
        "img": ImageDetections([[32, 32, 68, 68]], [0.9]),
        "img2": ImageDetections([[132, 32, 168, 68], [0, 80, 10, 99]], [0.5, 0.95]),
    }
    roc = evaluate_fddb(dataset, dets).settings["all"].roc
    assert roc is not None
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.95, 0.9, 0.5])
    np.testing.assert_array_equal(roc.false_positives, [0, 1, 1, 1])
    np.testing.assert_array_equal(roc.true_positive_rate, [0, 0, 0.25, 0.5])
