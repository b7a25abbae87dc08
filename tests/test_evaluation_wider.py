"""WIDER FACE: ground-truth parsing, IoU convention, score normalisation, per-image counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facefaas.errors import InputError
from facefaas.evaluation.datasets import load_wider, parse_wider_txt
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.wider import (
    evaluate_wider,
    normalize_scores,
    wider_iou,
    wider_thresholds,
)
from facefaas.evaluation.truth import Dataset, ImageTruth

BBX_TXT = """\
1--Event/1_a.jpg
2
10 10 20 20 0 0 0 0 0 0
50 60 8 9 2 0 0 1 0 0
1--Event/1_b.jpg
0
0 0 0 0 0 0 0 0 0 0
2--Other/2_c.jpg
1
5 5 40 30 1 1 0 0 2 1
"""


def _write_images(root: Path, keys: list[str]) -> None:
    for key in keys:
        path = root / f"{key}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded by the loader")


def test_bbx_txt_parses_boxes_invalid_flags_and_skips_the_dummy_line() -> None:
    parsed = parse_wider_txt(BBX_TXT)
    assert [key for key, _, _ in parsed] == ["1--Event/1_a", "1--Event/1_b", "2--Other/2_c"]
    _, boxes, invalid = parsed[0]
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 30], [50, 60, 58, 69]])
    np.testing.assert_array_equal(invalid, [False, True])
    assert parsed[1][1].shape == (0, 4)


@pytest.mark.parametrize(
    "text",
    [
        "1--Event/1_a.jpg\n2\n10 10 20 20 0 0 0 0 0 0\n",
        "1--Event/1_a.jpg\nmany\n",
        "no-extension\n1\n",
    ],
    ids=["too-few-lines", "count-not-a-number", "name-not-a-jpg"],
)
def test_bbx_txt_malformed_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError):
        parse_wider_txt(text)


def test_txt_ground_truth_gives_setting_all_without_invalid_faces(tmp_path: Path) -> None:
    (tmp_path / "gt.txt").write_text(BBX_TXT)
    _write_images(tmp_path / "images", ["1--Event/1_a", "2--Other/2_c"])
    dataset = load_wider(ground_truth=tmp_path / "gt.txt", images=tmp_path / "images")
    assert dataset.settings == ("all",)
    assert [im.key for im in dataset.images] == ["1--Event/1_a", "2--Other/2_c"]
    assert dataset.face_counts() == {"all": 2}
    assert dataset.notes == ("restricted to 2 of the 3 images of the ground truth",)


def test_mat_ground_truth_reads_settings_from_gt_lists(tmp_path: Path) -> None:
    from scipy.io import savemat

    def cells(items: list[object]) -> np.ndarray:
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    files = cells([cells([np.array(["1_a"]), np.array(["1_b"])])])
    boxes = cells(
        [
            cells(
                [
                    np.array([[10, 10, 20, 20], [50, 60, 8, 9], [0, 0, 5, 5]]),
                    np.array([[1, 1, 4, 4]]),
                ]
            )
        ]
    )
    face = {
        "event_list": cells([np.array(["1--Event"])]),
        "file_list": files,
        "face_bbx_list": boxes,
    }
    savemat(tmp_path / "wider_face_val.mat", face)
    keeps = {"easy": [[1], []], "medium": [[1, 2], [1]], "hard": [[1, 2, 3], [1]]}
    for setting, lists in keeps.items():
        gt_list = cells([cells([np.array(k, dtype=np.uint8).reshape(-1, 1) for k in lists])])
        savemat(tmp_path / f"wider_{setting}_val.mat", {**face, "gt_list": gt_list})
    dataset = load_wider(ground_truth=tmp_path)
    assert dataset.settings == ("easy", "medium", "hard")
    assert dataset.face_counts() == {"easy": 1, "medium": 3, "hard": 4}
    first = dataset.images[0]
    np.testing.assert_array_equal(first.counted["medium"], [True, True, False])
    np.testing.assert_array_equal(first.boxes[1], [50, 60, 58, 69])


def test_missing_ground_truth_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no WIDER ground truth"):
        load_wider(ground_truth=tmp_path)


def test_shared_subset_has_the_documented_counts(shared: Path) -> None:
    dataset = load_wider(shared / "eval" / "wider-val")
    assert len(dataset) == 396
    assert dataset.face_counts() == {"easy": 875, "medium": 1671, "hard": 4300}
    assert sum(len(im) for im in dataset.images) == 5343


def test_shared_txt_and_mat_agree_box_for_box(shared: Path) -> None:
    root = shared / "eval" / "wider-val"
    from_mat = {im.key: im for im in load_wider(root).images}
    from_txt = load_wider(
        ground_truth=root / "ground_truth" / "wider_face_val_bbx_gt.txt", images=root / "images"
    )
    assert len(from_txt) == 396
    assert from_txt.face_counts() == {"all": 5343 - 205}
    for im in from_txt.images:
        np.testing.assert_array_equal(im.boxes, from_mat[im.key].boxes)


def test_seed_tf_golden_detections_give_the_seed_numbers(shared: Path) -> None:
    # The seed's graph run in TensorFlow; its published subset AP is 0.864 / 0.834 / 0.582.
    golden = json.loads((shared / "golden" / "seed-tf-wider-val.json").read_text())["images"]
    prefix = "eval/wider-val/images/"
    detections = {
        key[len(prefix) : -len(".jpg")]: ImageDetections(
            [f["box"] for f in value["faces"]], [f["score"] for f in value["faces"]]
        )
        for key, value in golden.items()
    }
    result = evaluate_wider(load_wider(shared / "eval" / "wider-val"), detections)
    aps = {s: round(r.ap, 3) for s, r in result.settings.items()}  # type: ignore[arg-type]
    assert aps == {"easy": 0.864, "medium": 0.834, "hard": 0.582}


@pytest.mark.parametrize(
    ("box", "truth", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 5, 10], [0, 0, 10, 10], 66 / 121),  # (5+1)*(10+1) / (11*11)
        ([20, 20, 30, 30], [0, 0, 10, 10], 0.0),
        ([10, 0, 20, 10], [0, 0, 10, 10], 11 / (121 + 121 - 11)),  # touching edges overlap 1 px
        ([11, 0, 20, 10], [0, 0, 10, 10], 0.0),
    ],
    ids=["same", "half-width-plus-one", "disjoint", "shared-edge", "adjacent"],
)
def test_wider_iou_uses_the_plus_one_pixel_convention(
    box: list[float], truth: list[float], expected: float
) -> None:
    assert wider_iou([box], [truth])[0, 0] == pytest.approx(expected)


def test_thresholds_are_the_official_thousand() -> None:
    t = wider_thresholds()
    assert len(t) == 1000
    assert t[0] == 1 - 1 / 1000 and t[-1] == 0.0
    assert t[499] == 0.5


def test_scores_are_normalised_over_all_images_together() -> None:
    dets = {
        "a": ImageDetections([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 0.9]),
        "b": ImageDetections([[0, 0, 1, 1]], [0.7]),
        "c": ImageDetections.empty(),
    }
    normed = normalize_scores(dets)
    np.testing.assert_allclose(normed["a"].scores, [1.0, 0.0])  # sorted, highest first
    np.testing.assert_allclose(normed["b"].scores, [0.5])
    np.testing.assert_array_equal(normed["a"].boxes[0], [0, 0, 2, 2])
    assert len(normed["c"]) == 0


def test_equal_scores_normalise_to_one_instead_of_dividing_by_zero() -> None:
    normed = normalize_scores({"a": ImageDetections([[0, 0, 1, 1], [1, 1, 2, 2]], [0.8, 0.8])})
    np.testing.assert_array_equal(normed["a"].scores, [1.0, 1.0])


def _one_image(boxes: list[list[float]], counted: list[bool]) -> Dataset:
    image = ImageTruth("e/x", None, np.array(boxes, float), {"all": np.array(counted)})
    return Dataset("wider", ("all",), (image,))


def test_detection_matching_an_ignored_face_best_is_ignored_even_if_it_overlaps_a_kept_face() -> (
    None
):
    # the detection's best IoU is with the ignored face, so the kept face stays missed
    dataset = _one_image([[0, 0, 100, 100], [10, 0, 110, 100]], [False, True])
    dets = {"e/x": ImageDetections([[2, 0, 102, 100], [500, 500, 510, 510]], [0.9, 0.1])}
    result = evaluate_wider(dataset, dets)
    counts = result.images[0].counts["all"]
    assert (counts.faces, counts.tp, counts.fp, counts.ignored) == (1, 0, 1, 1)
    assert result.settings["all"].ap == 0.0


def test_second_detection_of_a_found_face_is_a_false_positive() -> None:
    dataset = _one_image([[0, 0, 100, 100]], [True])
    dets = {"e/x": ImageDetections([[0, 0, 100, 100], [1, 1, 100, 100]], [0.9, 0.1])}
    counts = evaluate_wider(dataset, dets).images[0].counts["all"]
    assert (counts.tp, counts.fp, counts.ignored) == (1, 1, 0)


def test_setting_without_faces_has_nan_ap() -> None:
    dataset = _one_image([[0, 0, 10, 10]], [False])
    result = evaluate_wider(dataset, {"e/x": ImageDetections([[0, 0, 10, 10]], [0.5])})
    assert np.isnan(result.settings["all"].ap)  # type: ignore[arg-type]


def test_unreadable_mat_file_is_an_input_error(tmp_path: Path) -> None:
    for name in (
        "wider_face_val.mat",
        "wider_easy_val.mat",
        "wider_medium_val.mat",
        "wider_hard_val.mat",
    ):
        (tmp_path / name).write_bytes(b"not a MATLAB file at all")
    with pytest.raises(InputError, match="MATLAB"):
        load_wider(ground_truth=tmp_path)
