"""dlib/imglab XML sets and the VOC precision/recall protocol; the VOCap average precision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facefaas.errors import InputError
from facefaas.evaluation.datasets import load_dlib, parse_imglab_xml
from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics import box_iou, evaluate_voc, voc_ap
from facefaas.evaluation.truth import Dataset, ImageTruth

XML = b"""<?xml version='1.0' encoding='ISO-8859-1'?>
<?xml-stylesheet type='text/xsl' href='image_metadata_stylesheet.xsl'?>
<dataset><images>
  <image file='a.jpg' width='100' height='80'>
    <box top='10' left='20' width='30' height='30'/>
    <box top='40' left='60' width='10' height='10' ignore='1'/>
  </image>
  <image file='sub/b.jpg'>
  </image>
  <image file='missing.jpg'><box top='1' left='1' width='5' height='5'/></image>
</images></dataset>
"""


@pytest.mark.parametrize(
    ("recall", "precision", "expected"),
    [
        ([1.0], [1.0], 1.0),
        ([0.5], [1.0], 0.5),
        ([0.5, 1.0], [1.0, 0.5], 0.75),
        ([0.5, 0.5, 1.0], [0.5, 1.0, 0.5], 0.75),  # the envelope lifts the first point
        ([0.0, 0.5], [math.nan, 1.0], 0.5),  # NaN precision is skipped, as MATLAB's max does
    ],
    ids=["perfect", "half-recall", "two-steps", "envelope", "nan-precision"],
)
def test_voc_ap_of_hand_made_curves(
    recall: list[float], precision: list[float], expected: float
) -> None:
    assert voc_ap(recall, precision) == pytest.approx(expected)


def test_imglab_xml_parses_boxes_ignore_and_size() -> None:
    parsed = parse_imglab_xml(XML)
    file, boxes, ignore, size = parsed[0]
    assert (file, size) == ("a.jpg", (100, 80))
    np.testing.assert_array_equal(boxes, [[20, 10, 50, 40], [60, 40, 70, 50]])
    np.testing.assert_array_equal(ignore, [False, True])
    assert parsed[1][1].shape == (0, 4) and parsed[1][3] is None


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE d [<!ENTITY a 'aaaa'>]><dataset>&a;</dataset>",
        b"<dataset><images><image><box/></image></images></dataset>",
        b"<dataset><images>",
        b"<dataset><images><image file='a.jpg'><box left='x'/></image></images></dataset>",
    ],
    ids=["entities", "no-file", "not-well-formed", "not-a-number"],
)
def test_bad_imglab_xml_is_an_input_error(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_imglab_xml(data)


def test_load_dlib_resolves_images_beside_the_xml_and_skips_missing(tmp_path: Path) -> None:
    (tmp_path / "set.xml").write_bytes(XML)
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jpg").write_bytes(b"x")
    dataset = load_dlib(tmp_path / "set.xml")
    assert [im.key for im in dataset.images] == ["a", "sub/b"]
    assert dataset.images[0].path == tmp_path / "a.jpg"
    assert dataset.face_counts() == {"all": 1}


def test_load_dlib_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "set.xml").write_bytes(
        b"<dataset><images><image file='../x.jpg'/></images></dataset>"
    )
    with pytest.raises(InputError, match="leaves"):
        load_dlib(tmp_path / "set.xml")


def test_shared_dlib_testing_set_has_25_faces_in_5_images(shared: Path) -> None:
    dataset = load_dlib(shared / "eval" / "dlib-faces" / "testing.xml")
    assert len(dataset) == 5
    assert dataset.face_counts() == {"all": 25}


def test_box_iou_is_continuous() -> None:
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0


def _set() -> Dataset:
    images = (
        ImageTruth(
            "a",
            None,
            np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float),
            {"all": np.array([True, False])},
        ),
        ImageTruth("b", None, np.array([[0, 0, 10, 10]], float), {"all": np.array([True])}),
    )
    return Dataset("dlib", ("all",), images)


def test_voc_protocol_counts_tp_fp_and_ignored() -> None:
    dets = {
        "a": ImageDetections(
            [[0, 0, 10, 10], [0, 0, 10, 11], [20, 0, 30, 10], [50, 50, 60, 60]],
            [0.9, 0.8, 0.7, 0.6],
        ),
        "b": ImageDetections([[0, 0, 10, 10]], [0.5]),
    }
    result = evaluate_voc(_set(), dets).settings["all"]
    assert (result.faces, result.tp, result.fp, result.ignored) == (2, 2, 2, 1)
    # ranked: TP (1/1), FP dup (1/2), FP (1/3), TP (2/4): envelope 1 to recall .5, then .5
    assert result.ap == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)


def test_iou_threshold_is_a_parameter() -> None:
    dets = {"a": ImageDetections([[0, 0, 10, 6]], [0.9]), "b": ImageDetections.empty()}  # IoU 0.6
    assert evaluate_voc(_set(), dets, iou=0.5).settings["all"].tp == 1
    assert evaluate_voc(_set(), dets, iou=0.7).settings["all"].tp == 0
