"""Detectors are closed by whoever drops them: threads and memory stay bounded as models come
and go, and a closed detector says so instead of running."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facefaas.detector import Detector
from facefaas.errors import ModelError, ParameterError
from facefaas.models.builtin import builtin_path
from facefaas.params import DetectionParams

REFERENCE = Path(__file__).resolve().parents[1] / "src/facefaas/data/reference/astronaut.jpg"


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


def _threads(prefix: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


def test_detect_takes_detection_params_and_keyword_overrides() -> None:
    image = REFERENCE.read_bytes()
    with Detector() as detector:
        small = detector.detect(image, DetectionParams(min_size=40))
        same = detector(image, min_size=40)
        overridden = detector(image, DetectionParams(min_size=12), min_size=40)
        np.testing.assert_array_equal(small.boxes, same.boxes)
        np.testing.assert_array_equal(small.boxes, overridden.boxes)
        with pytest.raises(ParameterError, match="DetectionParams"):
            detector.detect(image, {"min_size": 40})  # type: ignore[arg-type]


def test_a_closed_detector_stops_its_threads_and_refuses_to_run() -> None:
    before = _threads("facefaas_")  # ThreadPoolExecutor names threads "<prefix>_<n>"
    detector = Detector(threads=2)
    assert len(detector(REFERENCE.read_bytes())) == 1  # starts the pool's threads
    assert _threads("facefaas_") > before
    detector.close()
    assert _threads("facefaas_") == before
    assert detector.closed
    with pytest.raises(ModelError, match="closed"):
        detector(REFERENCE.read_bytes())
    detector.close()  # idempotent


def test_detectors_on_a_shared_pool_leave_it_running_when_closed() -> None:
    pool = ThreadPoolExecutor(2, thread_name_prefix="shared-cascade")
    try:
        first = Detector(pool=pool)
        second = Detector(pool=pool)
        image = REFERENCE.read_bytes()
        expected = first(image)
        first.close()
        got = second(image)  # the pool still serves the other detector
        np.testing.assert_array_equal(got.boxes, expected.boxes)
        assert _threads("shared-cascade") <= 2
        second.close()
    finally:
        pool.shutdown()


def test_loading_and_evicting_50_models_keeps_threads_and_memory_bounded() -> None:
    from facefaas.server.detectors import DetectorCache

    path = builtin_path("mtcnn")
    assert path is not None
    image = REFERENCE.read_bytes()
    cache = DetectorCache(2, threads=2)
    before = set(threading.enumerate())  # other tests' servers may start or stop threads

    def cascade_threads() -> list[threading.Thread]:
        """Threads running pyramid levels and crop chunks that this test started."""
        return [
            t for t in threading.enumerate()
            if t not in before and t.name.startswith(("facefaas_", "facefaas-cascade"))
        ]  # fmt: skip

    def load_and_run(n: int) -> int:
        with cache.lease((f"model-{n}", "sha"), path) as detector:
            return len(detector(image))

    own_threads = cache._pool._threads
    try:
        for n in range(5):  # warm up: ONNX Runtime's and the allocator's one-off costs
            load_and_run(n)
        warm_rss = _rss_mib()
        warm_threads = len(cascade_threads())
        counts = [load_and_run(n) for n in range(5, 50)]
        assert counts == [1] * 45
        assert len(cache) == 2
        # Each detector's sessions hold ~10 MB: 45 leaked detectors would be ~450 MB.
        grown = _rss_mib() - warm_rss
        assert grown < 60, f"resident memory grew by {grown:.0f} MiB over 45 loads"
        assert len(cascade_threads()) <= warm_threads
        # Only the cache's one shared pool: no detector started threads of its own.
        assert set(cascade_threads()) <= set(own_threads) and len(own_threads) <= 2
    finally:
        cache.close()
    assert own_threads and not any(thread.is_alive() for thread in own_threads)
