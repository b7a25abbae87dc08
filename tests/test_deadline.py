"""Deadlines stop the cascade between its steps, soon after they pass or are cancelled."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facefaas.deadline import Deadline
from facefaas.detector import Detector
from facefaas.errors import CancelledError, DeadlineExceededError
from facefaas.params import DetectionParams

DEEP = DetectionParams(min_size=8, factor=0.9)


@pytest.fixture(scope="module")
def detector() -> Detector:
    with Detector(threads=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def full(detector: Detector, noise: np.ndarray) -> float:
    """Seconds of the whole detection, with no deadline: what a stop is measured against (a
    step takes longer on a loaded machine, and so does the whole)."""
    start = time.perf_counter()
    detector.detect(noise, DEEP)
    seconds = time.perf_counter() - start
    assert seconds > 0.5  # enough work for a deadline to cut
    return seconds


def test_a_passed_deadline_stops_the_cascade_within_a_step(
    detector: Detector, noise: np.ndarray, full: float
) -> None:
    start = time.perf_counter()
    with pytest.raises(DeadlineExceededError, match=r"deadline of 0\.1 s"):
        detector.detect(noise, DEEP, deadline=Deadline(0.1))
    stopped = time.perf_counter() - start
    assert stopped < 0.1 + max(0.25, full / 4), f"stopped after {stopped:.2f} s of {full:.2f}"


def test_cancelling_from_another_thread_stops_the_work(
    detector: Detector, noise: np.ndarray, full: float
) -> None:
    deadline = Deadline(None)
    timer = threading.Timer(0.1, deadline.cancel, args=("the client went away",))
    timer.start()
    start = time.perf_counter()
    with pytest.raises(CancelledError, match="client went away") as raised:
        detector.detect(noise, DEEP, deadline=deadline)
    stopped = time.perf_counter() - start
    assert stopped < 0.1 + max(0.25, full / 4), f"stopped after {stopped:.2f} s of {full:.2f}"
    assert raised.value.status == 503


def test_a_deadline_not_reached_changes_nothing(detector: Detector) -> None:
    from pathlib import Path

    image = (Path(__file__).parents[1] / "src/facefaas/data/reference/astronaut.jpg").read_bytes()
    expected = detector(image)
    got = detector.detect(image, deadline=Deadline(60))
    np.testing.assert_array_equal(got.boxes, expected.boxes)
    assert len(got) == 1


def test_the_reference_runtime_checks_too() -> None:
    from facefaas.models.resolve import resolve_model
    from facefaas.mtcnn.pipeline import normalize, run_cascade
    from facefaas.runtime.reference import ReferenceCascade

    ops = ReferenceCascade(resolve_model("mtcnn").networks)
    deadline = Deadline(None)
    deadline.cancel("stop")
    with pytest.raises(CancelledError):
        run_cascade(normalize(np.zeros((64, 64, 3), np.uint8)), ops, DetectionParams(),
                    check=deadline.check)  # fmt: skip
