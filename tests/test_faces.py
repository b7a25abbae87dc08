"""The Faces result type and its JSON schema."""

from __future__ import annotations

import numpy as np
import pytest

from facefaas import LANDMARK_NAMES, Faces


@pytest.fixture
def faces() -> Faces:
    boxes = np.array([[10, 20, 50, 70], [100, 100, 300, 320]], np.float32)
    landmarks = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    return Faces(boxes, np.array([0.9, 0.99], np.float32), landmarks, width=400, height=500)


def test_to_dict_gives_pixels_normalised_boxes_and_named_landmarks(faces: Faces) -> None:
    data = faces.to_dict()
    assert data["width"] == 400 and data["height"] == 500
    first = data["faces"][0]
    assert first["box"] == [10, 20, 50, 70]
    assert first["box_normalized"] == [0.025, 0.04, 0.125, 0.14]
    assert first["score"] == pytest.approx(0.9)
    assert list(first["landmarks"]) == list(LANDMARK_NAMES)
    assert first["landmarks"]["nose"] == [4, 5]


def test_from_dict_round_trips(faces: Faces) -> None:
    again = Faces.from_dict(faces.to_dict())
    np.testing.assert_allclose(again.boxes, faces.boxes)
    np.testing.assert_allclose(again.landmarks, faces.landmarks)
    assert (again.width, again.height) == (400, 500)


def test_indexing_gives_a_face_or_a_subset(faces: Faces) -> None:
    assert faces[1].box == (100, 100, 300, 320)
    assert faces[1].landmarks[0] == (10, 11)
    assert len(faces[faces.scores > 0.95]) == 1
    assert len(faces[1:]) == 1 and len(faces[[0, 1]]) == 2
    assert [f.score for f in faces] == pytest.approx([0.9, 0.99])


def test_filter_keeps_scores_and_the_largest_faces(faces: Faces) -> None:
    assert len(faces.filter(score_threshold=0.95)) == 1
    largest = faces.filter(max_faces=1)
    assert largest[0].box == (100, 100, 300, 320)


def test_empty_result_is_falsy_and_serialises_to_no_faces() -> None:
    empty = Faces.empty(20, 10)
    assert not empty and len(empty) == 0
    assert empty.to_dict() == {"width": 20, "height": 10, "faces": []}


def test_arrays_are_read_only(faces: Faces) -> None:
    with pytest.raises(ValueError):
        faces.boxes[0, 0] = 1


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Faces(np.zeros((2, 4)), np.zeros(1), np.zeros((2, 5, 2)), width=1, height=1)
