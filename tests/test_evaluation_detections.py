"""Detection files: the WIDER submission format and the FDDB format, read and written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facefaas.errors import InputError
from facefaas.evaluation.detections import (
    ImageDetections,
    key_path,
    read_fddb_detections,
    read_wider_detections,
    read_wider_file,
    write_fddb_detections,
    write_wider_detections,
)
from facefaas.faces import Faces


def _dets() -> dict[str, ImageDetections]:
    return {
        "0--Parade/0_Parade_a": ImageDetections(
            [[10, 20, 40.5, 60.25], [0, 0, 5, 5]], [0.99, 0.123456789]
        ),
        "13--Interview/13_b": ImageDetections.empty(),
    }


def test_wider_folder_round_trip_keeps_boxes_and_scores(tmp_path: Path) -> None:
    written = _dets()
    write_wider_detections(tmp_path, written)
    text = (tmp_path / "0--Parade" / "0_Parade_a.txt").read_text().splitlines()
    assert text[:3] == ["0_Parade_a", "2", "10.000 20.000 30.500 40.250 0.99000000"]
    read = read_wider_detections(tmp_path, list(written))
    assert set(read) == set(written)
    for key, dets in written.items():
        np.testing.assert_allclose(read[key].boxes, dets.boxes, atol=5e-4)
        np.testing.assert_allclose(read[key].scores, dets.scores, atol=5e-9)


def test_reading_a_folder_without_keys_finds_every_file(tmp_path: Path) -> None:
    write_wider_detections(tmp_path, _dets())
    assert sorted(read_wider_detections(tmp_path)) == sorted(_dets())


def test_missing_file_for_a_key_is_left_out(tmp_path: Path) -> None:
    write_wider_detections(tmp_path, _dets())
    read = read_wider_detections(tmp_path, ["0--Parade/0_Parade_a", "0--Parade/absent"])
    assert list(read) == ["0--Parade/0_Parade_a"]


def test_wider_file_reader_takes_x_y_w_h_and_ignores_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("a.jpg\n2\n1 2 3 4 0.5 extra\n\n5 6 7 8 0.25\n")
    dets = read_wider_file(path)
    np.testing.assert_array_equal(dets.boxes, [[1, 2, 4, 6], [5, 6, 12, 14]])
    np.testing.assert_array_equal(dets.scores, [0.5, 0.25])


@pytest.mark.parametrize(
    "text",
    [
        "a\n",
        "a\n-1\n",
        "a\n2\n1 2 3 4 0.5\n",
        "a\n1\n1 2 3 0.5\n",
        "a\n1\n1 2 3 4 nan\n",
        "a\n1\n1 x 3 4 5\n",
    ],
    ids=["no-count", "negative-count", "fewer-lines", "four-numbers", "nan", "not-numbers"],
)
def test_malformed_wider_file_is_an_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(text)
    with pytest.raises(InputError):
        read_wider_file(path)


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "a\\b", "", "a//b"])
def test_keys_that_leave_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InputError, match="not a valid image key"):
        key_path(tmp_path, key)


def test_writing_a_bad_key_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_wider_detections(tmp_path / "out", {"../x": ImageDetections.empty()})
    assert not (tmp_path / "x.txt").exists()


def test_fddb_file_round_trip_in_fold_order(tmp_path: Path) -> None:
    dets = {"2002/08/11/big/img_591": ImageDetections([[1, 2, 11, 22]], [0.75])}
    keys = ["2002/08/11/big/img_591", "2002/08/26/big/img_265"]
    path = write_fddb_detections(tmp_path / "dets.txt", keys, dets)
    assert path.read_text().splitlines() == [
        "2002/08/11/big/img_591",
        "1",
        "1.000 2.000 10.000 20.000 0.75000000",
        "2002/08/26/big/img_265",
        "0",
    ]
    read = read_fddb_detections(path)
    assert list(read) == keys
    np.testing.assert_allclose(read[keys[0]].boxes, [[1, 2, 11, 22]])
    assert len(read[keys[1]]) == 0


def test_detections_from_faces_keep_boxes_and_scores() -> None:
    faces = Faces(
        boxes=np.array([[1, 2, 3, 4]], np.float32),
        scores=np.array([0.5], np.float32),
        landmarks=np.zeros((1, 5, 2), np.float32),
        width=10,
        height=10,
    )
    dets = ImageDetections.from_faces(faces)
    np.testing.assert_array_equal(dets.boxes, [[1, 2, 3, 4]])
    np.testing.assert_array_equal(dets.xywh(), [[1, 2, 2, 2]])


def test_sorting_is_stable_for_equal_scores() -> None:
    dets = ImageDetections([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], [0.5, 0.9, 0.5]).sorted()
    np.testing.assert_array_equal(dets.boxes[:, 0], [1, 0, 2])


def test_non_finite_detections_are_refused() -> None:
    with pytest.raises(InputError):
        ImageDetections([[0, 0, np.inf, 1]], [0.5])
