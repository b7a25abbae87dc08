"""The Detector: results, parameters, batches, threads, providers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facefaas
from facefaas import Detector, Faces
from facefaas.errors import (
    ImageDecodeError,
    ModelNotFoundError,
    ParameterError,
    ProviderError,
)

ASTRONAUT = "eval/photos/scikit-image__astronaut.png"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


@pytest.fixture(scope="module")
def astronaut(shared: Path) -> np.ndarray:
    return np.asarray(Image.open(shared / ASTRONAUT).convert("RGB"))


def test_astronaut_has_one_face_with_landmarks_inside_the_box(
    detector: Detector, astronaut: np.ndarray
) -> None:
    faces = detector(astronaut)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.boxes[0]
    assert 160 < x1 < 190 < 250 < x2 < 290 and 50 < y1 < 80 < 160 < y2 < 200
    assert faces.scores[0] > 0.99
    marks = faces.landmarks[0]
    assert np.all((marks[:, 0] > x1) & (marks[:, 0] < x2) & (marks[:, 1] > y1) & (marks[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert (faces.width, faces.height) == (512, 512)


def test_an_image_without_faces_gives_an_empty_result(detector: Detector) -> None:
    flat = np.full((200, 300, 3), 128, np.uint8)
    faces = detector(flat)
    assert isinstance(faces, Faces) and len(faces) == 0
    assert faces.to_dict() == {"width": 300, "height": 200, "faces": []}


def test_an_image_smaller_than_the_first_window_gives_an_empty_result(detector: Detector) -> None:
    assert len(detector(np.zeros((10, 10, 3), np.uint8))) == 0


def test_per_call_parameters_override_the_detector_defaults(
    detector: Detector, astronaut: np.ndarray
) -> None:
    assert len(detector(astronaut, min_size=300)) == 0
    assert len(detector(astronaut, thresholds=(0.6, 0.7, 0.99999))) == 0
    assert len(detector(astronaut, thresholds="0.6,0.7,0.7")) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"min_size": 2},
        {"factor": 0.99},
        {"factor": "x"},
        {"thresholds": (0.5, 0.5)},
        {"thresholds": (0.5, 0.5, 1.5)},
        {"scale": 2},
    ],
)
def test_out_of_range_parameters_are_refused_with_a_clear_error(
    detector: Detector, astronaut: np.ndarray, params: dict
) -> None:  # type: ignore[type-arg]
    with pytest.raises(ParameterError):
        detector(astronaut, **params)


def test_a_batch_of_different_sizes_equals_one_by_one(
    detector: Detector, astronaut: np.ndarray
) -> None:
    images = [
        astronaut,
        astronaut[:300, 50:400],
        np.ascontiguousarray(astronaut[::-1]),
        np.zeros((64, 80, 3), np.uint8),
    ]
    batch = detector.detect_batch(images)
    for image, faces in zip(images, batch, strict=True):
        single = detector(image)
        np.testing.assert_array_equal(faces.boxes, single.boxes)
        np.testing.assert_array_equal(faces.scores, single.scores)
        np.testing.assert_array_equal(faces.landmarks, single.landmarks)
    assert len(batch[0]) == 1 and len(batch[1]) >= 1 and len(batch[3]) == 0  # faces compared


def test_a_batch_with_an_unreadable_image_raises_that_images_error(
    detector: Detector, astronaut: np.ndarray
) -> None:
    with pytest.raises(ImageDecodeError, match="not in a recognised image format"):
        detector.detect_batch([astronaut, b"plain text", astronaut, astronaut])


def test_one_detector_used_from_many_threads_gives_the_single_thread_results(
    detector: Detector, astronaut: np.ndarray
) -> None:
    images = [astronaut, astronaut[:, ::-1].copy(), astronaut[100:, 100:].copy()] * 4
    expected = [detector(image) for image in images]
    assert [len(faces) for faces in expected] == [1, 1, 1] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(detector, images))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_module_level_detect_uses_the_default_model(
    astronaut: np.ndarray, detector: Detector
) -> None:
    np.testing.assert_array_equal(facefaas.detect(astronaut).boxes, detector(astronaut).boxes)


def test_the_cpu_provider_is_reported(detector: Detector) -> None:
    assert detector.provider == "CPUExecutionProvider"
    assert detector.manifest.name == "mtcnn"


def test_asking_for_a_missing_gpu_fails_loudly() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ProviderError, match="CUDAExecutionProvider is not available"):
        Detector(providers="cuda")


def test_an_unknown_model_name_is_not_found() -> None:
    with pytest.raises(ModelNotFoundError):
        Detector("no-such-model")


def test_a_detector_can_run_in_memory_weights(
    shared: Path, astronaut: np.ndarray, detector: Detector
) -> None:
    from facefaas.models.importers.tf_graph import read_tf_graph

    weights = read_tf_graph((shared / "data" / "mtcnn.pb").read_bytes())
    faces = Detector(weights)(astronaut)
    np.testing.assert_allclose(faces.boxes, detector(astronaut).boxes, atol=1e-3)


def test_bgr_arrays_give_the_rgb_result(detector: Detector, astronaut: np.ndarray) -> None:
    bgr = np.ascontiguousarray(astronaut[..., ::-1])
    np.testing.assert_array_equal(detector(bgr, channels="bgr").boxes, detector(astronaut).boxes)
    assert not np.array_equal(detector(bgr).scores, detector(astronaut).scores)


def test_a_detector_takes_a_model_file_in_any_format(
    shared: Path, astronaut: np.ndarray, detector: Detector
) -> None:
    graph = Detector(shared / "data" / "mtcnn.pb")
    assert graph.manifest.weights_sha256 == detector.manifest.weights_sha256
    np.testing.assert_allclose(graph(astronaut).boxes, detector(astronaut).boxes, atol=1e-3)
